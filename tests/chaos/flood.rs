//! Webhook abuse while syncs run: many senders at once post deliveries with
//! wrong secrets, oversized bodies, bodies that never arrive, and a few good
//! ones. Everything bad is refused and nothing of it stored; every good
//! delivery is either accepted (202, then processed) or told to come back
//! (503); and syncs asked for meanwhile run as they would without the flood.

use super::{TOKEN, WEBHOOK_SECRET, WebhookSetup, health_delivery};
use crate::support::{self, Inlet, eventually};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Flood {
    /// Answers to deliveries, by kind of delivery and status.
    pub answers: BTreeMap<(&'static str, u16), u64>,
    /// Batches stored from the group the bad deliveries named, beyond the good ones'.
    pub stored_from_bad: i64,
    /// Good deliveries accepted, and whether all of them were processed.
    pub accepted: u64,
    pub processed: bool,
    /// Syncs asked for during the flood, and the longest from asking to success.
    pub syncs: u32,
    pub slowest_sync: Duration,
}

/// `senders` concurrent senders for `seconds`.
pub async fn webhook_flood(senders: usize, seconds: u64) -> Flood {
    let plugins = [support::bundled_plugin("apple-health"), support::test_plugin("misbehave")];
    let inlet = Inlet::with_plugins(&plugins)
        .env("INLET_ADMIN_TOKEN", TOKEN)
        .config("[limits]\nwebhook_mb = 1\nwebhook_concurrency = 4\n");
    let setup = Arc::new(WebhookSetup::start(inlet, "ok", json!({})).await);
    let good = health_delivery();
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut flood = tokio::task::JoinSet::new();
    for sender in 0..senders {
        let (setup, good) = (Arc::clone(&setup), good.clone());
        flood.spawn(async move {
            // A connection per delivery: the host closes the connection of a
            // delivery it refuses unread, which a pool would hand to the next.
            let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
            let mut answers: BTreeMap<(&'static str, u16), u64> = BTreeMap::new();
            let mut sent = 0u64;
            while Instant::now() < end {
                sent += 1;
                // Mostly guesses; now and then too large, or the real thing
                // with a body of its own (a new workout), so each is new.
                let (kind, secret, body) = match (sender + sent as usize) % 10 {
                    0 => ("good", WEBHOOK_SECRET.to_string(), unique(&good, sender, sent)),
                    1 => ("oversized", WEBHOOK_SECRET.to_string(), vec![b' '; 2 * 1024 * 1024]),
                    _ => ("wrong secret", format!("guess-{sender}-{sent}"), good.clone()),
                };
                let status = setup.deliver(&client, &secret, body).await;
                *answers.entry((kind, status)).or_default() += 1;
            }
            answers
        });
    }
    // Slow senders: headers that never end hold connections, not the host.
    for _ in 0..senders {
        let address = setup.base.trim_start_matches("http://").to_string();
        flood.spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut answers = BTreeMap::new();
            if let Ok(mut stream) = tokio::net::TcpStream::connect(address).await {
                let _ = stream.write_all(b"POST /webhooks/apple-health/1 HTTP/1.1\r\nhost: x\r\n").await;
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                answers.insert(("slow headers", 0), 1);
            }
            answers
        });
    }

    let mut figures = Flood::default();
    let store = setup.inlet.store().await;
    while Instant::now() < end {
        let asked = Instant::now();
        let queued = setup.post(&format!("/api/integrations/{}/sync?force=true", setup.other), json!({})).await;
        let run = queued["run_id"].as_i64().unwrap();
        eventually(30, "the sync asked for during the flood", || async {
            let run = store.sync_run(run).await.unwrap()?;
            (run.status.as_str() == "success").then_some(())
        })
        .await;
        figures.syncs += 1;
        figures.slowest_sync = figures.slowest_sync.max(asked.elapsed());
    }
    while let Some(answers) = flood.join_next().await {
        for (key, count) in answers.unwrap() {
            *figures.answers.entry(key).or_default() += count;
        }
    }
    figures.accepted = figures.answers.get(&("good", 202)).copied().unwrap_or_default();
    let accepted = figures.accepted;
    figures.processed = eventually(60, "every accepted delivery processed", || async {
        let events = store.events(setup.workouts).await.unwrap().len() as u64;
        (events >= accepted).then_some(true)
    })
    .await;
    let batches: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM raw_batches WHERE integration_id = $1")
        .bind(setup.workouts)
        .fetch_one(store.pool())
        .await
        .unwrap();
    figures.stored_from_bad = batches - accepted as i64;
    let mut setup = Arc::into_inner(setup).expect("every sender has finished");
    setup.serve.start_kill().unwrap();
    setup.serve.wait().await.unwrap();
    figures
}

/// The delivery with its first workout given an id of its own, so every good
/// delivery is new (a repeated one is stored once, by design).
fn unique(delivery: &[u8], sender: usize, sent: u64) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(delivery).unwrap();
    let workouts = body["data"]["workouts"].as_array_mut().expect("the fixture has workouts");
    workouts.truncate(1);
    workouts[0]["id"] = json!(format!("flood-{sender}-{sent}"));
    body["data"]["metrics"] = json!([]);
    serde_json::to_vec(&body).unwrap()
}
