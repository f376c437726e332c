//! A fake Oura API v2 on loopback (<https://cloud.ouraring.com/v2/docs>),
//! with the shapes Oura answers with:
//!
//! * `GET /v2/usercollection/{daily_sleep,daily_activity,daily_readiness,sleep,workout}`
//!   `?start_date&end_date&next_token` → `{data, next_token}`, and
//!   `GET /v2/usercollection/<collection>/<id>` → one document. Oura compares
//!   the bounds with each document's own time (`timestamp`, `bedtime_start`,
//!   `start_datetime`, written in the user's offset), a date-only bound being
//!   midnight UTC, both bounds included: so `end_date=D` misses a daily
//!   activity stamped `D T04:00+02:00`, and a night's sleep is found from the
//!   day its bedtime falls on (as reported in the-momentum/open-wearables
//!   #1161 and #1007, and in Oura's own answers recorded by tgrk/ex_oura).
//!   A bound may be a date, an RFC 3339 time or unix seconds; anything else
//!   is FastAPI's 422; `start_date` after `end_date` is a 400.
//! * `GET /v2/usercollection/heartrate?start_datetime&end_datetime&next_token`
//!   → `{data: [{bpm, source, timestamp, timestamp_unix}], next_token}`,
//!   both bounds included, the last day by default.
//! * Pages of [`PAGE_SIZE`] documents and [`HEARTRATE_PAGE_SIZE`] samples (Oura's
//!   own pages are far larger; small ones make clients page), the next page
//!   named by an opaque `next_token` (an unknown one is a 400).
//! * Errors with FastAPI's `{"detail": ...}` bodies: 401 for a token that is not
//!   the current one, 403 when the membership has lapsed or a scope
//!   (`daily`, `heartrate`, `workout`) was not granted, 429 past 5000
//!   requests in 5 minutes, 404 and 405.
//! * `POST /oauth/token`: authorization codes and refresh tokens, which are
//!   single-use ([`super::fake_oauth::FakeOAuth`]).
//!
//! The sample data is a week of one user's days in UTC+02:00, with a daily
//! MET series at 5-minute resolution (Oura's is per minute) and heart rate
//! every 15 minutes (Oura's is denser), to keep recorded cassettes small.

use super::upstream::{FakeApi, FakeUpstream, RecordedRequest, json_answer};
use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, SecondsFormat, Timelike, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

/// Documents per page of a date-listed collection.
pub const PAGE_SIZE: usize = 10;
/// Heart-rate samples per page.
pub const HEARTRATE_PAGE_SIZE: usize = 50;
/// Oura's rate limit: 5000 requests in 5 minutes.
const RATE_LIMIT: usize = 5000;
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
/// The sample user's offset from UTC.
const OFFSET_HOURS: i32 = 2;
const PREFIX: &str = "/v2/usercollection/";

/// What the fake Oura serves.
pub struct OuraData {
    /// Documents by collection (`daily_sleep`, `sleep`, `workout`...).
    pub collections: BTreeMap<String, Vec<Value>>,
    /// Heart-rate samples, in time order.
    pub heartrate: Vec<Value>,
    /// The scopes the user granted.
    pub scopes: BTreeSet<String>,
    /// Whether the Oura membership that API access needs is active.
    pub membership: bool,
    /// The status to answer the next request for a later page with.
    fail_next_page: Option<u16>,
    /// When the requests of the last five minutes arrived.
    recent: VecDeque<Instant>,
}

/// The fake Oura: [`OuraData`] served on loopback.
pub type FakeOura = FakeUpstream<OuraData>;

/// The collections Oura lists by date, and the time each is filtered on.
const COLLECTIONS: [(&str, &str); 5] = [
    ("daily_sleep", "timestamp"),
    ("daily_activity", "timestamp"),
    ("daily_readiness", "timestamp"),
    ("sleep", "bedtime_start"),
    ("workout", "start_datetime"),
];

impl OuraData {
    /// The seven days before today (UTC): a score of each kind a day, a
    /// night's sleep each day and a nap on five of them (12 sleep periods,
    /// two pages), five workouts, and heart rate every 15 minutes over the
    /// last 36 hours.
    pub fn sample(now_ms: i64) -> OuraData {
        let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
        let today = now.date_naive();
        let mut data = OuraData {
            collections: COLLECTIONS.iter().map(|(name, _)| (name.to_string(), Vec::new())).collect(),
            heartrate: Vec::new(),
            scopes: ["email", "personal", "daily", "heartrate", "workout", "tag", "session", "spo2"]
                .into_iter()
                .map(String::from)
                .collect(),
            membership: true,
            fail_next_page: None,
            recent: VecDeque::new(),
        };
        for n in (1..=7).rev() {
            let day = today - Duration::days(n);
            let updated = day.and_hms_opt(6, 10, 0).expect("a valid time").and_utc();
            data.add_day_updated_at(day, updated);
            if n % 3 != 0 {
                data.push("sleep", nap(day, updated));
            }
            if n % 2 == 1 {
                data.push("workout", workout(day, 0, updated));
            }
            if n == 4 {
                data.push("workout", workout(day, 1, updated));
            }
        }
        let step = 15 * 60;
        let start = (now_ms / 1000 - 36 * 3600) / step * step;
        let end = now_ms / 1000 - 30 * 60;
        for at in (start..end).step_by(step as usize) {
            data.heartrate.push(heart_rate_sample(at));
        }
        data
    }

    /// The ring synced `day`: its three daily summaries and its night's sleep.
    pub fn add_day(&mut self, day: NaiveDate) {
        self.add_day_updated_at(day, Utc::now());
    }

    fn add_day_updated_at(&mut self, day: NaiveDate, updated: DateTime<Utc>) {
        self.push("daily_sleep", daily_sleep(day, updated));
        self.push("daily_activity", daily_activity(day, updated));
        self.push("daily_readiness", daily_readiness(day, updated));
        self.push("sleep", night(day, updated));
    }

    fn push(&mut self, collection: &str, document: Value) {
        self.collections.entry(collection.to_string()).or_default().push(document);
    }

    /// The documents of a collection.
    pub fn documents(&self, collection: &str) -> &[Value] {
        self.collections.get(collection).map_or(&[], Vec::as_slice)
    }

    /// The days the daily sleep summaries cover, oldest first.
    pub fn days(&self) -> Vec<NaiveDate> {
        let mut days: Vec<NaiveDate> = (self.documents("daily_sleep").iter())
            .filter_map(|d| d["day"].as_str().and_then(|day| day.parse().ok()))
            .collect();
        days.sort();
        days
    }

    /// Oura recomputed `day`'s score in `collection` (the ring synced late).
    pub fn set_score(&mut self, collection: &str, day: NaiveDate, score: i64) {
        let documents = self.collections.get_mut(collection).expect("a collection of the fake");
        let document = (documents.iter_mut())
            .find(|d| d["day"] == day.to_string())
            .unwrap_or_else(|| panic!("no {collection} document for {day}"));
        document["score"] = json!(score);
        touch(document);
    }

    /// The user deleted a document (a nap, a workout); it is gone from listings.
    pub fn remove(&mut self, collection: &str, id: &str) -> Option<Value> {
        let documents = self.collections.get_mut(collection)?;
        let at = documents.iter().position(|d| d["id"] == id)?;
        Some(documents.remove(at))
    }

    /// A heart-rate sample that arrived late, when the ring synced.
    pub fn add_heart_rate(&mut self, at_seconds: i64) {
        self.heartrate.push(heart_rate_sample(at_seconds));
        self.heartrate.sort_by_key(|s| s["timestamp_unix"].as_i64());
    }

    /// Answer the next request for a later page (one with a `next_token`)
    /// with `status` instead: a failure midway through a listing.
    pub fn fail_next_page(&mut self, status: u16) {
        self.fail_next_page = Some(status);
    }

    /// The user withdrew a scope from the app.
    pub fn revoke_scope(&mut self, scope: &str) {
        self.scopes.remove(scope);
    }

    fn list(&self, request: &RecordedRequest, collection: &str, field: &str) -> Response {
        let scope = if collection == "workout" { "workout" } else { "daily" };
        if let Some(refusal) = self.refusal(scope) {
            return refusal;
        }
        let (start, end) = match range(request, "start_date", "end_date") {
            Ok(range) => range,
            Err((status, body)) => return json_answer(status, body),
        };
        let mut matching: Vec<(i64, &Value)> = (self.documents(collection).iter())
            .filter_map(|d| d[field].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| (t, d)))
            .map(|(t, d)| (t.timestamp_millis(), d))
            .filter(|(t, _)| start <= *t && *t <= end)
            .collect();
        matching.sort_by_key(|(t, _)| *t);
        page(request, matching.into_iter().map(|(_, d)| d.clone()).collect(), PAGE_SIZE)
    }

    fn heart_rate(&self, request: &RecordedRequest) -> Response {
        if let Some(refusal) = self.refusal("heartrate") {
            return refusal;
        }
        let (start, end) = match range(request, "start_datetime", "end_datetime") {
            Ok(range) => range,
            Err((status, body)) => return json_answer(status, body),
        };
        let samples: Vec<Value> = (self.heartrate.iter())
            .filter(|s| s["timestamp_unix"].as_i64().is_some_and(|t| start <= t && t <= end))
            .cloned()
            .collect();
        page(request, samples, HEARTRATE_PAGE_SIZE)
    }

    fn refusal(&self, scope: &str) -> Option<Response> {
        (!self.membership || !self.scopes.contains(scope))
            .then(|| json_answer(StatusCode::FORBIDDEN, json!({"detail": "Forbidden"})))
    }

    /// Whether a request now goes past 5000 in the last five minutes.
    fn over_rate_limit(&mut self, at: Instant) -> bool {
        while self.recent.front().is_some_and(|first| at.duration_since(*first) >= RATE_WINDOW) {
            self.recent.pop_front();
        }
        self.recent.push_back(at);
        self.recent.len() > RATE_LIMIT
    }
}

impl FakeApi for OuraData {
    const TOKEN_PATH: Option<&'static str> = Some("/oauth/token");

    // The default provider spends a refresh token on use, as Oura does.

    fn unauthorized(&self, _: &RecordedRequest) -> Response {
        json_answer(StatusCode::UNAUTHORIZED, json!({"detail": "Invalid or expired access token"}))
    }

    fn answer(&mut self, request: &RecordedRequest) -> Response {
        if self.over_rate_limit(request.at) {
            return json_answer(StatusCode::TOO_MANY_REQUESTS, json!({"detail": "Too Many Requests"}));
        }
        if request.param("next_token").is_some_and(|t| !t.is_empty())
            && let Some(status) = self.fail_next_page.take()
        {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("Error");
            return json_answer(status, json!({ "detail": reason }));
        }
        let Some(rest) = request.path.strip_prefix(PREFIX) else { return not_found() };
        if request.method != Method::GET {
            return json_answer(StatusCode::METHOD_NOT_ALLOWED, json!({"detail": "Method Not Allowed"}));
        }
        let (collection, id) = match rest.split_once('/') {
            Some((collection, id)) => (collection, Some(id)),
            None => (rest, None),
        };
        if collection == "heartrate" && id.is_none() {
            return self.heart_rate(request);
        }
        let Some((_, field)) = COLLECTIONS.iter().find(|(name, _)| *name == collection) else { return not_found() };
        match id {
            None => self.list(request, collection, field),
            Some(id) => {
                let scope = if collection == "workout" { "workout" } else { "daily" };
                if let Some(refusal) = self.refusal(scope) {
                    return refusal;
                }
                match self.documents(collection).iter().find(|d| d["id"] == id) {
                    Some(document) => Json(document.clone()).into_response(),
                    None => json_answer(StatusCode::NOT_FOUND, json!({"detail": "Document not found"})),
                }
            }
        }
    }
}

fn not_found() -> Response {
    json_answer(StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
}

/// An error answer: its status and body.
type Refusal = (StatusCode, Value);

/// The request's bounds in milliseconds: by default the day before the end,
/// which defaults to now.
fn range(request: &RecordedRequest, start: &str, end: &str) -> Result<(i64, i64), Refusal> {
    let end_at = bound(request, end)?.unwrap_or_else(|| Utc::now().timestamp_millis());
    let start_at = bound(request, start)?.unwrap_or(end_at - 86_400_000);
    if start_at > end_at {
        let detail = format!("{start} must not be after {end}");
        return Err((StatusCode::BAD_REQUEST, json!({ "detail": detail })));
    }
    Ok((start_at, end_at))
}

/// A date (midnight UTC), an RFC 3339 time or unix seconds, as FastAPI
/// reads a date-or-datetime query parameter.
fn bound(request: &RecordedRequest, name: &str) -> Result<Option<i64>, Refusal> {
    let Some(value) = request.param(name).filter(|v| !v.is_empty()) else { return Ok(None) };
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(Some(day.and_time(NaiveTime::MIN).and_utc().timestamp_millis()));
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(time.timestamp_millis()));
    }
    if let Ok(seconds) = value.parse::<i64>() {
        return Ok(Some(seconds.saturating_mul(1000)));
    }
    let detail = json!([{
        "type": "datetime_from_date_parsing",
        "loc": ["query", name],
        "msg": "Input should be a valid datetime or date",
        "input": value,
    }]);
    Err((StatusCode::UNPROCESSABLE_ENTITY, json!({ "detail": detail })))
}

/// One page of `items` from the request's `next_token` on.
fn page(request: &RecordedRequest, items: Vec<Value>, size: usize) -> Response {
    let offset = match request.param("next_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match decode_token(token) {
            Some(offset) => offset,
            None => return json_answer(StatusCode::BAD_REQUEST, json!({"detail": "Invalid next_token"})),
        },
    };
    let end = (offset + size).min(items.len());
    let shown = items.get(offset.min(end)..end).unwrap_or_default();
    let next_token = (end < items.len()).then(|| encode_token(end));
    Json(json!({ "data": shown, "next_token": next_token })).into_response()
}

fn encode_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!({ "offset": offset }).to_string())
}

fn decode_token(token: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value["offset"].as_u64().map(|offset| offset as usize)
}

// The sample data: deterministic from the day, in the user's offset.

/// Days since the epoch: varies a day's numbers.
fn index(day: NaiveDate) -> i64 {
    day.signed_duration_since(DateTime::UNIX_EPOCH.date_naive()).num_days()
}

/// A number from `low` to `high`, varying with `seed`.
fn vary(seed: i64, low: i64, high: i64) -> i64 {
    low + (seed.wrapping_mul(7919).wrapping_add(seed / 3)).rem_euclid(high - low + 1)
}

/// A document id in Oura's UUID form, the same for the same inputs.
fn uuid(kind: &str, day: NaiveDate, n: u32) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{kind}/{day}/{n}").bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let low = hash.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hash >> 32,
        (hash >> 16) & 0xffff,
        hash & 0xfff,
        0x8000 | ((low >> 48) & 0x3fff),
        low & 0xffff_ffff_ffff
    )
}

/// `day` at `hour:minute` in the user's offset.
fn local(day: NaiveDate, hour: u32, minute: u32) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(OFFSET_HOURS * 3600).expect("a valid offset");
    let time = day.and_hms_opt(hour, minute, 0).expect("a valid time");
    DateTime::<FixedOffset>::from_naive_utc_and_offset(time - Duration::hours(i64::from(OFFSET_HOURS)), offset)
}

/// `2026-09-01T07:00:00+02:00`, as Oura writes local times.
fn seconds(at: DateTime<FixedOffset>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// `2026-09-01T07:00:00.000+02:00`, as Oura stamps a series.
fn millis(at: DateTime<FixedOffset>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, false)
}

fn meta(updated: DateTime<Utc>) -> Value {
    json!({ "updated_at": updated.to_rfc3339_opts(SecondsFormat::Secs, false), "version": 1 })
}

/// A changed document's new version.
fn touch(document: &mut Value) {
    let version = document["meta"]["version"].as_i64().unwrap_or(0) + 1;
    document["meta"] = json!({
        "updated_at": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, false),
        "version": version,
    });
}

fn daily_sleep(day: NaiveDate, updated: DateTime<Utc>) -> Value {
    let i = index(day);
    json!({
        "id": uuid("daily_sleep", day, 0),
        "contributors": {
            "deep_sleep": vary(i, 40, 99),
            "efficiency": vary(i + 1, 75, 99),
            "latency": vary(i + 2, 60, 99),
            "rem_sleep": vary(i + 3, 50, 99),
            "restfulness": vary(i + 4, 50, 90),
            "timing": vary(i + 5, 20, 95),
            "total_sleep": vary(i + 6, 60, 99),
        },
        "day": day.to_string(),
        "score": vary(i, 62, 91),
        "timestamp": seconds(local(day, 0, 0)),
        "meta": meta(updated),
    })
}

fn daily_readiness(day: NaiveDate, updated: DateTime<Utc>) -> Value {
    let i = index(day);
    json!({
        "id": uuid("daily_readiness", day, 0),
        "contributors": {
            "activity_balance": vary(i, 70, 99),
            "body_temperature": vary(i + 1, 80, 100),
            "hrv_balance": vary(i + 2, 50, 99),
            "previous_day_activity": vary(i + 3, 60, 99),
            "previous_night": vary(i + 4, 50, 95),
            "recovery_index": vary(i + 5, 20, 90),
            "resting_heart_rate": vary(i + 6, 70, 99),
            "sleep_balance": vary(i + 7, 70, 99),
        },
        "day": day.to_string(),
        "score": vary(i + 8, 65, 92),
        "temperature_deviation": vary(i, -30, 30) as f64 / 100.0,
        "temperature_trend_deviation": vary(i + 1, -20, 20) as f64 / 100.0,
        "timestamp": seconds(local(day, 0, 0)),
        "meta": meta(updated),
    })
}

fn daily_activity(day: NaiveDate, updated: DateTime<Utc>) -> Value {
    let i = index(day);
    // A day from 04:00 local, in 5-minute steps: resting, then moving.
    let class_5_min: String =
        (0..288).map(|n| if !(36..=200).contains(&n) { '1' } else { b"2234"[n % 4] as char }).collect();
    let met: Vec<f64> = (0..288i64)
        .map(|n| if (36..=200).contains(&n) { 1.0 + vary(i + n, 0, 40) as f64 / 10.0 } else { 0.9 })
        .collect();
    let steps = vary(i, 4_000, 16_000);
    json!({
        "id": uuid("daily_activity", day, 0),
        "class_5_min": class_5_min,
        "score": vary(i + 2, 60, 98),
        "active_calories": vary(i + 3, 250, 1_100),
        "average_met_minutes": 1.5 + vary(i, 0, 5) as f64 / 10.0,
        "contributors": {
            "meet_daily_targets": vary(i, 40, 100),
            "move_every_hour": vary(i + 1, 60, 100),
            "recovery_time": vary(i + 2, 70, 100),
            "stay_active": vary(i + 3, 40, 95),
            "training_frequency": vary(i + 4, 60, 100),
            "training_volume": vary(i + 5, 60, 100),
        },
        "equivalent_walking_distance": steps * 4 / 5,
        "high_activity_met_minutes": vary(i, 0, 300),
        "high_activity_time": vary(i, 0, 3_000),
        "inactivity_alerts": vary(i, 0, 2),
        "low_activity_met_minutes": vary(i + 1, 100, 300),
        "low_activity_time": vary(i + 1, 10_000, 20_000),
        "medium_activity_met_minutes": vary(i + 2, 50, 300),
        "medium_activity_time": vary(i + 2, 1_000, 6_000),
        "met": { "interval": 300.0, "items": met, "timestamp": millis(local(day, 4, 0)) },
        "meters_to_target": vary(i, -3_000, 6_000),
        "non_wear_time": vary(i, 0, 1_800),
        "resting_time": vary(i + 3, 20_000, 30_000),
        "sedentary_met_minutes": vary(i, 5, 30),
        "sedentary_time": vary(i + 4, 25_000, 40_000),
        "steps": steps,
        "target_calories": 500,
        "target_meters": 10_000,
        "total_calories": vary(i + 5, 2_100, 3_200),
        "day": day.to_string(),
        "timestamp": seconds(local(day, 4, 0)),
        "meta": meta(updated),
    })
}

/// A sleep period from `start` lasting `minutes`.
fn sleep_period(id: String, day: NaiveDate, start: DateTime<FixedOffset>, minutes: i64, kind: &str) -> Value {
    let i = index(day);
    let samples = minutes / 5;
    let series = |low: i64, high: i64, seed: i64| -> Vec<Value> {
        (0..samples).map(|n| if n == 7 { Value::Null } else { json!(vary(seed + n, low, high) as f64) }).collect()
    };
    let time_in_bed = minutes * 60;
    let awake = time_in_bed / 12;
    let total = time_in_bed - awake;
    let long = kind == "long_sleep";
    json!({
        "id": id,
        "average_breath": 13.5 + vary(i, 0, 20) as f64 / 10.0,
        "average_heart_rate": 52.0 + vary(i, 0, 40) as f64 / 4.0,
        "average_hrv": vary(i, 25, 70),
        "awake_time": awake,
        "bedtime_end": seconds(start + Duration::minutes(minutes)),
        "bedtime_start": seconds(start),
        "day": day.to_string(),
        "deep_sleep_duration": total / 5,
        "efficiency": 100 * total / time_in_bed,
        "heart_rate": { "interval": 300.0, "items": series(50, 75, i), "timestamp": millis(start) },
        "hrv": { "interval": 300.0, "items": series(15, 80, i + 11), "timestamp": millis(start) },
        "latency": vary(i, 120, 1_200),
        "light_sleep_duration": total / 2,
        "low_battery_alert": false,
        "lowest_heart_rate": vary(i, 46, 58),
        "period": if long { 0 } else { 1 },
        "readiness": if long {
            json!({
                "contributors": {
                    "activity_balance": vary(i, 70, 99),
                    "body_temperature": vary(i + 1, 80, 100),
                    "hrv_balance": vary(i + 2, 50, 99),
                    "previous_day_activity": vary(i + 3, 60, 99),
                    "previous_night": vary(i + 4, 50, 95),
                    "recovery_index": vary(i + 5, 20, 90),
                    "resting_heart_rate": vary(i + 6, 70, 99),
                    "sleep_balance": vary(i + 7, 70, 99),
                },
                "score": vary(i + 8, 65, 92),
                "temperature_deviation": vary(i, -30, 30) as f64 / 100.0,
                "temperature_trend_deviation": vary(i + 1, -20, 20) as f64 / 100.0,
            })
        } else {
            Value::Null
        },
        "readiness_score_delta": if long { json!(0) } else { Value::Null },
        "rem_sleep_duration": total - total / 5 - total / 2,
        "restless_periods": vary(i, 80, 300),
        "sleep_phase_5_min": (0..samples).map(|n| b"4221133222"[(n % 10) as usize] as char).collect::<String>(),
        "sleep_score_delta": if long { json!(0) } else { Value::Null },
        "sleep_algorithm_version": "v2",
        "time_in_bed": time_in_bed,
        "total_sleep_duration": total,
        "type": kind,
    })
}

/// The night that ends on the morning of `day`, from about 23:00 the evening before.
fn night(day: NaiveDate, updated: DateTime<Utc>) -> Value {
    let i = index(day);
    let start = local(day - Duration::days(1), 22, 40) + Duration::minutes(vary(i, 0, 50));
    let mut period = sleep_period(uuid("sleep", day, 0), day, start, 420 + vary(i, 0, 90), "long_sleep");
    period["meta"] = meta(updated);
    period
}

/// An afternoon nap on `day`.
fn nap(day: NaiveDate, updated: DateTime<Utc>) -> Value {
    let i = index(day);
    let start = local(day, 14, 0) + Duration::minutes(vary(i, 0, 60));
    let mut period = sleep_period(uuid("sleep", day, 1), day, start, 25 + vary(i, 0, 20), "sleep");
    period["meta"] = meta(updated);
    period
}

fn workout(day: NaiveDate, n: u32, updated: DateTime<Utc>) -> Value {
    let i = index(day) + i64::from(n);
    let (activity, per_minute, metres_per_minute) =
        [("walking", 4.4, 80.0), ("running", 11.2, 170.0), ("cycling", 8.1, 330.0)][i.rem_euclid(3) as usize];
    let intensity = ["easy", "moderate", "hard"][i.rem_euclid(3) as usize];
    let minutes = vary(i, 20, 65);
    let start = local(day, 7 + 10 * n, 15) + Duration::minutes(vary(i, 0, 40));
    json!({
        "id": uuid("workout", day, n),
        "activity": activity,
        "calories": ((per_minute * minutes as f64) * 1000.0).round() / 1000.0,
        "day": day.to_string(),
        "distance": if activity == "walking" && n == 1 { Value::Null } else { json!(metres_per_minute * minutes as f64) },
        "end_datetime": seconds(start + Duration::minutes(minutes)),
        "intensity": intensity,
        "label": Value::Null,
        "source": if n == 0 { "autodetected" } else { "confirmed" },
        "start_datetime": seconds(start),
        "meta": meta(updated),
    })
}

/// One sample at `at` (unix seconds): resting at night, awake by day.
fn heart_rate_sample(at: i64) -> Value {
    let time = DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default();
    let local_hour = (time + Duration::hours(i64::from(OFFSET_HOURS))).hour();
    let (source, bpm) = match local_hour {
        1..=6 => ("rest", vary(at / 900, 48, 58)),
        _ => ("awake", vary(at / 900, 62, 96)),
    };
    json!({
        "bpm": bpm,
        "source": source,
        "timestamp": time.to_rfc3339_opts(SecondsFormat::Secs, false),
        "timestamp_unix": at * 1000,
    })
}
