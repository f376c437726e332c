//! Misbehaving plugins: each fails only its own run, with an error that says
//! what happened, and the host goes on serving well-behaved runs.

mod support;

use inlet::settings::{Settings, SettingsArgs};
use inlet::store::groups::Credentials;
use inlet::store::integrations::NewIntegration;
use inlet::sync::RunRequest;
use inlet::{Host, HostOptions};
use support::{Inlet, test_plugin};

#[tokio::test(flavor = "multi_thread")]
async fn each_misbehaviour_fails_only_its_own_run() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).config("[queues.fetch]\ntimeout_seconds = 2\n");
    let args = SettingsArgs {
        data_dir: Some(inlet.data_dir()),
        database_url: None,
        plugins_dir: Some(inlet.plugins_dir()),
        config_file: Some(inlet.config_file()),
        upstream_override: None,
        public_url: None,
    };
    let host = Host::start(&Settings::resolve(&args).unwrap(), HostOptions::default()).await.unwrap();
    let store = host.store();
    let group = store.insert_group("misbehave", "test", &Credentials::default()).await.unwrap();
    let add = |instance_type: &'static str| async move {
        let new = NewIntegration {
            plugin_id: "misbehave",
            instance_type,
            group_id: group,
            name: instance_type,
            config: "{}",
            schedule: None,
            first_due_at: None,
        };
        store.insert_integration(&new).await.unwrap()
    };
    let ok = add("ok").await;
    let run = |id: i64| {
        let host = &host;
        async move { host.runner.run(&RunRequest::manual(id)).await.unwrap() }
    };

    for (instance_type, class, expected) in [
        ("loop", "trap", "ran past its 2s deadline in fetch"),
        ("alloc", "trap", "reached its memory limit of 256 MiB"),
        ("undeclared-host", "permanent", "https://evil.example.com/exfiltrate is not on the plugin's declared hosts"),
        ("loopback", "permanent", "http://127.0.0.1:5432/ is a loopback address"),
        ("giant-emit", "permanent", "exceeds the 8388608-byte cap"),
    ] {
        let started = std::time::Instant::now();
        let outcome = run(add(instance_type).await).await;
        let message = outcome.error_message.clone().unwrap_or_default();
        assert_eq!(outcome.status.as_str(), "failed", "{instance_type}");
        assert_eq!(outcome.error_class.as_deref(), Some(class), "{instance_type}: {message}");
        assert!(message.contains(expected), "{instance_type}: {message}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{instance_type} was stopped promptly");

        // The host is unharmed: a well-behaved run right after succeeds.
        let fine = run(ok).await;
        assert_eq!(fine.status.as_str(), "success", "after {instance_type}: {:?}", fine.error_message);
    }

    // A log flood is capped, not fatal: the run succeeds and says what it dropped.
    let flood = run(add("log-flood").await).await;
    assert_eq!(flood.status.as_str(), "success", "{:?}", flood.error_message);
    let logs = store.sync_run_logs(flood.id).await.unwrap();
    assert_eq!(logs.len(), 1_001);
    assert_eq!(logs.last().unwrap().message, "99000 further log lines were dropped (limit per run)");

    // State is per integration: another integration of the same plugin sees nothing.
    let writer = add("state-write").await;
    assert_eq!(run(writer).await.status.as_str(), "success");
    assert_eq!(store.state_value(writer, "secret").await.unwrap().as_deref(), Some("only-for-state-write"));
    let peeker = add("state-peek").await;
    assert_eq!(run(peeker).await.status.as_str(), "success");
    let seen = store.objects(peeker).await.unwrap();
    assert_eq!(seen[0].name.as_deref(), Some("nothing"), "one integration cannot read another's state");
}
