//! Files in the plugins folder that are not good inlet plugins, and a plugin
//! that crashes: each is reported clearly and nothing else is affected.

mod support;

use inlet::settings::{Settings, SettingsArgs};
use inlet::store::sync_runs::RunStatus;
use inlet::sync::RunRequest;
use inlet::{Host, HostOptions};
use support::{Inlet, bundled_plugin, test_plugin, text};
use tokio::io::{AsyncBufReadExt, BufReader};

fn broken_files(inlet: &Inlet) {
    let monzo = std::fs::read(bundled_plugin("monzo")).unwrap();
    inlet.add_plugin_file("truncated.wasm", &monzo[..monzo.len() / 2]);
    inlet.add_plugin_file("core-module.wasm", &wat::parse_str("(module)").unwrap());
    inlet.add_plugin_file("empty-component.wasm", &wat::parse_str("(component)").unwrap());
    inlet.add_plugin_file("not-wasm.wasm", b"#!/bin/sh\necho hello\n");
    inlet.add_plugin_file("README.txt", b"not a plugin, and not named .wasm");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_files_are_reported_by_name_and_skipped() {
    let inlet = Inlet::with_plugins(&[bundled_plugin("monzo"), test_plugin("misbehave")]);
    broken_files(&inlet);

    let listed = inlet.json(&["plugins", "--json"]).await;
    let ids: Vec<&str> = listed["plugins"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["misbehave", "monzo"]);
    let monzo = &listed["plugins"][1];
    assert_eq!(monzo["hosts"], serde_json::json!(["api.monzo.com"]));
    assert_eq!(monzo["instance_types"], serde_json::json!(["accounts", "balances", "pots", "transactions"]));

    let failures: Vec<(String, String)> = listed["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            let name = file.rsplit('/').next().unwrap().to_string();
            (name, f["reason"].as_str().unwrap().to_string())
        })
        .collect();
    let reason = |name: &str| {
        &failures.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} not reported: {failures:?}")).1
    };
    assert_eq!(failures.len(), 4, "{failures:?}");
    assert!(reason("truncated.wasm").contains("not a valid WebAssembly component"), "{failures:?}");
    assert!(reason("core-module.wasm").contains("core WebAssembly module, not a component"), "{failures:?}");
    assert!(reason("empty-component.wasm").contains("does not export the inlet:plugin@0.1.0 world"), "{failures:?}");
    assert!(reason("not-wasm.wasm").contains("not a WebAssembly file"), "{failures:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_keeps_running_beside_broken_plugin_files() {
    let inlet = Inlet::with_plugins(&[bundled_plugin("monzo")]);
    broken_files(&inlet);
    let mut child = inlet
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = stdout.next_line().await.unwrap().expect("serve prints its address");
    let url = line.strip_prefix("inlet listening on ").unwrap_or_else(|| panic!("unexpected line {line}"));
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stderr = text(&output.stderr);
    assert!(stderr.contains("plugin monzo 0.1.0 loaded"), "{stderr}");
    for name in ["truncated.wasm", "core-module.wasm", "empty-component.wasm", "not-wasm.wasm"] {
        assert!(stderr.contains(&format!("{name} skipped")), "{name} not reported: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_traps_fails_only_its_own_run() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]);
    let group = inlet.json(&["groups", "add", "misbehave", "--name", "test", "--json"]).await["id"].to_string();
    let trap =
        inlet.json(&["integrations", "add", "misbehave", "trap", "--group", &group, "--json"]).await["id"].to_string();
    let ok =
        inlet.json(&["integrations", "add", "misbehave", "ok", "--group", &group, "--json"]).await["id"].to_string();

    // Through the binary: a clear error naming the integration, plugin and export.
    let output = inlet.run(&["sync", &trap]).await;
    assert!(!output.status.success());
    let printed = text(&output.stdout) + &text(&output.stderr);
    assert!(printed.contains(&format!("integration {trap}")), "{printed}");
    assert!(printed.contains("plugin misbehave trapped in fetch"), "{printed}");
    assert!(printed.contains("deliberate panic in fetch"), "the panic message is kept: {printed}");

    // Through the library, in one host: the trap is recorded and the next
    // well-behaved run in the same process succeeds.
    let args = SettingsArgs {
        data_dir: Some(inlet.data_dir()),
        database_url: None,
        plugins_dir: Some(inlet.plugins_dir()),
        config_file: None,
        upstream_override: None,
        public_url: None,
    };
    let host = Host::start(&Settings::resolve(&args).unwrap(), HostOptions::default()).await.unwrap();
    let trapped = host.runner.run(&RunRequest::manual(trap.parse().unwrap())).await.unwrap();
    assert_eq!(trapped.status, RunStatus::Failed);
    assert_eq!(trapped.error_class.as_deref(), Some("trap"));
    let fine = host.runner.run(&RunRequest::manual(ok.parse().unwrap())).await.unwrap();
    assert_eq!(fine.status, RunStatus::Success, "{:?}", fine.error_message);
    assert_eq!(fine.records.created, 1);
    let objects = host.store().objects(ok.parse().unwrap()).await.unwrap();
    assert_eq!(objects[0].external_id, "thing-1");
}
