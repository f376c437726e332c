//! Load program for webhook ingress (run with
//! `cargo bench --bench webhook_ingress [-- deliveries concurrency]`).
//!
//! An in-process `inlet serve` (SQLite, the Apple Health plugin, a group with
//! its workouts and metrics integrations) on loopback receives distinct
//! Health-Auto-Export-shaped deliveries (one workout and 20 metric points
//! each) from `concurrency` clients at once. Prints deliveries accepted per
//! second with the 202's latency (p50/p99), then how long the webhook queue
//! took to turn all of them into records.

use inlet::api::auth::AdminTokens;
use inlet::api::{ApiState, router};
use inlet::operations::groups::{self, NewGroupInput};
use inlet::operations::integrations::{self, NewIntegrationInput};
use inlet::settings::{Settings, SettingsArgs};
use inlet::{Host, HostOptions};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "bench-shared-secret";
const POINTS: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let deliveries = args.first().copied().unwrap_or(2_000);
    let concurrency = args.get(1).copied().unwrap_or(16);
    let plugin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/apple-health.wasm");
    anyhow::ensure!(plugin.exists(), "build the plugins first: cargo xtask build-plugins");

    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("plugins"))?;
    std::fs::copy(&plugin, dir.path().join("plugins/apple-health.wasm"))?;
    std::fs::write(dir.path().join("none.toml"), "")?;
    let settings = Settings::resolve(&SettingsArgs {
        data_dir: Some(dir.path().join("data")),
        database_url: None,
        plugins_dir: Some(dir.path().join("plugins")),
        config_file: Some(dir.path().join("none.toml")),
        upstream_override: None,
        public_url: None,
    })?;
    let host = Arc::new(Host::start(&settings, HostOptions::default()).await?);
    let group = groups::create(
        &host,
        NewGroupInput {
            plugin: "apple-health".into(),
            name: "bench".into(),
            webhook_secret: Some(SECRET.into()),
            ..NewGroupInput::default()
        },
    )
    .await?;
    let mut integration_ids = Vec::new();
    for instance_type in ["workouts", "metrics"] {
        let input = NewIntegrationInput {
            plugin: "apple-health".into(),
            instance_type: instance_type.into(),
            group_id: group.id,
            name: None,
            config: None,
            schedule: None,
            enabled: None,
        };
        integration_ids.push(integrations::create(&host, input).await?.id);
    }
    let background = host.start_background(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/apple-health/{}", listener.local_addr()?, group.id);
    let (_stop, stopping) = tokio::sync::watch::channel(false);
    let state = ApiState::new(
        Arc::clone(&host),
        url::Url::parse("http://127.0.0.1")?,
        AdminTokens::new(None)?,
        stopping.clone(),
    );
    tokio::spawn(inlet::api::server::serve(listener, router(state), stopping));

    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(deliveries);
    let mut next = 0;
    let mut in_flight = tokio::task::JoinSet::new();
    while next < deliveries || !in_flight.is_empty() {
        while next < deliveries && in_flight.len() < concurrency {
            let (client, url, body) = (client.clone(), url.clone(), delivery(next));
            in_flight.spawn(async move {
                let sent = Instant::now();
                let response = client.post(url).header("x-inlet-secret", SECRET).body(body).send().await?;
                anyhow::ensure!(response.status() == 202, "delivery refused: {}", response.text().await?);
                Ok::<Duration, anyhow::Error>(sent.elapsed())
            });
            next += 1;
        }
        if let Some(done) = in_flight.join_next().await {
            latencies.push(done??);
        }
    }
    let accepting = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "accepted {deliveries} deliveries from {concurrency} clients in {:.2}s = {:.0}/s; 202 latency p50 {:.1} ms, p99 {:.1} ms",
        accepting.as_secs_f64(),
        deliveries as f64 / accepting.as_secs_f64(),
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
    );

    let expected = (deliveries * (1 + POINTS)) as i64;
    loop {
        let store = host.store();
        let mut stored = 0;
        for id in &integration_ids {
            stored += sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events WHERE integration_id = $1")
                .bind(id)
                .fetch_one(store.pool())
                .await?;
        }
        if stored >= expected {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {stored} of {expected} records after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processed = started.elapsed();
    println!(
        "all {expected} records stored {:.2}s after the first delivery = {:.0} records/s end to end",
        processed.as_secs_f64(),
        expected as f64 / processed.as_secs_f64()
    );
    background.stop().await;
    Ok(())
}

/// The `n`th export: one workout and `POINTS` step counts, all distinct.
fn delivery(n: usize) -> String {
    let minute = |m: usize| format!("2026-01-{:02} {:02}:{:02}:00 +0000", 1 + n / 1440 % 28, n / 60 % 24, m % 60);
    let points: Vec<_> =
        (0..POINTS).map(|p| json!({"qty": 100 + p, "date": minute(n * POINTS + p), "source": "Watch"})).collect();
    json!({
        "data": {
            "metrics": [{"name": format!("step_count_{n}"), "units": "count", "data": points}],
            "workouts": [{
                "id": format!("00000000-0000-4000-8000-{n:012}"),
                "name": "Outdoor Run",
                "start": minute(n),
                "end": minute(n + 30),
                "duration": 1800,
                "activeEnergyBurned": {"qty": 300, "units": "kcal"},
                "distance": {"qty": 5.1, "units": "km"},
            }],
        }
    })
    .to_string()
}
