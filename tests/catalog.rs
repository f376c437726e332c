//! The catalog end to end: each bundled plugin (Google Sheets, Spotify,
//! GitHub, Oura) through the real `inlet` binary against its fake upstream,
//! and its cassettes recorded by `inlet plugin test --record` against the same
//! fake. One test binary for all of them, one module per plugin.

mod support;

#[path = "catalog/github.rs"]
mod github;
#[path = "catalog/google_sheets.rs"]
mod google_sheets;
#[path = "catalog/oura.rs"]
mod oura;
#[path = "catalog/spotify.rs"]
mod spotify;

use std::path::PathBuf;
use support::{root, text};

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
