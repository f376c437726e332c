//! The database goes away under a running `serve` (its link to PostgreSQL
//! cut: open connections dropped, new ones refused) while a sync runs and a
//! webhook delivery is being processed, and comes back. Meanwhile the API
//! answers 503 within the pool's acquire timeout instead of hanging, and
//! `/healthz` still answers; afterwards the process has recovered on its own,
//! the delivery it accepted (202) is processed and the sync finishes.

use super::link::DatabaseLink;
use crate::support::{self, Inlet, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TOKEN: &str = "outage-test-admin-token";
const SECRET: &str = "s3cret-shared-with-the-app";

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
    let log = inlet.dir().join("serve.log");
    let (mut serve, base) = inlet.spawn_logged_listening(&["serve", "--listen", "127.0.0.1:0"], &log).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let post = |path: String, body: Value| client.post(format!("{base}{path}")).bearer_auth(TOKEN).json(&body).send();

    let group: Value =
        post("/api/groups".into(), json!({"plugin": "apple-health", "name": "phone", "webhook_secret": SECRET}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let body = json!({"plugin": "apple-health", "instance_type": "workouts", "group_id": group["id"]});
    let workouts: Value = post("/api/integrations".into(), body).await.unwrap().json().await.unwrap();
    let slow_group: Value =
        post("/api/groups".into(), json!({"plugin": "misbehave", "name": "slow"})).await.unwrap().json().await.unwrap();
    let body = json!({"plugin": "misbehave", "instance_type": "slow", "group_id": slow_group["id"],
                      "config": {"sleep_seconds": 4}, "schedule": {"kind": "manual"}});
    let slow: Value = post("/api/integrations".into(), body).await.unwrap().json().await.unwrap();

    // A sync in flight and a delivery accepted, then the link is cut.
    let queued = post(format!("/api/integrations/{}/sync", slow["id"]), json!({})).await.unwrap();
    assert_eq!(queued.status(), 202);
    let delivery = std::fs::read(support::root().join("tests/fixtures/health-auto-export.json")).unwrap();
    let deliver = || {
        client
            .post(format!("{base}/webhooks/apple-health/{}", group["id"]))
            .header("content-type", "application/json")
            .header("x-inlet-secret", SECRET)
            .body(delivery.clone())
            .send()
    };
    assert_eq!(deliver().await.unwrap().status(), 202);
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
    let refused = deliver().await.map_or(0, |r| r.status().as_u16());
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

    let store = inlet.store_at(&direct).await;
    let workouts_id = workouts["id"].as_i64().unwrap();
    let slow_id = slow["id"].as_i64().unwrap();
    let (records, finished) = eventually(120, "the delivery processed and the sync finished", || async {
        let records = store.events(workouts_id).await.unwrap().len();
        let jobs = store.integration_jobs(slow_id).await.unwrap();
        let runs = store.sync_runs(slow_id, 10).await.unwrap();
        let finished = jobs.is_empty() && runs.first().is_some_and(|r| r.status.as_str() == "success");
        (records > 0 && finished).then_some((records, finished))
    })
    .await;
    figures.delivered_records = records;
    figures.sync_finished = finished;
    figures.process_survived = serve.try_wait().unwrap().is_none();
    serve.start_kill().unwrap();
    serve.wait().await.unwrap();
    figures
}
