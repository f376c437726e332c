//! The database goes away under a running `serve` (its link to PostgreSQL
//! cut: open connections dropped, new ones refused) while a sync runs and a
//! webhook delivery is being processed, and comes back. Meanwhile the API
//! answers 503 within the pool's acquire timeout instead of hanging, and
//! `/healthz` still answers; afterwards the process has recovered on its own,
//! the delivery it accepted (202) is processed and the sync finishes.

use super::link::DatabaseLink;
use super::{TOKEN, WEBHOOK_SECRET, WebhookSetup, health_delivery};
use crate::support::{self, Inlet, eventually};
use serde_json::json;
use std::time::{Duration, Instant};

/// What the outage case measured.
#[derive(Debug, Default)]
pub struct Outage {
    /// The longest any request took to be answered while the link was cut.
    pub slowest_answer: Duration,
    /// Statuses answered while cut: `/healthz`, `/readyz`, `/api/integrations`, a delivery.
    pub answered: Vec<(&'static str, u16)>,
    /// From the link's return to the API answering 200 again.
    pub recovered_in: Duration,
    pub process_survived: bool,
    /// Records made from the delivery accepted before the outage.
    pub delivered_records: usize,
    pub sync_finished: bool,
}

pub async fn database_outage(cut_for: Duration) -> Outage {
    let link = DatabaseLink::start("127.0.0.1:5432").await;
    let direct = support::fresh_postgres_database().await;
    let plugins = [support::bundled_plugin("apple-health"), support::test_plugin("misbehave")];
    let inlet = Inlet::with_plugins(&plugins)
        .env("DATABASE_URL", &link.url(&direct))
        .env("INLET_ADMIN_TOKEN", TOKEN)
        .config("job_lease_seconds = 60\n");
    let mut setup = WebhookSetup::start(inlet, "slow", json!({"sleep_seconds": 4})).await;
    let (base, client) = (setup.base.clone(), setup.client.clone());

    // A sync in flight and a delivery accepted, then the link is cut.
    setup.post(&format!("/api/integrations/{}/sync", setup.other), json!({})).await;
    assert_eq!(setup.deliver(&client, WEBHOOK_SECRET, health_delivery()).await, 202);
    link.cut();

    let mut figures = Outage::default();
    let started = Instant::now();
    for (what, request) in [
        ("healthz", client.get(format!("{base}/healthz"))),
        ("readyz", client.get(format!("{base}/readyz"))),
        ("integrations", client.get(format!("{base}/api/integrations")).bearer_auth(TOKEN)),
    ] {
        let asked = Instant::now();
        let status = request.send().await.map_or(0, |r| r.status().as_u16());
        figures.slowest_answer = figures.slowest_answer.max(asked.elapsed());
        figures.answered.push((what, status));
    }
    let asked = Instant::now();
    let refused = setup.deliver(&client, WEBHOOK_SECRET, health_delivery()).await;
    figures.slowest_answer = figures.slowest_answer.max(asked.elapsed());
    figures.answered.push(("delivery", refused));
    tokio::time::sleep(cut_for.saturating_sub(started.elapsed())).await;

    link.restore();
    let restored = Instant::now();
    eventually(60, "the API to answer again", || async {
        let response = client.get(format!("{base}/api/integrations")).bearer_auth(TOKEN).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    figures.recovered_in = restored.elapsed();

    let store = setup.inlet.store_at(&direct).await;
    let (records, finished) = eventually(120, "the delivery processed and the sync finished", || async {
        let records = store.events(setup.workouts).await.unwrap().len();
        let jobs = store.integration_jobs(setup.other).await.unwrap();
        let runs = store.sync_runs(setup.other, 10).await.unwrap();
        let finished = jobs.is_empty() && runs.first().is_some_and(|r| r.status.as_str() == "success");
        (records > 0 && finished).then_some((records, finished))
    })
    .await;
    figures.delivered_records = records;
    figures.sync_finished = finished;
    figures.process_survived = setup.serve.try_wait().unwrap().is_none();
    setup.serve.start_kill().unwrap();
    setup.serve.wait().await.unwrap();
    figures
}
