//! The database goes away under a running `serve` while a sync runs and a
//! webhook delivery is being processed, and comes back: PostgreSQL's link
//! cut (open connections dropped, new ones refused), or SQLite's disk full
//! (the process may write no byte to any file). Meanwhile the API answers 503
//! to what needs the database it cannot use, at once instead of hanging, and
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
    /// Statuses answered while cut: `/healthz`, `/readyz`, `/api/integrations`, a pause, a new delivery.
    pub answered: Vec<(&'static str, u16)>,
    /// From the link's return to the API answering 200 again.
    pub recovered_in: Duration,
    pub process_survived: bool,
    /// Records made from the delivery accepted before the outage.
    pub delivered_records: usize,
    pub sync_finished: bool,
}

/// How the database goes away.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// PostgreSQL, reached through a link the test cuts.
    PostgresCut,
    /// SQLite, its disk full: the `serve` process's file size limit drops to
    /// one byte (`prlimit`), so each write to its database (and its log) fails
    /// as on a full disk; reads still work.
    SqliteDiskFull,
}

pub async fn database_outage(fault: Fault, cut_for: Duration) -> Outage {
    let plugins = [support::bundled_plugin("apple-health"), support::test_plugin("misbehave")];
    let inlet = Inlet::with_plugins(&plugins).env("INLET_ADMIN_TOKEN", TOKEN).config("job_lease_seconds = 60\n");
    let (inlet, link, database) = match fault {
        Fault::PostgresCut => {
            let link = DatabaseLink::start("127.0.0.1:5432").await;
            let direct = support::fresh_postgres_database().await;
            (inlet.env("DATABASE_URL", &link.url(&direct)), Some(link), Some(direct))
        }
        Fault::SqliteDiskFull => {
            // A write past the limit then fails (EFBIG) instead of killing
            // the process with SIGXFSZ: the ignored signal is inherited.
            ignore_file_size_signal();
            (inlet, None, None)
        }
    };
    let mut setup = WebhookSetup::start(inlet, "slow", json!({"sleep_seconds": 4})).await;
    let (base, client) = (setup.base.clone(), setup.client.clone());
    let serve_pid = setup.serve.id().unwrap();
    let cut = |away: bool| match &link {
        Some(link) if away => link.cut(),
        Some(link) => link.restore(),
        None => limit_file_size(serve_pid, away.then_some(1)),
    };

    // A sync in flight and a delivery accepted, then the database goes.
    setup.post(&format!("/api/integrations/{}/sync", setup.other), json!({})).await;
    assert_eq!(setup.deliver(&client, WEBHOOK_SECRET, health_delivery()).await, 202);
    cut(true);

    let mut figures = Outage::default();
    let started = Instant::now();
    for (what, request) in [
        ("healthz", client.get(format!("{base}/healthz"))),
        ("readyz", client.get(format!("{base}/readyz"))),
        ("integrations", client.get(format!("{base}/api/integrations")).bearer_auth(TOKEN)),
        ("pause", client.post(format!("{base}/api/integrations/{}/pause", setup.workouts)).bearer_auth(TOKEN)),
    ] {
        let asked = Instant::now();
        let status = request.send().await.map_or(0, |r| r.status().as_u16());
        figures.slowest_answer = figures.slowest_answer.max(asked.elapsed());
        figures.answered.push((what, status));
    }
    let asked = Instant::now();
    // A new delivery (the first one's again would be answered from what is
    // stored, as a duplicate).
    let mut another: serde_json::Value = serde_json::from_slice(&health_delivery()).unwrap();
    another["sent"] = json!("during the outage");
    let refused = setup.deliver(&client, WEBHOOK_SECRET, serde_json::to_vec(&another).unwrap()).await;
    figures.slowest_answer = figures.slowest_answer.max(asked.elapsed());
    figures.answered.push(("delivery", refused));
    tokio::time::sleep(cut_for.saturating_sub(started.elapsed())).await;

    cut(false);
    let restored = Instant::now();
    eventually(60, "the API to answer again", || async {
        let response = client.get(format!("{base}/api/integrations")).bearer_auth(TOKEN).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    figures.recovered_in = restored.elapsed();

    let store = match &database {
        Some(direct) => setup.inlet.store_at(direct).await,
        None => setup.inlet.store().await,
    };
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

/// Ignore SIGXFSZ in this process and so in the processes it starts.
fn ignore_file_size_signal() {
    // SAFETY: sets a signal's disposition to "ignore", with no handler to run.
    let previous = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    assert_ne!(previous, libc::SIG_ERR);
}

/// Limit the size of the files process `pid` writes to `bytes` (`None`: no limit).
fn limit_file_size(pid: u32, bytes: Option<u64>) {
    let limit = libc::rlimit { rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY), rlim_max: libc::RLIM_INFINITY };
    // SAFETY: prlimit reads `limit` and writes nothing back (null old limit).
    let result = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(result, 0, "prlimit: {}", std::io::Error::last_os_error());
}
