//! A fake Hevy API on loopback (<https://api.hevyapp.com/docs>), for the Hevy
//! plugin's tests, cassettes and the demo:
//!
//! * The key in an `api-key` header ([`API_KEY`]); a missing or wrong one is a
//!   401 with a plain-text body, as Hevy answers.
//! * `GET /v1/workouts` (newest first), `GET /v1/routines` and
//!   `GET /v1/exercise_templates`, paged by `page` (from 1) and `pageSize`
//!   (1 to 10, default 5; anything else is a 400):
//!   `{page, page_count, workouts|routines|exercise_templates: [...]}`; a
//!   page past the last is a 404.
//! * `GET /v1/workouts/events?since=<RFC 3339>`, paged the same way: what
//!   changed after `since`, newest first, `{type: "updated", workout}` with
//!   the whole workout (new ones too) or `{type: "deleted", id, deleted_at}`.
//! * `GET /v1/workouts/count` and `GET /v1/workouts/<id>`.
//!
//! Tests change the data through `fake.update(|data| ...)` with the methods
//! of [`HevyData`], and fail a later page of a listing with
//! [`HevyData::fail_next_page`].

use super::fake_oauth::FakeOAuth;
use super::upstream::{FakeApi, FakeUpstream, RecordedRequest, json_answer};
use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};

/// The API key the fake accepts.
pub const API_KEY: &str = "hevy-demo-key-5c1e0b7a-2d94";
/// Hevy's largest page.
pub const MAX_PAGE_SIZE: usize = 10;
const DEFAULT_PAGE_SIZE: usize = 5;
const PREFIX: &str = "/v1/";

/// What the fake Hevy serves: one user's training log.
pub struct HevyData {
    /// Newest first, as `/v1/workouts` lists them.
    pub workouts: Vec<Value>,
    pub routines: Vec<Value>,
    pub exercise_templates: Vec<Value>,
    /// Deleted workouts: their id and when (RFC 3339), for the events endpoint.
    deleted: Vec<(String, String)>,
    /// The status to answer the next request for a page after the first
    /// with. A cell: every request reaches the fake through
    /// [`FakeApi::unauthorized`], which borrows the data shared (see there).
    fail_next_page: Cell<Option<u16>>,
    /// Templates the user deletes just before the next page of templates
    /// after the first is served (a cell, as above), and those deleted so.
    templates_deleted_between_pages: RefCell<Vec<String>>,
    templates_deleted: RefCell<Vec<String>>,
    /// Ids handed to routines added later.
    next_id: u64,
}

/// The fake Hevy: [`HevyData`] served on loopback.
pub type FakeHevy = FakeUpstream<HevyData>;

/// Exercise templates of the sample: (id, title, type, primary muscle group,
/// secondary muscle groups). The last is the user's own.
const TEMPLATES: [(&str, &str, &str, &str, &[&str]); 15] = [
    ("79D0BB3A", "Bench Press (Barbell)", "weight_reps", "chest", &["triceps", "shoulders"]),
    ("D04AC939", "Squat (Barbell)", "weight_reps", "quadriceps", &["glutes", "hamstrings"]),
    ("C6272009", "Deadlift (Barbell)", "weight_reps", "lower_back", &["hamstrings", "glutes"]),
    ("7B8D84E8", "Overhead Press (Barbell)", "weight_reps", "shoulders", &["triceps"]),
    ("55E6546F", "Bent Over Row (Barbell)", "weight_reps", "upper_back", &["lats", "biceps"]),
    ("1B2B1E7C", "Pull Up", "reps_only", "lats", &["biceps", "upper_back"]),
    ("3601968B", "Incline Bench Press (Dumbbell)", "weight_reps", "chest", &["shoulders", "triceps"]),
    ("B5EFBF9C", "Romanian Deadlift (Barbell)", "weight_reps", "hamstrings", &["glutes", "lower_back"]),
    ("A5AC6449", "Lat Pulldown (Cable)", "weight_reps", "lats", &["biceps"]),
    ("F1E57334", "Leg Press (Machine)", "weight_reps", "quadriceps", &["glutes"]),
    ("37FCC2BB", "Bicep Curl (Dumbbell)", "weight_reps", "biceps", &[]),
    ("875F585F", "Triceps Pushdown", "weight_reps", "triceps", &[]),
    ("ED5AD0C1", "Plank", "duration", "abdominals", &[]),
    ("AC1BB830", "Running", "distance_duration", "cardio", &[]),
    ("E7A2D1F0", "Landmine Rotation", "weight_reps", "abdominals", &["shoulders"]),
];

/// The sessions the sample rotates through: (title, template ids, starting
/// weights in kg).
const SESSIONS: [(&str, &[(&str, f64)]); 3] = [
    ("Push", &[("79D0BB3A", 60.0), ("7B8D84E8", 37.5), ("3601968B", 22.0), ("875F585F", 25.0)]),
    ("Pull", &[("C6272009", 100.0), ("55E6546F", 50.0), ("1B2B1E7C", 0.0), ("37FCC2BB", 12.0)]),
    ("Legs", &[("D04AC939", 80.0), ("B5EFBF9C", 60.0), ("F1E57334", 120.0), ("ED5AD0C1", 0.0)]),
];

/// Workouts in the sample, one every other day.
const SAMPLE_WORKOUTS: u64 = 25;

impl HevyData {
    /// Seven weeks of training: 25 workouts, every other day at 17:30 UTC,
    /// rotating push, pull and legs (four exercises of three sets each, one
    /// of them a warm-up) with a run after every fifth; the three routines
    /// they follow; and fifteen exercise templates, one of them custom.
    pub fn sample(now_ms: i64) -> HevyData {
        let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
        let exercise_templates = TEMPLATES
            .iter()
            .enumerate()
            .map(|(index, (id, title, kind, primary, secondary))| {
                json!({
                    "id": id,
                    "title": title,
                    "type": kind,
                    "primary_muscle_group": primary,
                    "secondary_muscle_groups": secondary,
                    "is_custom": index == TEMPLATES.len() - 1,
                })
            })
            .collect();
        let first_week = now - Duration::days(56);
        let routines = SESSIONS
            .iter()
            .enumerate()
            .map(|(index, (title, exercises))| routine(uuid(1, index as u64), title, exercises, first_week))
            .collect();
        let workouts = (0..SAMPLE_WORKOUTS)
            .map(|n| {
                let day = (now - Duration::days(2 * n as i64 + 1)).date_naive();
                let start = day.and_hms_opt(17, 30, 0).expect("a valid time").and_utc();
                workout(n, start)
            })
            .collect();
        HevyData {
            workouts,
            routines,
            exercise_templates,
            deleted: Vec::new(),
            fail_next_page: Cell::new(None),
            templates_deleted_between_pages: RefCell::default(),
            templates_deleted: RefCell::default(),
            next_id: SESSIONS.len() as u64,
        }
    }

    /// The user edits a workout (`edit` changes its JSON); Hevy stamps
    /// `updated_at`, and the events endpoint lists it as updated. False if
    /// there is no such workout.
    pub fn edit_workout(&mut self, id: &str, edit: impl FnOnce(&mut Value)) -> bool {
        let Some(workout) = self.workouts.iter_mut().find(|w| w["id"] == id) else { return false };
        edit(workout);
        workout["updated_at"] = json!(stamp(Utc::now()));
        true
    }

    /// The user deletes a workout: gone from the listing, and a `deleted`
    /// event from now. False if there is no such workout.
    pub fn delete_workout(&mut self, id: &str) -> bool {
        let Some(at) = self.workouts.iter().position(|w| w["id"] == id) else { return false };
        self.workouts.remove(at);
        self.deleted.push((id.to_string(), stamp(Utc::now())));
        true
    }

    /// The user saves a new routine of one exercise; returns its id.
    pub fn add_routine(&mut self, title: &str) -> String {
        let id = uuid(1, self.next_id);
        self.next_id += 1;
        self.routines.push(routine(id.clone(), title, &[("D04AC939", 100.0)], Utc::now()));
        id
    }

    /// The user deletes a routine. False if there is no such routine.
    pub fn remove_routine(&mut self, id: &str) -> bool {
        remove_by_id(&mut self.routines, id)
    }

    /// The user deletes a custom exercise template. False if there is none with that id.
    pub fn remove_template(&mut self, id: &str) -> bool {
        remove_by_id(&mut self.exercise_templates, id)
    }

    /// The user deletes these templates just before the next page of
    /// templates after the first is served, as if between a reader's pages:
    /// the templates after them move up, some onto the page before, and the
    /// last page may be gone.
    pub fn remove_templates_between_pages(&mut self, ids: &[&str]) {
        *self.templates_deleted_between_pages.get_mut() = ids.iter().map(|id| id.to_string()).collect();
    }

    /// Answer the next request for a page after the first with `status`
    /// instead: a listing that fails midway.
    pub fn fail_next_page(&mut self, status: u16) {
        self.fail_next_page.set(Some(status));
    }

    /// What changed after `since` (ms), newest first.
    fn events_since(&self, since: i64) -> Vec<Value> {
        let updated = (self.workouts.iter())
            .map(|w| (millis(w["updated_at"].as_str().unwrap_or_default()), json!({"type": "updated", "workout": w})));
        let deleted =
            (self.deleted.iter()).map(|(id, at)| (millis(at), json!({"type": "deleted", "id": id, "deleted_at": at})));
        let mut events: Vec<(i64, Value)> = updated.chain(deleted).filter(|(at, _)| *at > since).collect();
        events.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        events.into_iter().map(|(_, event)| event).collect()
    }

    fn respond(&self, request: &RecordedRequest) -> Response {
        if request.header("api-key") != Some(API_KEY) {
            return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
        }
        if request.method != Method::GET {
            return error(StatusCode::NOT_FOUND, &format!("Cannot {} {}", request.method, request.path));
        }
        let later_page = request.param("page").is_some_and(|page| page != "1");
        if later_page && request.path == format!("{PREFIX}exercise_templates") {
            self.templates_deleted.borrow_mut().extend(self.templates_deleted_between_pages.take());
        }
        if later_page && let Some(status) = self.fail_next_page.take() {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, status.canonical_reason().unwrap_or("Error"));
        }
        match request.path.strip_prefix(PREFIX).unwrap_or_default() {
            "workouts" => page(request, "workouts", &self.workouts),
            "workouts/count" => Json(json!({"workout_count": self.workouts.len()})).into_response(),
            "workouts/events" => {
                let since = match request.param("since") {
                    None => 0,
                    Some(since) => match DateTime::parse_from_rfc3339(since) {
                        Ok(since) => since.timestamp_millis(),
                        Err(_) => return error(StatusCode::BAD_REQUEST, "since must be an ISO 8601 date"),
                    },
                };
                page(request, "events", &self.events_since(since))
            }
            "routines" => page(request, "routines", &self.routines),
            "exercise_templates" => {
                let deleted = self.templates_deleted.borrow();
                let listed: Vec<Value> = self
                    .exercise_templates
                    .iter()
                    .filter(|t| !deleted.iter().any(|id| t["id"] == *id))
                    .cloned()
                    .collect();
                page(request, "exercise_templates", &listed)
            }
            other => {
                match other.strip_prefix("workouts/").and_then(|id| self.workouts.iter().find(|w| w["id"] == id)) {
                    Some(workout) => Json(workout.clone()).into_response(),
                    None => error(StatusCode::NOT_FOUND, "Not found"),
                }
            }
        }
    }
}

impl FakeApi for HevyData {
    /// The key stands in as the provider's token, so `fake.access_token()`
    /// is the key to connect a group with.
    fn provider(&self) -> FakeOAuth {
        FakeOAuth::new(API_KEY)
    }

    /// Hevy's key travels in the `api-key` header, which [`FakeUpstream`]
    /// does not read (it looks for a bearer token): every request arrives
    /// here, and [`HevyData::respond`] checks the key itself.
    fn unauthorized(&self, request: &RecordedRequest) -> Response {
        self.respond(request)
    }

    fn answer(&mut self, request: &RecordedRequest) -> Response {
        self.respond(request)
    }
}

/// Hevy's error body.
fn error(status: StatusCode, message: &str) -> Response {
    json_answer(status, json!({ "error": message }))
}

/// One page of `items` under `field`, with Hevy's `page` and `page_count`.
fn page(request: &RecordedRequest, field: &str, items: &[Value]) -> Response {
    let number = |name: &str, default: usize| match request.param(name) {
        None => Some(default),
        Some(value) => value.parse::<usize>().ok(),
    };
    let Some(page) = number("page", 1).filter(|page| *page >= 1) else {
        return error(StatusCode::BAD_REQUEST, "page must be a number of at least 1");
    };
    let Some(size) = number("pageSize", DEFAULT_PAGE_SIZE).filter(|size| (1..=MAX_PAGE_SIZE).contains(size)) else {
        return error(StatusCode::BAD_REQUEST, &format!("pageSize must be between 1 and {MAX_PAGE_SIZE}"));
    };
    let page_count = items.len().div_ceil(size).max(1);
    if page > page_count {
        return error(StatusCode::NOT_FOUND, "Page not found");
    }
    let shown: Vec<&Value> = items.iter().skip((page - 1) * size).take(size).collect();
    Json(json!({ "page": page, "page_count": page_count, field: shown })).into_response()
}

fn remove_by_id(items: &mut Vec<Value>, id: &str) -> bool {
    let before = items.len();
    items.retain(|item| item["id"] != id);
    items.len() < before
}

/// Workout `n` of the sample (0 the newest), which started at `start`.
fn workout(n: u64, start: DateTime<Utc>) -> Value {
    let (title, planned) = SESSIONS[n as usize % SESSIONS.len()];
    // Older workouts lifted a little less.
    let progress = 1.0 - 0.01 * n as f64;
    let mut exercises: Vec<Value> = planned
        .iter()
        .enumerate()
        .map(|(index, (template, weight))| {
            let sets = (0..3).map(|set| lifted_set(template, set, weight * progress)).collect();
            exercise(index, template, sets)
        })
        .collect();
    if n.is_multiple_of(5) {
        let run = json!({"index": 0, "type": "normal", "weight_kg": null, "reps": null, "distance_meters": 3000,
                         "duration_seconds": 960 + 10 * n, "rpe": null, "custom_metric": null});
        exercises.push(exercise(exercises.len(), "AC1BB830", vec![run]));
    }
    let end = start + Duration::minutes(50 + (n % 4) as i64 * 5);
    let saved = stamp(end + Duration::minutes(2));
    json!({
        "id": uuid(0, n),
        "title": format!("{title} day"),
        "description": if n % 3 == 1 { "Felt strong today" } else { "" },
        "start_time": stamp(start),
        "end_time": stamp(end),
        "updated_at": saved,
        "created_at": saved,
        "exercises": exercises,
    })
}

/// A routine planning three sets of each exercise.
fn routine(id: String, title: &str, planned: &[(&str, f64)], saved: DateTime<Utc>) -> Value {
    let exercises: Vec<Value> = planned
        .iter()
        .enumerate()
        .map(|(index, (template, weight))| {
            let sets: Vec<Value> = (0..3)
                .map(|set| {
                    let mut target = lifted_set(template, set, *weight);
                    target.as_object_mut().expect("a set is an object").remove("rpe");
                    target
                })
                .collect();
            let mut exercise = exercise(index, template, sets);
            exercise["rest_seconds"] = json!(90);
            exercise
        })
        .collect();
    json!({
        "id": id,
        "title": title,
        "folder_id": null,
        "updated_at": stamp(saved),
        "created_at": stamp(saved),
        "exercises": exercises,
    })
}

fn exercise(index: usize, template: &str, sets: Vec<Value>) -> Value {
    let title = TEMPLATES.iter().find(|t| t.0 == template).map_or("", |t| t.1);
    json!({
        "index": index,
        "title": title,
        "notes": "",
        "exercise_template_id": template,
        "superset_id": null,
        "sets": sets,
    })
}

/// Set `index` of an exercise: a warm-up at half the weight, then working
/// sets; a plank is held for a time, a pull-up is bodyweight.
fn lifted_set(template: &str, index: usize, weight_kg: f64) -> Value {
    let warm_up = index == 0;
    let (weight, reps, duration) = match template {
        "ED5AD0C1" => (Value::Null, Value::Null, json!(45 + 15 * index)),
        "1B2B1E7C" => (Value::Null, json!(if warm_up { 5 } else { 8 }), Value::Null),
        _ => {
            // Plates go in 2.5 kg steps.
            let weight = (weight_kg * if warm_up { 0.5 } else { 1.0 } / 2.5).round() * 2.5;
            (json!(weight), json!(if warm_up { 10 } else { 8 }), Value::Null)
        }
    };
    json!({
        "index": index,
        "type": if warm_up { "warmup" } else { "normal" },
        "weight_kg": weight,
        "reps": reps,
        "distance_meters": null,
        "duration_seconds": duration,
        "rpe": if warm_up { Value::Null } else { json!(7.5 + 0.5 * index as f64) },
        "custom_metric": null,
    })
}

/// A deterministic UUID (version 4 in form): `space` keeps workouts' and
/// routines' apart.
fn uuid(space: u64, n: u64) -> String {
    let word = |k: u64| (space * 1_000 + n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(k as u32 * 13);
    let (a, b) = (word(1), word(2));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Hevy's times: RFC 3339 in UTC, with milliseconds.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn millis(at: &str) -> i64 {
    DateTime::parse_from_rfc3339(at).map_or(0, |at| at.timestamp_millis())
}
