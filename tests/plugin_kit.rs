//! The plugin author's kit through the real binary: `inlet plugin new`
//! scaffolds a project that builds on its own; `inlet plugin test` records
//! a cassette against a fake upstream, replays it offline and runs the
//! standard checks, which name what a careless plugin gets wrong; and the
//! bundled plugins pass them on their own cassettes.

mod support;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use support::{root, test_plugin, text};

/// The notes API the template's sample plugin talks to: Link-header pages,
/// `updated_since` (exclusive), `folder`, a bearer API key.
struct FakeNotes {
    key: String,
    notes: Vec<Value>,
}

const API_KEY: &str = "notes-key-4f1c9a";

impl FakeNotes {
    async fn start() -> String {
        let now = chrono::Utc::now();
        let notes = (1..=120)
            .map(|i| {
                let updated = now - chrono::Duration::minutes(200 - i);
                json!({
                    "id": format!("n{i:03}"),
                    "title": format!("Note {i}"),
                    "folder": if i % 2 == 0 { "inbox" } else { "archive" },
                    "updated_at": updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                })
            })
            .collect();
        let fake = Arc::new(FakeNotes { key: API_KEY.into(), notes });
        let app = axum::Router::new().route("/v1/notes", axum::routing::get(list)).with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }
}

async fn list(State(fake): State<Arc<FakeNotes>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    if authorization != Some(format!("Bearer {}", fake.key).as_str()) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Bad credentials"}))).into_response();
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let since = param("updated_since").unwrap_or("");
    let per_page: usize = param("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
    let page: usize = param("page").and_then(|v| v.parse().ok()).unwrap_or(1);
    let matching: Vec<&Value> = fake
        .notes
        .iter()
        .filter(|n| n["updated_at"].as_str().unwrap() > since)
        .filter(|n| param("folder").is_none_or(|f| n["folder"] == f))
        .collect();
    let shown: Vec<&Value> = matching.iter().skip((page - 1) * per_page).take(per_page).copied().collect();
    let mut response = axum::Json(shown).into_response();
    if page * per_page < matching.len() {
        let mut next: Vec<(String, String)> = params.iter().filter(|(k, _)| k != "page").cloned().collect();
        next.push(("page".into(), (page + 1).to_string()));
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&next).finish();
        let link = format!("<https://api.example.com/v1/notes?{query}>; rel=\"next\"");
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    response
}

/// Hevy's API (`api-key` header; `/v1/workouts` newest first and
/// `/v1/workouts/events` since a time, both paged by `page` and `pageSize` up
/// to 10), with workouts that can be changed and deleted while it runs.
struct FakeHevy {
    workouts: std::sync::Mutex<Vec<Value>>,
    /// `{type: "updated", workout}` or `{type: "deleted", id, deleted_at}`, oldest first.
    events: std::sync::Mutex<Vec<Value>>,
}

const HEVY_KEY: &str = "hevy-key-0c7d21";

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl FakeHevy {
    /// 23 workouts over the last 23 days (three pages), two exercises each.
    async fn start() -> (Arc<FakeHevy>, String) {
        let now = chrono::Utc::now();
        let workouts = (1..=23)
            .map(|n| {
                let start = now - chrono::Duration::days(n) - chrono::Duration::hours(2);
                let end = start + chrono::Duration::minutes(50 + n);
                let exercises: Vec<Value> =
                    [(0, "Bench Press (Barbell)", "79D0BB3A"), (1, "Squat (Barbell)", "D04AC939")]
                        .into_iter()
                        .map(|(index, title, template)| {
                            json!({
                                "index": index,
                                "title": title,
                                "notes": "",
                                "exercise_template_id": template,
                                "superset_id": null,
                                "sets": [{"index": 0, "type": "normal", "weight_kg": 60 + n, "reps": 8,
                                          "distance_meters": null, "duration_seconds": null, "rpe": null}],
                            })
                        })
                        .collect();
                json!({
                    "id": format!("b459cba5-cd6d-463c-abd6-{n:012}"),
                    "title": format!("Session {n}"),
                    "description": "",
                    "start_time": rfc3339(start),
                    "end_time": rfc3339(end),
                    "created_at": rfc3339(end),
                    "updated_at": rfc3339(end),
                    "exercises": exercises,
                })
            })
            .collect();
        let fake = Arc::new(FakeHevy { workouts: std::sync::Mutex::new(workouts), events: Default::default() });
        let app = axum::Router::new()
            .route("/v1/workouts", axum::routing::get(hevy_workouts))
            .route("/v1/workouts/events", axum::routing::get(hevy_events))
            .with_state(Arc::clone(&fake));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, format!("http://{addr}"))
    }

    fn rename(&self, index: usize, title: &str) {
        let mut workouts = self.workouts.lock().unwrap();
        workouts[index]["title"] = json!(title);
        workouts[index]["updated_at"] = json!(rfc3339(chrono::Utc::now()));
        self.events.lock().unwrap().push(json!({"type": "updated", "workout": workouts[index].clone()}));
    }

    fn delete(&self, index: usize) {
        let removed = self.workouts.lock().unwrap().remove(index);
        let event = json!({"type": "deleted", "id": removed["id"], "deleted_at": rfc3339(chrono::Utc::now())});
        self.events.lock().unwrap().push(event);
    }
}

/// Hevy's paging: `page` from 1, `pageSize` 1 to 10, and the page count.
fn hevy_page(headers: &HeaderMap, query: Option<String>, items: Vec<Value>, key: &str) -> Response {
    if headers.get("api-key").and_then(|v| v.to_str().ok()) != Some(HEVY_KEY) {
        return (StatusCode::UNAUTHORIZED, "Invalid api key").into_response();
    }
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let page: usize = params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size: usize = params.get("pageSize").and_then(|p| p.parse().ok()).unwrap_or(5);
    if !(1..=10).contains(&size) || page == 0 {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "pageSize must be between 1 and 10"})))
            .into_response();
    }
    let page_count = items.len().div_ceil(size).max(1);
    let shown: Vec<Value> = items.into_iter().skip((page - 1) * size).take(size).collect();
    axum::Json(json!({"page": page, "page_count": page_count, key: shown})).into_response()
}

async fn hevy_workouts(State(fake): State<Arc<FakeHevy>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let workouts = fake.workouts.lock().unwrap().clone();
    hevy_page(&headers, query, workouts, "workouts")
}

async fn hevy_events(State(fake): State<Arc<FakeHevy>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.clone().unwrap_or_default().as_bytes()).into_owned().collect();
    let since = params.get("since").cloned().unwrap_or_default();
    let at =
        |event: &Value| event["deleted_at"].as_str().or(event["workout"]["updated_at"].as_str()).unwrap().to_string();
    let newest_first: Vec<Value> =
        fake.events.lock().unwrap().iter().rev().filter(|e| at(e) > since).cloned().collect();
    hevy_page(&headers, query, newest_first, "events")
}

/// `inlet <args>` in `dir`, with none of the caller's INLET_ settings.
fn inlet(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_inlet"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("INLET_")) {
        command.env_remove(key);
    }
    command.args(args).envs(env.iter().copied()).current_dir(dir).output().expect("running inlet")
}

fn succeeded(output: &Output, what: &str) -> String {
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{what} failed:\n{stdout}\n{}", text(&output.stderr));
    stdout
}

fn failed(output: &Output, what: &str) -> String {
    let stdout = text(&output.stdout);
    assert!(!output.status.success(), "{what} passed, but should not have:\n{stdout}");
    stdout
}

/// Build a scaffolded Rust project with its own script, into a target
/// folder kept between test runs so only the first build compiles the SDK.
fn build_rust_project(project: &Path) {
    let status = std::process::Command::new("sh")
        .arg("build.sh")
        .current_dir(project)
        .env("CARGO_TARGET_DIR", root().join("target/plugin-new"))
        .status()
        .expect("running build.sh");
    assert!(status.success(), "build.sh failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_rust_plugin_builds_records_a_cassette_and_passes_the_standard_checks_offline() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let created = succeeded(&inlet(dir, &["plugin", "new", "acme-notes"], &[]), "inlet plugin new");
    assert!(created.contains("./build.sh"), "{created}");
    let project = dir.join("acme-notes");
    let source = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
    assert!(source.lines().count() <= 80, "the sample plugin is {} lines", source.lines().count());
    let formatted = std::process::Command::new("cargo").args(["fmt", "--check"]).current_dir(&project).status();
    assert!(formatted.unwrap().success(), "the new project is not formatted as cargo fmt would");
    build_rust_project(&project);
    assert!(project.join("acme-notes.wasm").exists());

    // Recorded at the host's HTTP capability, against the fake.
    let upstream = FakeNotes::start().await;
    let record = inlet(
        &project,
        &[
            "plugin",
            "test",
            "acme-notes.wasm",
            "--instance-type",
            "notes",
            "--cassette",
            "recorded",
            "--record",
            "--expect",
            "recorded/expected.json",
            "--update",
            "--upstream-override",
            &format!("api.example.com={upstream}"),
        ],
        &[("INLET_API_KEY", API_KEY)],
    );
    let recorded = succeeded(&record, "recording");
    assert!(recorded.contains("ok   record: 2 + 1 exchanges (runs 1 and 2) written to recorded/cassette.json"));
    assert!(recorded.contains("ok   run 1: 2 requests answered, 2 batches, 60 records created"), "{recorded}");
    assert!(recorded.contains("ok   typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized"));
    let cassette = std::fs::read_to_string(project.join("recorded/cassette.json")).unwrap();
    assert!(!cassette.contains(API_KEY) && !cassette.contains("127.0.0.1"), "{cassette}");
    assert!(cassette.contains("rel=\\\"next\\\""), "the Link header is kept: {cassette}");

    // Offline: the same checks from the cassette alone.
    let replay = &["plugin", "test", "acme-notes.wasm", "--cassette", "recorded", "--expect", "recorded/expected.json"];
    let replayed = succeeded(&inlet(&project, replay, &[]), "the replay");
    for check in ["describe", "config examples", "run 1", "external ids", "expected records", "incremental run"] {
        assert!(replayed.contains(&format!("ok   {check}: ")), "{check}: {replayed}");
    }
    assert!(replayed.contains("ok   stable ids: a second replay gave the same 60 records"), "{replayed}");

    // A request the cassette cannot answer fails the test and is named.
    let mut file: Value = serde_json::from_str(&cassette).unwrap();
    file["runs"][0].as_array_mut().unwrap().pop();
    std::fs::write(project.join("recorded/cassette.json"), file.to_string()).unwrap();
    let missing = failed(&inlet(&project, replay, &[]), "a replay of a cut cassette");
    assert!(missing.contains("FAIL run 1: requests not in the cassette"), "{missing}");
    assert!(missing.contains("GET https://api.example.com/v1/notes?per_page=50&updated_since="), "{missing}");
    assert!(missing.contains("&page=2"), "{missing}");

    // Records that differ from the expected file are named.
    let mut expected: Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("recorded/expected.json")).unwrap()).unwrap();
    expected["objects"][0]["name"] = json!("Renamed");
    std::fs::write(project.join("recorded/expected.json"), expected.to_string()).unwrap();
    file["runs"][0] = serde_json::from_str::<Value>(&cassette).unwrap()["runs"][0].clone();
    std::fs::write(project.join("recorded/cassette.json"), file.to_string()).unwrap();
    let differs = failed(&inlet(&project, replay, &[]), "a replay against a changed expected file");
    assert!(differs.contains("FAIL expected records: the records differ"), "{differs}");
    assert!(differs.contains("objects note/n002 differs"), "{differs}");

    // The project's own offline test passes as it comes.
    let template = project.join("tests/notes");
    if std::env::var_os("INLET_UPDATE_TEMPLATE_CASSETTE").is_some() {
        let shipped = root().join("host/src/scaffold/notes");
        std::fs::copy(project.join("recorded/cassette.json"), shipped.join("cassette.json")).unwrap();
        let _ = std::fs::remove_file(shipped.join("expected.json"));
        let update = ["plugin", "test", "acme-notes.wasm", "--cassette", "recorded", "--expect"];
        let target = shipped.join("expected.json");
        succeeded(&inlet(&project, &[&update[..], &[target.to_str().unwrap(), "--update"]].concat(), &[]), "update");
    }
    let out_of_the_box = [
        "plugin",
        "test",
        "acme-notes.wasm",
        "--cassette",
        template.to_str().unwrap(),
        "--expect",
        "tests/notes/expected.json",
    ];
    succeeded(&inlet(&project, &out_of_the_box, &[]), "the template's own offline test");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_python_plugin_builds_and_passes_the_same_offline_test_as_the_rust_one() {
    let scratch = tempfile::tempdir().unwrap();
    succeeded(
        &inlet(scratch.path(), &["plugin", "new", "py-notes", "--lang", "python"], &[]),
        "plugin new --lang python",
    );
    let project = scratch.path().join("py-notes");
    let source = std::fs::read_to_string(project.join("app.py")).unwrap();
    assert!(source.lines().count() <= 80, "the sample plugin is {} lines", source.lines().count());
    // The componentize-py that `cargo xtask build-plugins` installed, rather than a download per run.
    support::ensure_plugins_built();
    let tool = root().join("target/tools/componentize-py/bin/componentize-py");
    let mut build = std::process::Command::new("sh");
    build.arg("build.sh").current_dir(&project).env("COMPONENTIZE_PY", tool);
    assert!(build.status().unwrap().success(), "build.sh failed");

    // The cassette shipped with the project is the Rust sample's: the two ask for the same
    // URLs and make the same records.
    let offline =
        ["plugin", "test", "py-notes.wasm", "--cassette", "tests/notes", "--expect", "tests/notes/expected.json"];
    let replayed = succeeded(&inlet(&project, &offline, &[]), "the Python project's offline test");
    assert!(replayed.contains("ok   typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized"));

    let upstream = FakeNotes::start().await;
    let record = [
        "plugin",
        "test",
        "py-notes.wasm",
        "--instance-type",
        "notes",
        "--cassette",
        "recorded",
        "--record",
        "--upstream-override",
        &format!("api.example.com={upstream}"),
    ];
    let recorded = succeeded(&inlet(&project, &record, &[("INLET_API_KEY", API_KEY)]), "recording the Python plugin");
    assert!(recorded.contains("ok   record: 2 + 1 exchanges"), "{recorded}");
    assert!(recorded.contains("ok   stable ids: a second replay gave the same 60 records"), "{recorded}");
}

/// What `inlet plugin test` prints for one instance type of the careless
/// plugin, recorded against the fake and then replayed.
async fn careless(upstream: &str, instance_type: &str) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let wasm = test_plugin("careless");
    let cassette = scratch.path().join("cassette");
    let output = inlet(
        scratch.path(),
        &[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--instance-type",
            instance_type,
            "--cassette",
            cassette.to_str().unwrap(),
            "--record",
            "--upstream-override",
            &format!("api.example.com={upstream}"),
        ],
        &[("INLET_API_KEY", API_KEY)],
    );
    failed(&output, &format!("the careless plugin's {instance_type}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_careless_plugin_fails_the_standard_checks_with_messages_that_name_the_problem() {
    let upstream = FakeNotes::start().await;
    let unstable = careless(&upstream, "unstable-ids").await;
    assert!(
        unstable.contains(r#"FAIL describe: instance type "bad-schedule": its default schedule is invalid"#),
        "{unstable}"
    );
    assert!(
        unstable.contains(r#"FAIL config examples: instance type "no-examples": its config schema has no `examples`"#),
        "{unstable}"
    );
    assert!(unstable.contains("FAIL stable ids: two replays of the same cassette gave different records"));

    let churn = careless(&upstream, "churn").await;
    assert!(
        churn.contains("FAIL incremental run: a second run with nothing new upstream created 0, updated 50"),
        "{churn}"
    );
    assert!(churn.contains("ok   stable ids"), "{churn}");

    let untyped = careless(&upstream, "untyped-errors").await;
    assert!(
        untyped.contains("FAIL typed errors: when the first request was answered 500, the run failed as permanent"),
        "{untyped}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_plugin_loads_beside_rust_plugins_and_syncs_workouts_changes_and_deletions() {
    let (hevy, upstream) = FakeHevy::start().await;
    // The harness records and replays it like any plugin: it works at the host, not in the plugin.
    let scratch = tempfile::tempdir().unwrap();
    let cassette = match std::env::var_os("INLET_UPDATE_BUNDLED_CASSETTES") {
        Some(_) => root().join("plugins/hevy/tests/workouts"),
        None => scratch.path().join("workouts"),
    };
    let _ = std::fs::remove_dir_all(&cassette);
    let wasm = support::bundled_plugin("hevy");
    let expected = cassette.join("expected.json");
    let record = [
        "plugin",
        "test",
        wasm.to_str().unwrap(),
        "--instance-type",
        "workouts",
        "--cassette",
        cassette.to_str().unwrap(),
        "--record",
        "--expect",
        expected.to_str().unwrap(),
        "--update",
        "--upstream-override",
        &format!("api.hevyapp.com={upstream}"),
    ];
    let recorded = succeeded(&inlet(scratch.path(), &record, &[("INLET_API_KEY", HEVY_KEY)]), "recording hevy");
    assert!(recorded.contains("ok   record: 3 + 1 exchanges"), "{recorded}");
    assert!(recorded.contains("ok   typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized"));
    assert!(!std::fs::read_to_string(cassette.join("cassette.json")).unwrap().contains(HEVY_KEY));

    let inlet = support::Inlet::with_plugins(&[support::bundled_plugin("monzo"), support::bundled_plugin("hevy")])
        .env("INLET_UPSTREAM_OVERRIDE", &format!("api.hevyapp.com={upstream}"))
        .env("INLET_API_KEY", HEVY_KEY);
    let plugins = inlet.json(&["plugins", "--json"]).await;
    let loaded: Vec<(&str, &str)> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["contract"].as_str().unwrap()))
        .collect();
    assert_eq!(loaded, [("hevy", "0.2.0"), ("monzo", "0.2.0")], "{plugins}");

    let group = inlet.json(&["groups", "add", "hevy", "--name", "me", "--json"]).await["id"].to_string();
    let id =
        inlet.json(&["integrations", "add", "hevy", "workouts", "--group", &group, "--json"]).await["id"].to_string();
    let first = inlet.json(&["sync", &id, "--json"]).await;
    assert_eq!(first["records"]["created"], 23 + 46, "23 workouts and their 46 exercises: {first}");
    let records = inlet.json(&["records", &id]).await;
    let workout = &records["events"].as_array().unwrap().last().unwrap();
    assert_eq!(workout["kind"], "workout");
    assert_eq!(workout["value"], 51.0 * 60.0, "the newest workout lasted 51 minutes: {workout}");
    assert_eq!(workout["data"]["exercise_count"], 2);

    // Later runs ask for what changed since: one renamed, one deleted.
    hevy.rename(0, "Push day");
    hevy.delete(5);
    let second = inlet.json(&["sync", &id, "--json"]).await;
    assert_eq!(
        (second["records"]["updated"].as_i64(), second["records"]["deleted"].as_i64()),
        (Some(1), Some(1)),
        "{second}"
    );
    let records = inlet.json(&["records", &id]).await;
    let events = records["events"].as_array().unwrap();
    assert_eq!(events.len(), 22);
    assert!(events.iter().any(|e| e["data"]["title"] == "Push day"));
    let third = inlet.json(&["sync", &id, "--json"]).await;
    assert_eq!(third["records"]["created"].as_i64().unwrap() + third["records"]["updated"].as_i64().unwrap(), 0);

    // A refused key is a typed error the host acts on: the integration waits for a reconnect.
    let bad = support::Inlet::with_plugins(&[support::bundled_plugin("hevy")])
        .env("INLET_UPSTREAM_OVERRIDE", &format!("api.hevyapp.com={upstream}"))
        .env("INLET_API_KEY", "wrong");
    let group = bad.json(&["groups", "add", "hevy", "--name", "me", "--json"]).await["id"].to_string();
    let id =
        bad.json(&["integrations", "add", "hevy", "workouts", "--group", &group, "--json"]).await["id"].to_string();
    let refused = bad.run(&["sync", &id]).await;
    assert!(text(&refused.stderr).contains("failed (unauthorized)"), "{}", text(&refused.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundled_plugins_pass_the_standard_checks_on_their_cassettes() {
    let mut tested = Vec::new();
    // Apple Health's cassettes hold a Health Auto Export delivery instead of HTTP exchanges.
    let cassettes = [
        ("monzo", &["accounts", "balances", "pots", "transactions"][..]),
        ("hevy", &["workouts"][..]),
        ("apple-health", &["workouts", "metrics"][..]),
        ("google-sheets", &["rows", "spreadsheet"][..]),
        ("spotify", &["recently-played", "saved-tracks", "playlists"][..]),
        ("github", &["events", "repositories", "starred"][..]),
        ("oura", &["daily-sleep", "daily-activity", "daily-readiness", "sleep", "heartrate", "workouts"][..]),
    ];
    for (plugin, instance_types) in cassettes {
        let wasm = support::bundled_plugin(plugin);
        for instance_type in instance_types {
            let cassette: PathBuf = root().join("plugins").join(plugin).join("tests").join(instance_type);
            let expected = cassette.join("expected.json");
            let args = [
                "plugin",
                "test",
                wasm.to_str().unwrap(),
                "--cassette",
                cassette.to_str().unwrap(),
                "--expect",
                expected.to_str().unwrap(),
            ];
            let output = succeeded(&inlet(&root(), &args, &[]), &format!("{plugin} {instance_type}"));
            let pushed = plugin == "apple-health";
            let checked = if pushed { "ok   second delivery" } else { "ok   typed errors" };
            assert!(output.contains(checked), "{plugin} {instance_type}: {output}");
            tested.push(format!("{plugin}/{instance_type}"));
        }
    }
    assert_eq!(tested.len(), 7 + 14);
}
