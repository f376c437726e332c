//! Misbehaving plugins: each fails only its own run, with an error that says
//! what happened, and the host goes on serving well-behaved runs.

mod support;

use inlet::domain::group_status::GroupStatus;
use inlet::domain::pause_reason::PauseReason;
use inlet::settings::{Settings, SettingsArgs};
use inlet::store::groups::Credentials;
use inlet::store::integrations::NewIntegration;
use inlet::store::sync_runs::SyncRun;
use inlet::sync::RunRequest;
use inlet::{Host, HostOptions};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use support::{Inlet, test_plugin};

/// A host with the misbehave plugin (and api-key) and one misbehave group,
/// configured by `config`.
struct Sandbox {
    host: Host,
    group: i64,
    _inlet: Inlet,
}

impl Sandbox {
    async fn start(config: &str) -> Sandbox {
        let inlet = Inlet::with_plugins(&[test_plugin("misbehave"), test_plugin("api-key")]).config(config);
        let host = start_host(&inlet).await;
        let group = host.store().insert_group("misbehave", "test", &Credentials::default()).await.unwrap();
        Sandbox { host, group, _inlet: inlet }
    }

    async fn add(&self, instance_type: &str) -> i64 {
        let new = NewIntegration {
            plugin_id: "misbehave",
            instance_type,
            group_id: self.group,
            name: instance_type,
            config: "{}",
            schedule: None,
            first_due_at: None,
            paused_reason: None,
        };
        self.host.store().insert_integration(&new).await.unwrap()
    }

    /// Sync `id`: the run that says how it went.
    async fn run(&self, id: i64) -> SyncRun {
        self.host.runner.run(&RunRequest::manual(id)).await.unwrap().outcome().clone()
    }

    /// Sync a new integration of `instance_type`: its fetch run.
    async fn fetch_new(&self, instance_type: &str) -> SyncRun {
        let id = self.add(instance_type).await;
        self.host.runner.run(&RunRequest::manual(id)).await.unwrap().0.remove(0)
    }

    /// Run a new integration of `instance_type`.
    async fn run_new(&self, instance_type: &str) -> SyncRun {
        self.run(self.add(instance_type).await).await
    }

    /// Stop this host and start another on the same data with `config`.
    async fn restart(self, config: &str) -> Sandbox {
        let Sandbox { host, group, _inlet: inlet } = self;
        drop(host);
        let inlet = inlet.config(config);
        Sandbox { host: start_host(&inlet).await, group, _inlet: inlet }
    }
}

async fn start_host(inlet: &Inlet) -> Host {
    let args = SettingsArgs {
        data_dir: Some(inlet.data_dir()),
        database_url: None,
        plugins_dir: Some(inlet.plugins_dir()),
        config_file: Some(inlet.config_file()),
        upstream_override: None,
        public_url: None,
    };
    Host::start(&Settings::resolve(&args).unwrap(), HostOptions::default()).await.unwrap()
}

/// A loopback server that accepts connections and never answers.
fn silent_upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_ends_at_its_deadline_whatever_the_plugin_is_doing() {
    let config = format!(
        "[queues.fetch]\ntimeout_seconds = 2\n[upstream_override]\n\"hang.test\" = \"{}\"\n",
        silent_upstream()
    );
    let sandbox = Sandbox::start(&config).await;
    // Blocked in WASI's sleep, and waiting on an upstream that never answers
    // (the request timeout is 30 s: the call's deadline must win).
    for (instance_type, class, expected) in [
        ("sleep", "trap", "ran past its 2s deadline in fetch"),
        ("hang-upstream", "transient", "upstream request timed out"),
    ] {
        let started = std::time::Instant::now();
        let run = sandbox.run_new(instance_type).await;
        let message = run.error_message.clone().unwrap_or_default();
        assert_eq!(run.error_class.map(|c| c.as_str()), Some(class), "{instance_type}: {message}");
        assert!(message.contains(expected), "{instance_type}: {message}");
        assert!(started.elapsed() < std::time::Duration::from_secs(8), "{instance_type}: {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn a_plugin_whose_describe_never_returns_fails_to_load_and_the_host_starts() {
    let inlet = Inlet::with_plugins(&[test_plugin("hang-describe"), test_plugin("misbehave")]);
    let started = std::time::Instant::now();
    let output = inlet.run(&["plugins"]).await;
    let (stdout, stderr) = (support::text(&output.stdout), support::text(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("misbehave"), "{stdout}");
    assert!(stdout.contains("hang-describe.wasm") && stdout.contains("deadline in describe"), "{stdout}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn output_and_state_are_bounded_outside_the_guest() {
    let sandbox = Sandbox::start("").await;
    let store = sandbox.host.store();
    // 1 MiB on stderr is log lines, capped like any, not a trap.
    let printed = sandbox.fetch_new("stderr-flood").await;
    assert_eq!(printed.status.as_str(), "success", "{:?}", printed.error_message);
    let logs = store.sync_run_logs(printed.id).await.unwrap();
    assert_eq!(logs.len(), 1_001, "capped at the run's 1,000 lines and a note");
    assert!(logs.iter().all(|l| l.message.len() < 200), "no line carries the flood");
    assert!(logs[0].message.starts_with("stderr: xxx") && logs[0].level == "warn", "{:?}", logs[0]);
    assert_eq!(logs.last().unwrap().message, "15385 further log lines were dropped (limit per run)");

    // State held before a checkpoint counts against the pending bytes.
    let started = std::time::Instant::now();
    let flood = sandbox.run_new("state-flood").await;
    let message = flood.error_message.clone().unwrap_or_default();
    assert_eq!(flood.error_class.map(|c| c.as_str()), Some("trap"), "{message}");
    assert!(message.contains("67108864 bytes of state and batches held without a checkpoint"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn state_keys_per_integration_are_capped_at_the_checkpoint() {
    let sandbox = Sandbox::start("[limits]\nstate_keys = 100\n").await;
    let flood = sandbox.run_new("state-flood").await;
    let message = flood.error_message.clone().unwrap_or_default();
    assert!(message.contains("at most 100 state keys (limits.state_keys)"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_that_fails_to_process_for_a_passing_reason_is_kept_and_processed_later() {
    let sandbox = Sandbox::start("[queues.process]\ntimeout_seconds = 1\n").await;
    let id = sandbox.add("slow-process").await;
    let run = sandbox.run(id).await;
    let message = run.error_message.clone().unwrap_or_default();
    assert_eq!(run.error_class.map(|c| c.as_str()), Some("transient"), "{message}");
    assert!(message.contains("attempt 1 of 5; it and those after it stay pending"), "{message}");
    assert!(sandbox.host.store().objects(id).await.unwrap().is_empty());

    // With time enough, the next run processes what was stored: nothing lost.
    let sandbox = sandbox.restart("").await;
    let run = sandbox.run(id).await;
    assert_eq!(run.status.as_str(), "success", "{:?}", run.error_message);
    let objects = sandbox.host.store().objects(id).await.unwrap();
    assert_eq!(objects.iter().map(|o| o.external_id.as_str()).collect::<Vec<_>>(), ["slow-1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_misbehaviour_fails_only_its_own_run() {
    let sandbox = Sandbox::start("[queues.fetch]\ntimeout_seconds = 2\n").await;
    let store = sandbox.host.store();
    let ok = sandbox.add("ok").await;
    let run = |id: i64| sandbox.run(id);
    let add = |instance_type: &'static str| sandbox.add(instance_type);

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
        assert_eq!(outcome.error_class.map(|c| c.as_str()), Some(class), "{instance_type}: {message}");
        assert!(message.contains(expected), "{instance_type}: {message}");
        if class == "permanent" && instance_type != "giant-emit" {
            // A refused request is kept with the run whatever the plugin does with the error.
            let logs = store.sync_run_logs(outcome.id).await.unwrap();
            assert!(
                logs.iter().any(|l| l.level == "warn" && l.message.contains("request refused by the host: ")),
                "{logs:?}"
            );
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{instance_type} was stopped promptly");

        // The host is unharmed: a well-behaved run right after succeeds.
        let fine = run(ok).await;
        assert_eq!(fine.status.as_str(), "success", "after {instance_type}: {:?}", fine.error_message);
    }

    // A log flood is capped, not fatal: the run succeeds and says what it dropped.
    let flood = sandbox.fetch_new("log-flood").await;
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

#[tokio::test(flavor = "multi_thread")]
async fn limits_come_from_the_config_file() {
    let sandbox =
        Sandbox::start("[limits]\nmemory_mb = 32\nbatch_bytes = 16\nlog_lines_per_run = 10\nlog_line_bytes = 64\n")
            .await;
    let alloc = sandbox.run_new("alloc").await;
    assert!(alloc.error_message.as_deref().unwrap_or_default().contains("memory limit of 32 MiB"), "{alloc:?}");
    // The flood's lines are capped at 10, and its one small batch is over the 16-byte cap.
    let flood = sandbox.run_new("log-flood").await;
    assert!(flood.error_message.as_deref().unwrap_or_default().contains("exceeds the 16-byte cap"), "{flood:?}");
    let logs = sandbox.host.store().sync_run_logs(flood.id).await.unwrap();
    assert_eq!(logs.len(), 11);
    assert_eq!(logs.last().unwrap().message, "99990 further log lines were dropped (limit per run)");
}

#[tokio::test]
async fn a_bad_limit_is_refused_with_the_field_and_the_rule() {
    let inlet = Inlet::with_plugins(&[]).config("[limits]\nmemory_mb = 0\n");
    let output = inlet.run(&["plugins"]).await;
    assert!(!output.status.success());
    assert!(
        support::text(&output.stderr).contains("limits.memory_mb must be at least 1"),
        "{}",
        support::text(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_signatures_are_checked_in_the_host_with_the_groups_secret() {
    use hmac::{Hmac, Mac};
    use inlet::capabilities::signature::SigningKey;
    use inlet::domain::plugin_call::{PluginError, WebhookDelivery};
    let sandbox = Sandbox::start("").await;
    let plugin = sandbox.host.runner.plugins.get("misbehave").unwrap();
    let now_ms = 1_795_000_000_000;
    let body = br#"{"id":"pushed-1","name":"From a webhook"}"#.to_vec();
    let sign = |message: &[u8]| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"whsec-group-secret").unwrap();
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    };
    let deliver = |headers: Vec<(&str, String)>, body: Vec<u8>, secret: Option<&str>| {
        let delivery = WebhookDelivery {
            headers: headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            body,
            received_at: now_ms,
        };
        let signing = secret.map(|s| SigningKey { secret: s.as_bytes().to_vec(), now_ms });
        let (runtime, plugin) = (&sandbox.host.runner.runtime, &plugin);
        async move {
            let (outcome, verified) = runtime.handle_webhook(&plugin.pre, "misbehave", signing, delivery).await;
            let outcome = outcome.unwrap();
            assert_eq!(verified, outcome.is_ok(), "the host saw the signature check it relied on");
            outcome
        }
    };
    let secret = Some("whsec-group-secret");
    let refused = |outcome: Result<_, PluginError>| matches!(outcome, Err(PluginError::Unauthorized(_)));

    let routed =
        deliver(vec![("X-Signature", format!("sha256={}", sign(&body)))], body.clone(), secret).await.unwrap().batches;
    assert_eq!((routed.len(), routed[0].instance_type.as_str()), (1, "ok"));
    assert_eq!(routed[0].batch.payload.as_bytes(), body);
    let mut tampered = body.clone();
    tampered[8] = b'X';
    assert!(refused(deliver(vec![("x-signature", sign(&body))], tampered, secret).await), "another body");
    assert!(refused(deliver(vec![("x-signature", sign(&body))], body.clone(), Some("guess")).await), "another secret");
    assert!(refused(deliver(vec![("x-signature", sign(&body))], body.clone(), None).await), "outside a webhook call");

    // Slack: v0 over "v0:<timestamp>:<body>", within five minutes of now.
    let slack = |seconds: i64| {
        let base = [format!("v0:{seconds}:").as_bytes(), &body].concat();
        vec![("x-slack-request-timestamp", seconds.to_string()), ("x-slack-signature", format!("v0={}", sign(&base)))]
    };
    assert!(deliver(slack(now_ms / 1000 - 60), body.clone(), secret).await.is_ok());
    assert!(refused(deliver(slack(now_ms / 1000 - 600), body.clone(), secret).await), "a replay ten minutes later");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_reads_raw_credentials_only_once_the_operator_approves() {
    let mut inlet = Inlet::with_plugins(&[test_plugin("raw-credentials")]);
    let key = "sk_test_0123456789abcdef";
    let group = inlet.json(&["groups", "add", "raw-credentials", "--name", "k", "--api-key", key, "--json"]).await;
    let args =
        ["integrations", "add", "raw-credentials", "key-length", "--group", &group["id"].to_string(), "--manual"];
    let id = inlet.json(&[&args[..], &["--json"]].concat()).await["id"].to_string();

    let output = inlet.run(&["sync", &id, "--json"]).await;
    let run = support::sync_outcome(serde_json::from_slice(&output.stdout).unwrap());
    assert_eq!(run["error_class"], "invalid-config", "{run:#}");
    assert!(run["error_message"].as_str().unwrap().contains("approve_raw_credentials = true"), "{run:#}");

    inlet = inlet.config("[plugins.raw-credentials]\napprove_raw_credentials = true\n");
    assert_eq!(inlet.synced(&["sync", &id, "--json"]).await["status"], "success");
    let objects = inlet.store().await.objects(id.parse().unwrap()).await.unwrap();
    assert_eq!(objects[0].name.as_deref(), Some("a key of 24 characters"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_whose_credentials_cannot_be_read_fails_only_its_own_runs() {
    let sandbox = Sandbox::start("").await;
    let store = sandbox.host.store();
    let fine = sandbox.add("ok").await;
    let other_group = store.insert_group("misbehave", "damaged", &Credentials::default()).await.unwrap();
    let new = NewIntegration {
        plugin_id: "misbehave",
        instance_type: "ok",
        group_id: other_group,
        name: "damaged",
        config: "{}",
        schedule: None,
        first_due_at: None,
        paused_reason: None,
    };
    let damaged = store.insert_integration(&new).await.unwrap();
    // Sealed with another key (a restored backup, a lost key file).
    sqlx::query(
        "UPDATE groups SET credentials = 'v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' WHERE id = $1",
    )
    .bind(other_group)
    .execute(store.pool())
    .await
    .unwrap();

    // Started together, as a worker's claimed batch is: each run has its own fate.
    let runner = &sandbox.host.runner;
    let (started, _) = runner.start(vec![RunRequest::manual(fine), RunRequest::manual(damaged)]).await.unwrap();
    let mut outcomes = Vec::new();
    for run in started {
        let executed = runner.execute(run).await;
        outcomes.push((executed.started.integration.id, executed.outcome.status, executed.outcome.error.clone()));
    }
    assert_eq!(outcomes[0].1.as_str(), "success", "{outcomes:?}");
    let (class, message) = outcomes[1].2.clone().unwrap();
    assert_eq!(class.as_str(), "unauthorized");
    assert!(message.contains(&format!("the credentials of group {other_group} cannot be read")), "{message}");
    let group = store.group(other_group).await.unwrap().unwrap();
    assert_eq!(group.status, GroupStatus::NeedsReconnect);

    // Connecting it again replaces what cannot be read.
    let keep = |current: Option<&Credentials>| {
        assert!(current.is_none(), "nothing readable to keep");
        Credentials::default()
    };
    let reconnected = store.connect_group("misbehave", "damaged", keep, |_| true);
    assert_eq!(reconnected.await.unwrap(), other_group);
    assert_eq!(store.group(other_group).await.unwrap().unwrap().status, GroupStatus::Ok);
    assert_eq!(sandbox.run(damaged).await.status.as_str(), "success");
}

#[tokio::test]
async fn no_new_secret_key_is_made_for_credentials_sealed_with_a_lost_one() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]);
    assert!(inlet.run(&["groups", "add", "misbehave", "--name", "sealed"]).await.status.success());
    std::fs::remove_file(inlet.data_dir().join("secret.key")).unwrap();
    let output = inlet.run(&["plugins"]).await;
    let stderr = support::text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("holds the sealed credentials of 1 group(s), but the secret key"), "{stderr}");
    assert!(!inlet.data_dir().join("secret.key").exists(), "no key was made that cannot read them");
}

#[tokio::test]
async fn the_data_folder_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let inlet = Inlet::with_plugins(&[]);
    assert!(inlet.run(&["plugins"]).await.status.success());
    let mode = |path: std::path::PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(inlet.data_dir()), 0o700);
    assert_eq!(mode(inlet.data_dir().join("inlet.db")), 0o600);
    assert_eq!(mode(inlet.data_dir().join("compiled")), 0o700);
}

/// A loopback server that echoes the `x-api-key` it receives back in a CORS
/// header and in its body, as a reflecting upstream would; at `/encoded`
/// in a body it says is compressed whatever it was asked for (the key
/// reversed stands for the compressed key), and at `/escaped` as a query
/// string and a JSON string write it.
async fn echoing_upstream() -> String {
    use axum::http::HeaderMap;
    use axum::routing::get;
    let key =
        |headers: &HeaderMap| headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let echo = move |headers: HeaderMap| async move {
        let key = key(&headers);
        ([("access-control-allow-origin", key.clone())], format!("{{\"you_sent\": \"{key}\"}}"))
    };
    let encoded = move |headers: HeaderMap| async move {
        ([("content-encoding", "gzip")], key(&headers).chars().rev().collect::<String>())
    };
    let escaped = move |headers: HeaderMap| async move {
        let key = key(&headers);
        // As a URL library writes it (lowercase hex), and as a JSON encoder
        // that escapes slashes does.
        let url: String = key
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02x}") })
            .collect();
        let json = serde_json::to_string(&key).unwrap().replace('/', "\\/");
        format!("{{\"url\": \"{url}\", \"json\": {json}}}")
    };
    let routes =
        axum::Router::new().route("/", get(echo)).route("/encoded", get(encoded)).route("/escaped", get(escaped));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_never_come_back_and_what_the_plugin_says_is_capped() {
    let echo = echoing_upstream().await;
    let sandbox = Sandbox::start(&format!("[upstream_override]\n\"echo.test\" = \"{echo}\"\n")).await;
    let store = sandbox.host.store();
    let key = "sk_live_0123456789abcdef";
    let fields = [("api_key".to_string(), key.to_string())].into_iter().collect();
    let group = store.insert_group("api-key", "keyed", &Credentials::new(fields)).await.unwrap();
    let new = |plugin_id, instance_type, group_id| NewIntegration {
        plugin_id,
        instance_type,
        group_id,
        name: instance_type,
        config: "{}",
        schedule: None,
        first_due_at: None,
        paused_reason: None,
    };
    // The manifest places the key in x-api-key; the upstream echoes it.
    let echoed = store.insert_integration(&new("api-key", "echo-key", group)).await.unwrap();
    let run = sandbox.run(echoed).await;
    assert_eq!(run.status.as_str(), "success", "{:?}", run.error_message);
    let seen = store.objects(echoed).await.unwrap()[0].name.clone().unwrap();
    assert!(!seen.contains(key), "the plugin read its key back: {seen}");
    assert!(seen.contains(r#"["access-control-allow-origin","[redacted]"]"#), "{seen}");
    assert!(seen.contains(r#"you_sent\": \"[redacted]"#), "{seen}");

    // Nor compressed, which the host could not search: a plugin may not ask
    // for it, and a body that comes compressed anyway is dropped.
    let with_config = |config| NewIntegration { config, ..new("api-key", "echo-key", group) };
    let asked = store.insert_integration(&with_config(r#"{"accept_encoding": "gzip"}"#)).await.unwrap();
    let message = sandbox.run(asked).await.error_message.unwrap_or_default();
    assert!(message.contains("plugins may not set the Accept-Encoding header"), "{message}");
    let encoded = store.insert_integration(&with_config(r#"{"path": "/encoded"}"#)).await.unwrap();
    let run = sandbox.run(encoded).await;
    let message = run.error_message.unwrap_or_default();
    assert!(message.contains("answered with its body encoded (gzip)"), "{message}");
    assert!(store.objects(encoded).await.unwrap().is_empty());
    // Nor written as a URL or a JSON string would write it.
    let odd_key = r#"sk/live+"quoted"=="#;
    let fields = [("api_key".to_string(), odd_key.to_string())].into_iter().collect();
    let odd_group = store.insert_group("api-key", "odd", &Credentials::new(fields)).await.unwrap();
    let config = r#"{"path": "/escaped"}"#;
    let escaped =
        store.insert_integration(&NewIntegration { config, ..new("api-key", "echo-key", odd_group) }).await.unwrap();
    let run = sandbox.run(escaped).await;
    assert_eq!(run.status.as_str(), "success", "{:?}", run.error_message);
    let seen = store.objects(escaped).await.unwrap()[0].name.clone().unwrap();
    assert!(!seen.contains("sk%2flive") && !seen.contains("quoted"), "{seen}");
    assert_eq!(seen.matches("[redacted]").count(), 2, "{seen}");

    // Headers that route a request or that servers reflect are not the plugin's to set.
    let origin =
        sandbox.run(store.insert_integration(&new("misbehave", "set-origin", sandbox.group)).await.unwrap()).await;
    let message = origin.error_message.unwrap_or_default();
    assert!(message.contains("plugins may not set the Origin header"), "{message}");

    // A plugin's error text is capped before it is logged or stored.
    let huge = sandbox.run_new("huge-error").await;
    let message = huge.error_message.unwrap_or_default();
    assert!(message.len() < 5_000 && message.ends_with("[truncated]"), "{} bytes", message.len());
}

/// Records the database would refuse (a NUL character) or that no reader
/// could parse back (data that is not JSON) fail their own batch for good,
/// naming the record; the integration's other batches are stored, and its
/// records stay readable.
#[tokio::test(flavor = "multi_thread")]
async fn records_that_cannot_be_stored_fail_their_batch_and_nothing_else() {
    let sandbox = Sandbox::start("").await;
    let store = sandbox.host.store();
    let id = sandbox.add("unstorable").await;
    let run = sandbox.run(id).await;
    assert_eq!((run.queue.as_str(), run.status.as_str()), ("process", "failed"), "{run:?}");
    // Read back, each parsed: nothing unreadable was stored.
    let objects: Vec<String> = store.objects(id).await.unwrap().into_iter().map(|o| o.external_id).collect();
    assert_eq!(objects, ["fine"]);
    let failed = store.failed_batches(10).await.unwrap();
    let errors: Vec<&str> = failed.iter().map(|b| b.error.as_str()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains(r#"object "thing" "nul": a text holds a NUL character"#)), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains(r#"object "thing" "not-json": its data is not JSON"#)), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_a_new_plugin_file_adds_need_the_operators_approval() {
    use inlet::store::groups::ApprovedPlugin;
    let echo = echoing_upstream().await;
    let sandbox = Sandbox::start(&format!("[upstream_override]\n\"echo.test\" = \"{echo}\"\n")).await;
    let store = sandbox.host.store();
    let key = [("api_key".to_string(), "sk_test_key".to_string())].into_iter().collect();
    let group = store.insert_group("api-key", "approved-before", &Credentials::new(key)).await.unwrap();
    // Connected when the plugin's file declared no hosts at all.
    let older = ApprovedPlugin { sha256: "an-older-file".into(), hosts: vec![] };
    assert!(store.approve_plugin(group, &older).await.unwrap());
    let new = NewIntegration {
        plugin_id: "api-key",
        instance_type: "echo-key",
        group_id: group,
        name: "echo",
        config: "{}",
        schedule: None,
        first_due_at: None,
        paused_reason: None,
    };
    let id = store.insert_integration(&new).await.unwrap();
    let refused = sandbox.run(id).await;
    let message = refused.error_message.unwrap_or_default();
    assert!(message.contains(&format!("newer file of the plugin than group {group} was approved for")), "{message}");
    assert!(message.contains(&format!("inlet groups approve {group}")), "{message}");

    let approved = inlet::operations::groups::approve(&sandbox.host, group).await.unwrap();
    assert_eq!(approved.hosts, ["echo.test", "notes.test"], "every host its instance types declare");
    let run = sandbox.run(id).await;
    assert_eq!(run.status.as_str(), "success", "{:?}", run.error_message);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_notification_url_holds_up_no_run() {
    let config = format!("pause_after_failures = 1\nnotify_webhook_url = \"{}/hook\"\n", silent_upstream());
    let sandbox = Sandbox::start(&config).await;
    let id = sandbox.add("trap").await;
    let started = std::time::Instant::now();
    let run = sandbox.run(id).await;
    assert_eq!(run.status.as_str(), "failed");
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "the post waits elsewhere: {:?}", started.elapsed());
    let paused = sandbox.host.store().integration(id).await.unwrap().unwrap();
    assert_eq!(paused.paused_reason, Some(PauseReason::Error));
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_while_every_fetch_slot_spins() {
    let config = "[queues.fetch]\nconcurrency = 4\ntimeout_seconds = 120\nmax_attempts = 1\n";
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]).config(config);
    let group = inlet.json(&["groups", "add", "misbehave", "--name", "spin", "--json"]).await["id"].to_string();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let args = ["integrations", "add", "misbehave", "loop", "--group", &group, "--manual", "--json"];
        ids.push(inlet.json(&args).await["id"].to_string());
    }
    let (mut serve, base) = inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;
    for id in &ids {
        assert!(inlet.run(&["sync", id, "--force"]).await.status.success());
    }
    let store = inlet.store().await;
    support::eventually(30, "every slot to run a spinning plugin", || async {
        let running: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs WHERE status = 'running'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        (running == 4).then_some(())
    })
    .await;
    // The load program (benches/healthz_under_load.rs) measures the latency;
    // here, a bound no healthy host comes near and a starved one cannot meet.
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let response = client.get(format!("{base}/healthz")).timeout(std::time::Duration::from_secs(10)).send().await;
        assert!(response.is_ok_and(|r| r.status().is_success()), "/healthz answers");
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "/healthz took {:?}", started.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    serve.start_kill().unwrap();
    serve.wait().await.unwrap();
}

/// A loopback bank that counts the requests each path receives. Its first
/// answer for account `acc-3` says the account's calls are spent for a day
/// (`x-ratelimit-remaining: 0`), as a bank may whatever inlet counted.
async fn counting_upstream() -> (String, Arc<Mutex<BTreeMap<String, u32>>>) {
    let hits: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
    let counted = Arc::clone(&hits);
    let count = move |uri: axum::http::Uri| {
        let counted = Arc::clone(&counted);
        async move {
            let path = uri.path().to_string();
            let mut counted = counted.lock().unwrap();
            let hits = counted.entry(path.clone()).or_default();
            *hits += 1;
            let mut headers = axum::http::HeaderMap::new();
            if path.contains("/acc-3/") && *hits == 1 {
                let reset =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 86_400;
                headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
                headers.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
            }
            (headers, r#"{"balances": []}"#)
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(count)).await });
    (url, hits)
}

/// A quota the plugin declares (4 requests a day per account, as banks
/// behind GoCardless allow) is kept in the database: a run in a new process
/// (a restart) and two processes at once on PostgreSQL never send the
/// provider a fifth request; the plugin is told `rate-limited` instead.
#[tokio::test(flavor = "multi_thread")]
async fn a_declared_daily_quota_holds_across_restarts_and_processes() {
    let (bank, hits) = counting_upstream().await;
    let database = support::fresh_postgres_database().await;
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")])
        .env("DATABASE_URL", &database)
        .env("INLET_UPSTREAM_OVERRIDE", &format!("quota.test={bank}"));
    let group = inlet.json(&["groups", "add", "misbehave", "--name", "bank", "--json"]).await["id"].to_string();
    let add = |account: &'static str| {
        let config = format!(r#"{{"account": "{account}"}}"#);
        let inlet = &inlet;
        let group = group.clone();
        async move {
            let args = ["integrations", "add", "misbehave", "quota-spend", "--group", &group, "--manual"];
            inlet.json(&[&args[..], &["--config", &config, "--json"]].concat()).await["id"].to_string()
        }
    };
    let sync = |id: String| {
        let inlet = &inlet;
        async move {
            let run = inlet.synced(&["sync", &id, "--json"]).await;
            assert_eq!(run["status"], "success", "{run:#}");
            run["items_seen"].as_i64().unwrap()
        }
    };
    let hits_of = |account: &str| hits.lock().unwrap().get(&format!("/accounts/{account}/balances/")).copied();

    // One process asks three times; the next process (a restart) gets the
    // fourth, and its other two are refused without reaching the bank.
    let (first, second) = (add("acc-1").await, add("acc-1").await);
    assert_eq!(sync(first.clone()).await, 3);
    assert_eq!(sync(second).await, 1, "the quota is the group's and the account's, not the integration's");
    assert_eq!(sync(first).await, 0);
    assert_eq!(hits_of("acc-1"), Some(4));

    // Two processes at once, for another account: six asked, four sent.
    let (third, fourth) = (add("acc-2").await, add("acc-2").await);
    let (a, b) = tokio::join!(sync(third), sync(fourth));
    assert_eq!(a + b, 4);
    assert_eq!(hits_of("acc-2"), Some(4));

    // A request the host holds back itself (the bank said the calls are
    // spent until after the run's deadline) spends nothing of the quota:
    // the next run still has the other three.
    let fifth = add("acc-3").await;
    assert_eq!(sync(fifth.clone()).await, 1);
    assert_eq!(hits_of("acc-3"), Some(1));
    assert_eq!(sync(fifth).await, 3);
    assert_eq!(hits_of("acc-3"), Some(4));
}

/// A task (contract 0.2.0) reads its group's stored records, a page at a
/// time, and records what it computed; another group's records are not its.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_reads_its_groups_records_and_records_a_result() {
    let inlet = Inlet::with_plugins(&[test_plugin("misbehave")]);
    let add_group = |name: &'static str| {
        let inlet = &inlet;
        async move { inlet.json(&["groups", "add", "misbehave", "--name", name, "--json"]).await["id"].to_string() }
    };
    let add = |instance_type: &'static str, group: String| {
        let inlet = &inlet;
        async move {
            let args = ["integrations", "add", "misbehave", instance_type, "--group", &group, "--manual", "--json"];
            inlet.json(&args).await["id"].to_string()
        }
    };
    let sync = |id: String| {
        let inlet = &inlet;
        async move { inlet.synced_both(&["sync", &id, "--json"]).await }
    };
    let (mine, theirs) = (add_group("mine").await, add_group("theirs").await);
    for group in [&mine, &mine, &theirs] {
        sync(add("ok", group.clone()).await).await;
    }
    let digest = add("digest", mine).await;
    let run = sync(digest.clone()).await;
    assert_eq!(run.fetch["items_seen"], 2, "two pages of one, and not the other group's thing: {:#}", run.fetch);
    let store = inlet.store().await;
    let objects = store.objects(digest.parse().unwrap()).await.unwrap();
    assert_eq!((objects[0].kind.as_str(), objects[0].name.as_deref()), ("digest", Some("2 things")));
}
