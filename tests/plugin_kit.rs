//! The plugin author's kit through the real binary: `inlet plugin new`
//! scaffolds a project that builds on its own; `inlet plugin test` records
//! a cassette against a fake upstream, replays it offline and runs the
//! standard checks, which name what a careless plugin gets wrong; and the
//! bundled plugins pass them on their own cassettes.

mod support;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use inlet::demo::fake_hevy::{API_KEY as HEVY_KEY, FakeHevy, HevyData};
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
    assert!(recorded.contains("ok   typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized, 429 without Retry-After → rate-limited"), "{recorded}");
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
    assert!(replayed.contains("ok   typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized, 429 without Retry-After → rate-limited"), "{replayed}");

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
    let hevy = FakeHevy::start(HevyData::sample(chrono::Utc::now().timestamp_millis())).await.unwrap();
    let upstream = hevy.base_url();
    let workouts = hevy.update(|data| data.workouts.clone());
    let exercises = |workout: &Value| workout["exercises"].as_array().unwrap().len();
    let exercise_count: usize = workouts.iter().map(exercises).sum();
    // The harness records and replays it like any plugin: it works at the host, not in the plugin.
    let scratch = tempfile::tempdir().unwrap();
    let cassette = scratch.path().join("workouts");
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
    assert!(
        recorded.contains("ok   record: 3 + 1 exchanges"),
        "25 workouts in pages of 10, then the events: {recorded}"
    );
    assert!(recorded.contains("ok   typed errors"), "{recorded}");
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
    let first = inlet.synced(&["sync", &id, "--json"]).await;
    assert_eq!(first["records"]["created"], 25 + exercise_count, "the workouts and their exercises: {first}");
    let records = inlet.json(&["records", &id]).await;
    let workout = &records["events"].as_array().unwrap().last().unwrap();
    let newest = &workouts[0];
    let at = |field: &str| chrono::DateTime::parse_from_rfc3339(newest[field].as_str().unwrap()).unwrap();
    assert_eq!(workout["kind"], "workout");
    assert_eq!(workout["external_id"], newest["id"]);
    assert_eq!(workout["value"], (at("end_time") - at("start_time")).num_seconds() as f64, "its duration: {workout}");
    assert_eq!(workout["data"]["exercise_count"], exercises(newest));

    // Later runs ask for what changed since: one renamed, one deleted.
    let (renamed, deleted) = (newest["id"].as_str().unwrap(), workouts[5]["id"].as_str().unwrap());
    hevy.update(|data| {
        assert!(data.edit_workout(renamed, |w| w["title"] = json!("Push day")));
        assert!(data.delete_workout(deleted));
    });
    let second = inlet.synced(&["sync", &id, "--json"]).await;
    assert_eq!(
        (second["records"]["updated"].as_i64(), second["records"]["deleted"].as_i64()),
        (Some(1), Some(1)),
        "{second}"
    );
    let records = inlet.json(&["records", &id]).await;
    let events = records["events"].as_array().unwrap();
    assert_eq!(events.len(), 24);
    assert!(events.iter().any(|e| e["data"]["title"] == "Push day"));
    let third = inlet.synced(&["sync", &id, "--json"]).await;
    assert_eq!(third["records"]["created"].as_i64().unwrap() + third["records"]["updated"].as_i64().unwrap(), 0);

    // A refused key is a typed error the host acts on: the operator must fix the key.
    let bad = support::Inlet::with_plugins(&[support::bundled_plugin("hevy")])
        .env("INLET_UPSTREAM_OVERRIDE", &format!("api.hevyapp.com={upstream}"))
        .env("INLET_API_KEY", "wrong");
    let group = bad.json(&["groups", "add", "hevy", "--name", "me", "--json"]).await["id"].to_string();
    let id =
        bad.json(&["integrations", "add", "hevy", "workouts", "--group", &group, "--json"]).await["id"].to_string();
    let refused = bad.run(&["sync", &id]).await;
    assert!(text(&refused.stderr).contains("failed (invalid-config)"), "{}", text(&refused.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundled_plugins_pass_the_standard_checks_on_their_cassettes() {
    let mut tested = Vec::new();
    // Apple Health's cassettes hold a Health Auto Export delivery instead of HTTP exchanges.
    let cassettes = [
        ("monzo", &["accounts", "balances", "pots", "transactions"][..]),
        ("hevy", &["workouts", "routines", "exercise-templates"][..]),
        ("apple-health", &["workouts", "metrics"][..]),
        ("google-sheets", &["rows", "spreadsheet"][..]),
        ("spotify", &["recently-played", "saved-tracks", "playlists"][..]),
        ("github", &["events", "repositories", "starred"][..]),
        ("oura", &["daily-sleep", "daily-activity", "daily-readiness", "sleep", "heartrate", "workouts"][..]),
        ("gocardless", &["accounts", "balances", "transactions"][..]),
        ("slack", &["channels", "history"][..]),
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
    assert_eq!(tested.len(), 9 + 14 + 5);
}
