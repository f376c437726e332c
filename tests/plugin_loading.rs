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
    // Names the contract, but its `describe` answers a number, not a manifest.
    let wrong_export = r#"(component
        (import "inlet:plugin/types@0.2.0" (instance))
        (core module $m (func (export "zero") (result i32) i32.const 0))
        (core instance $i (instantiate $m))
        (func (export "describe") (result u32) (canon lift (core func $i "zero"))))"#;
    inlet.add_plugin_file("wrong-export.wasm", &wat::parse_str(wrong_export).unwrap());
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
    assert_eq!(monzo["contract"], "0.2.0", "read from the component's imports");
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
    assert_eq!(failures.len(), 5, "{failures:?}");
    assert!(reason("truncated.wasm").contains("not a valid WebAssembly component"), "{failures:?}");
    assert!(reason("core-module.wasm").contains("core WebAssembly module, not a component"), "{failures:?}");
    assert!(
        reason("empty-component.wasm").contains(
            "imports no inlet:plugin interface: build it against a contract version this host serves (0.1.0, 0.2.0)"
        ),
        "{failures:?}"
    );
    assert!(reason("not-wasm.wasm").contains("not a WebAssembly file"), "{failures:?}");
    assert!(
        reason("wrong-export.wasm")
            .contains("does not export the inlet:plugin@0.2.0 world: its export `describe` has the wrong type"),
        "{failures:?}"
    );
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
    assert!(stderr.contains("plugin monzo 0.1.0 (contract 0.2.0) loaded"), "{stderr}");
    for name in ["truncated.wasm", "core-module.wasm", "empty-component.wasm", "not-wasm.wasm", "wrong-export.wasm"] {
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
    let trapped = host.runner.run(&RunRequest::manual(trap.parse().unwrap())).await.unwrap().outcome().clone();
    assert_eq!(trapped.status, RunStatus::Failed);
    assert_eq!(trapped.error_class.map(|c| c.as_str()), Some("trap"));
    let fine = host.runner.run(&RunRequest::manual(ok.parse().unwrap())).await.unwrap().outcome().clone();
    assert_eq!(fine.status, RunStatus::Success, "{:?}", fine.error_message);
    assert_eq!(fine.records.created, 1);
    let objects = host.store().objects(ok.parse().unwrap()).await.unwrap();
    assert_eq!(objects[0].external_id, "thing-1");
}

/// The newest run of `integration` that satisfies `done`, within `seconds`.
async fn run_where(
    store: &inlet::store::Store,
    integration: i64,
    seconds: u64,
    what: &str,
    done: impl Fn(&inlet::store::sync_runs::SyncRun) -> bool,
) -> inlet::store::sync_runs::SyncRun {
    support::eventually(seconds, what, || async {
        store.sync_runs(integration, 1).await.unwrap().into_iter().next().filter(|run| done(run))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_files_are_picked_up_replaced_and_removed_while_serving() {
    use inlet::demo::{FakeMonzo, MonzoDataset};
    let fake = FakeMonzo::start(MonzoDataset::sample(chrono::Utc::now().timestamp_millis())).await.unwrap();
    let misbehave = std::fs::read(test_plugin("misbehave")).unwrap();
    let monzo = std::fs::read(bundled_plugin("monzo")).unwrap();
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")])
        .env("INLET_UPSTREAM_OVERRIDE", &format!("api.monzo.com={}", fake.base_url()))
        .env("INLET_LOG", "warn,inlet=info")
        .config("plugins_poll_seconds = 0.2\n");
    let group = inlet.json(&["groups", "add", "misbehave", "--name", "g", "--json"]).await["id"].to_string();
    let add = |instance_type: &'static str| {
        let group = group.clone();
        let inlet = &inlet;
        async move {
            let args = ["integrations", "add", "misbehave", instance_type, "--group", &group, "--manual", "--json"];
            inlet.json(&args).await["id"].as_i64().unwrap()
        }
    };
    let (slow, ok) = (add("slow").await, add("ok").await);
    let log = inlet.dir().join("serve.log");
    let _serve = inlet.spawn_logged(&["serve", "--listen", "127.0.0.1:0"], &log).await;
    let store = inlet.store().await;
    let logged = |needle: &'static str| {
        let log = log.clone();
        async move {
            support::eventually(20, needle, || async {
                std::fs::read_to_string(&log).unwrap().contains(needle).then_some(())
            })
            .await
        }
    };
    let force = |id: i64| {
        let inlet = &inlet;
        async move {
            let output = inlet.run(&["sync", &id.to_string(), "--force"]).await;
            assert!(output.status.success(), "{}", text(&output.stderr));
        }
    };

    // A new plugin dropped in is served without a restart.
    inlet.add_plugin_file("monzo.wasm", &monzo);
    logged("plugin loaded").await;
    let token = fake.access_token();
    let monzo_group = inlet.json(&["groups", "add", "monzo", "--name", "m", "--access-token", &token, "--json"]).await;
    let accounts = inlet
        .json(&[
            "integrations",
            "add",
            "monzo",
            "accounts",
            "--group",
            &monzo_group["id"].to_string(),
            "--manual",
            "--json",
        ])
        .await["id"]
        .as_i64()
        .unwrap();
    force(accounts).await;
    run_where(&store, accounts, 20, "the monzo run", |r| r.status == RunStatus::Success).await;

    // A broken replacement during a run: the run finishes, the old version keeps serving.
    force(slow).await;
    run_where(&store, slow, 20, "the slow run to start", |r| r.status == RunStatus::Running).await;
    inlet.add_plugin_file("misbehave.wasm", &monzo[..monzo.len() / 2]);
    logged("the version loaded before keeps serving misbehave").await;
    run_where(&store, slow, 20, "the slow run to finish", |r| r.status == RunStatus::Success).await;
    force(ok).await;
    run_where(&store, ok, 20, "an ok run on the old version", |r| r.status == RunStatus::Success).await;

    // The plugin removed: its runs wait without spending attempts, and its
    // integrations say so.
    std::fs::remove_file(inlet.plugins_dir().join("misbehave.wasm")).unwrap();
    logged("plugin file removed").await;
    force(ok).await;
    let waiting = run_where(&store, ok, 20, "a run that found no plugin", |r| r.status == RunStatus::Failed).await;
    assert_eq!(waiting.error_class.map(|c| c.as_str()), Some("plugin-missing"));
    let (attempt, state): (i64, String) =
        sqlx::query_as("SELECT attempt, state FROM jobs WHERE integration_id = $1 ORDER BY id DESC LIMIT 1")
            .bind(ok)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((attempt, state.as_str()), (0, "available"), "the attempt is given back and the job waits");
    let listed = inlet.json(&["schedule", "list", "--json"]).await;
    let row = listed.as_array().unwrap().iter().find(|r| r["id"] == ok).unwrap().clone();
    assert_eq!(row["status_label"], "Plugin missing", "{row:#}");

    // Back again: the waiting job runs at once, not after its 60 s wait.
    inlet.add_plugin_file("misbehave.wasm", &misbehave);
    run_where(&store, ok, 10, "the waiting run once the plugin is back", |r| r.status == RunStatus::Success).await;
}

/// A corrected build of a plugin fixes data already stored: `inlet
/// reprocess` (or the API's, through the workers) runs its `process` over the
/// kept batches and updates the records in place, as a run of trigger
/// `reprocess`, and no request reaches the upstream.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrected_plugin_reprocesses_stored_batches_without_refetching() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const TOKEN: &str = "reprocess-test-admin-token";
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let items =
        serde_json::json!([{"id": "a", "title": "Alpha", "year": 2020}, {"id": "b", "title": "Beta", "year": 2021}]);
    let upstream = axum::Router::new().route(
        "/items",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let items = items.clone();
            async move { axum::Json(items) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, upstream).await.unwrap() });
    let inlet = Inlet::with_plugins(&[test_plugin("remap")])
        .env("INLET_UPSTREAM_OVERRIDE", &format!("items.test=http://{address}"))
        .env("INLET_ADMIN_TOKEN", TOKEN);
    let group = inlet.json(&["groups", "add", "remap", "--name", "test", "--json"]).await["id"].to_string();
    let id =
        inlet.json(&["integrations", "add", "remap", "items", "--group", &group, "--manual", "--json"]).await["id"]
            .to_string();
    let synced = inlet.run(&["sync", &id]).await;
    assert!(synced.status.success(), "{}", text(&synced.stderr));
    let store = inlet.store().await;
    let names = || async {
        let objects = store.objects(id.parse().unwrap()).await.unwrap();
        objects.into_iter().map(|o| o.name.unwrap_or_default()).collect::<Vec<_>>()
    };
    assert_eq!(names().await, ["Alpha", "Beta"]);
    assert_eq!(requests.load(Ordering::SeqCst), 1);

    let last_success = |rows: serde_json::Value| {
        rows.as_array().unwrap().iter().find(|r| r["id"].as_i64() == id.parse().ok()).unwrap()["last_success_at"]
            .clone()
    };
    let fetched_at = last_success(inlet.json(&["schedule", "list", "--json"]).await);

    // The fixed build replaces the file; reprocessing corrects the records.
    inlet.add_plugin_file("remap.wasm", &std::fs::read(test_plugin("remap-v2")).unwrap());
    let reprocessed = inlet.run(&["reprocess", &id]).await;
    let printed = text(&reprocessed.stdout);
    assert!(reprocessed.status.success(), "{printed}{}", text(&reprocessed.stderr));
    assert!(
        printed.contains("success (reprocess, attempt 1)") && printed.contains("0 created, 2 updated"),
        "{printed}"
    );
    assert_eq!(names().await, ["Alpha (2020)", "Beta (2021)"]);
    let runs = inlet.json(&["runs", &id, "--json"]).await;
    assert_eq!(
        (runs[0]["run"]["trigger"].as_str(), runs[0]["run"]["records"]["updated"].as_i64()),
        (Some("reprocess"), Some(2))
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1, "no request reached the upstream");
    let rows = inlet.json(&["schedule", "list", "--json"]).await;
    assert_eq!(last_success(rows), fetched_at, "a reprocess fetches nothing: the last success is the fetch's");
    let since_tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let none = text(&inlet.run(&["reprocess", &id, "--since", &since_tomorrow]).await.stdout);
    assert!(none.contains("records 0 created, 0 updated, 0 unchanged"), "no batch stored since then: {none}");

    // Through the API, the workers do the same: a queued run of trigger `reprocess`.
    let (mut serve, base) = inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;
    let client = reqwest::Client::new();
    let queued =
        client.post(format!("{base}/api/integrations/{id}/reprocess")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(queued.status(), 202);
    let run_id = queued.json::<serde_json::Value>().await.unwrap()["run_id"].as_i64().unwrap();
    let run = support::eventually(30, "the queued reprocess to finish", || async {
        let run = store.sync_run(run_id).await.unwrap()?;
        (run.status == RunStatus::Success).then_some(run)
    })
    .await;
    assert_eq!((run.trigger.as_str(), run.records.unchanged), ("reprocess", 2), "{run:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 1, "no request reached the upstream");
    serve.start_kill().unwrap();
    serve.wait().await.unwrap();

    // Kept for as long as configured: with no retention, the history task
    // prunes them, and there is nothing left to reprocess.
    std::fs::write(inlet.dir().join("inlet.toml"), "processed_batches_max_age_days = 0\n").unwrap();
    let rows = inlet.json(&["schedule", "list", "--json"]).await;
    let prune =
        rows.as_array().unwrap().iter().find(|r| r["instance_type"] == "prune-history").unwrap()["id"].to_string();
    let refused = inlet.run(&["reprocess", &prune]).await;
    assert!(
        text(&refused.stderr).contains("one of the host's tasks, which store no data"),
        "{}",
        text(&refused.stderr)
    );
    let pruned = text(&inlet.run(&["sync", &prune]).await.stdout);
    assert!(pruned.contains("run "), "{pruned}");
    let after = text(&inlet.run(&["reprocess", &id]).await.stdout);
    assert!(after.contains("records 0 created, 0 updated, 0 unchanged"), "nothing kept: {after}");
}
