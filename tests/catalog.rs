//! The catalog end to end: each bundled plugin (Google Sheets, Spotify,
//! GitHub, Oura, Hevy, GoCardless, Slack, and the digest task) through the
//! real `inlet` binary against its fake upstream, and its cassettes recorded
//! by `inlet plugin test --record` against the same fake. One test binary for
//! all of them, one module per plugin.

mod support;

#[path = "catalog/digest.rs"]
mod digest;
#[path = "catalog/github.rs"]
mod github;
#[path = "catalog/gocardless.rs"]
mod gocardless;
#[path = "catalog/google_sheets.rs"]
mod google_sheets;
#[path = "catalog/hevy.rs"]
mod hevy;
#[path = "catalog/oura.rs"]
mod oura;
#[path = "catalog/slack.rs"]
mod slack;
#[path = "catalog/spotify.rs"]
mod spotify;

use serde_json::Value;
use std::path::PathBuf;
use support::{Inlet, root, text};

/// `inlet sync <id> --json`: the sync as a whole (see `sync_summary`),
/// failed or not (the exit status must say which).
pub async fn sync(inlet: &Inlet, id: &str) -> Value {
    let output = inlet.run(&["sync", id, "--json"]).await;
    let runs: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("sync {id} printed no run ({e}): {}\n{}", text(&output.stdout), text(&output.stderr))
    });
    let run = support::sync_summary(&runs);
    assert_eq!(output.status.success(), run["status"] == "success", "{run:#}");
    run
}

/// `inlet sync <id> --json`, requiring the run to end `status` (`success` or `failed`).
pub async fn sync_ending(inlet: &Inlet, id: &str, status: &str) -> Value {
    let run = sync(inlet, id).await;
    assert_eq!(run["status"], status, "{run:#}");
    run
}

/// Record `instance_type`'s cassette against a fake with `inlet plugin test
/// --record` (which then replays it and runs every standard check), and return
/// the harness's report, requiring that every check passed. The cassette goes
/// to `plugins/<plugin>/tests/<instance type>/` with its expected records when
/// `INLET_UPDATE_BUNDLED_CASSETTES` is set (the bundled cassettes are made this
/// way), else to a scratch folder. `overrides` is `host=url,...`; `credentials`
/// are environment variables such as `INLET_ACCESS_TOKEN`.
pub fn record_cassette(
    plugin: &str,
    instance_type: &str,
    config: Option<&str>,
    overrides: &str,
    credentials: &[(&str, &str)],
) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let cassette: PathBuf = match std::env::var_os("INLET_UPDATE_BUNDLED_CASSETTES") {
        Some(_) => root().join("plugins").join(plugin).join("tests").join(instance_type),
        None => scratch.path().join(instance_type),
    };
    let _ = std::fs::remove_dir_all(&cassette);
    let wasm = support::bundled_plugin(plugin);
    let expected = cassette.join("expected.json");
    let mut args = vec![
        "plugin",
        "test",
        wasm.to_str().unwrap(),
        "--instance-type",
        instance_type,
        "--cassette",
        cassette.to_str().unwrap(),
        "--record",
        "--expect",
        expected.to_str().unwrap(),
        "--update",
        "--upstream-override",
        overrides,
    ];
    if let Some(config) = config {
        args.extend(["--config", config]);
    }
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_inlet"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("INLET_")) {
        command.env_remove(key);
    }
    let output =
        command.args(&args).envs(credentials.iter().copied()).current_dir(scratch.path()).output().expect("inlet");
    let report = text(&output.stdout);
    assert!(output.status.success(), "recording {plugin} {instance_type} failed:\n{report}\n{}", text(&output.stderr));
    for secret in credentials.iter().map(|(_, value)| value) {
        let recorded = std::fs::read_to_string(cassette.join("cassette.json")).unwrap();
        assert!(!recorded.contains(secret), "{plugin} {instance_type}: the cassette holds a credential");
    }
    report
}

/// `inlet serve --demo` (what `cargo xtask run --demo` starts) connects one
/// group to each catalog plugin's fake and every instance type syncs.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_syncs_every_catalog_plugin_against_its_fake() {
    let expected = [
        ("monzo", &["accounts", "balances", "pots", "transactions"][..]),
        ("google-sheets", &["rows", "spreadsheet"][..]),
        ("spotify", &["recently-played", "saved-tracks", "playlists"][..]),
        ("github", &["events", "repositories", "starred"][..]),
        ("oura", &["daily-sleep", "daily-activity", "daily-readiness", "sleep", "heartrate", "workouts"][..]),
        ("hevy", &["workouts", "routines", "exercise-templates"][..]),
        ("gocardless", &["accounts", "balances", "transactions"][..]),
        ("slack", &["channels", "history"][..]),
    ];
    let mut plugins: Vec<PathBuf> = expected.iter().map(|(id, _)| support::bundled_plugin(id)).collect();
    plugins.push(support::bundled_plugin("digest"));
    let inlet = support::Inlet::with_plugins(&plugins);
    let log = inlet.dir().join("serve.log");
    // The demo syncs before the server listens: once it listens, the log is complete.
    let (server, _) = inlet.spawn_logged_listening(&["serve", "--demo", "--listen", "127.0.0.1:0"], &log).await;
    support::terminate(&server);
    let log = std::fs::read_to_string(&log).unwrap();
    let groups = log.lines().filter(|l| l.starts_with("demo: fake ")).count();
    assert_eq!(groups, expected.len(), "one group per plugin:\n{log}");
    for (plugin, instance_types) in expected {
        for instance_type in instance_types {
            let line = log
                .lines()
                .find(|l| l.starts_with(&format!("demo: {plugin} ")) && l.contains(&format!("({instance_type})")));
            let line = line.unwrap_or_else(|| panic!("no demo run of {plugin} {instance_type}:\n{log}"));
            assert!(line.contains(" success: ") && !line.contains(" 0 created"), "{line}");
        }
    }
    // Then a digest of what they all brought.
    let digest = log.lines().find(|l| l.starts_with("demo: digest ") && l.contains("(daily)"));
    let digest = digest.unwrap_or_else(|| panic!("no demo run of the digest:\n{log}"));
    assert!(digest.contains(" success: ") && !digest.contains(" 0 created"), "{digest}");
}
