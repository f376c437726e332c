//! The scheduler: sleeps until the earliest `next_due_at` (or until woken by a
//! change), then queues a fetch job for everything due. With several processes
//! on one database, only the holder of the "scheduler" lease schedules; a dead
//! leader's lease runs out and another process takes over.

use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

const LEASE_NAME: &str = "scheduler";
/// Integrations enqueued per transaction.
const ENQUEUE_BATCH: i64 = 500;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub owner: String,
    /// Leadership lasts this long without renewal.
    pub lease: Duration,
    /// Attempts of the fetch jobs it queues.
    pub fetch_max_attempts: i64,
    /// Sync history kept: age and count per integration.
    pub history_max_age: Duration,
    pub history_max_runs: i64,
}

pub struct Scheduler {
    pub store: Store,
    pub config: SchedulerConfig,
    /// Notified when schedules change or runs are triggered in this process.
    pub wake: Arc<Notify>,
    /// Notified after enqueueing, to wake the fetch workers.
    pub jobs_enqueued: Arc<Notify>,
}

impl Scheduler {
    /// One pass. Returns whether this process leads, and when to look again.
    pub async fn tick(&self) -> anyhow::Result<(bool, Option<i64>)> {
        let lease_ms = self.config.lease.as_millis() as i64;
        if !self.store.acquire_lease(LEASE_NAME, &self.config.owner, lease_ms).await? {
            return Ok((false, None));
        }
        loop {
            let enqueued = self.store.enqueue_due_fetches(self.config.fetch_max_attempts, ENQUEUE_BATCH).await?;
            if !enqueued.is_empty() {
                tracing::debug!(count = enqueued.len(), "queued due fetches");
                self.jobs_enqueued.notify_waiters();
            }
            if (enqueued.len() as i64) < ENQUEUE_BATCH {
                break;
            }
        }
        Ok((true, self.store.earliest_due_at().await?))
    }

    pub async fn prune_history(&self) -> anyhow::Result<()> {
        let before = self.store.now() - self.config.history_max_age.as_millis() as i64;
        let runs = self.store.prune_sync_runs(before, self.config.history_max_runs).await?;
        let deliveries = self.store.prune_webhook_deliveries(before).await?;
        let batches = self.store.prune_processed_batches(before).await?;
        tracing::debug!(runs, deliveries, batches, "pruned history");
        Ok(())
    }

    /// Run until `shutdown` becomes true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let renew_every = self.config.lease / 3;
        let mut last_prune: Option<std::time::Instant> = None;
        while !*shutdown.borrow() {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let wait = match self.tick().await {
                Ok((leader, next_due)) => {
                    if leader && last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                        last_prune = Some(std::time::Instant::now());
                        if let Err(error) = self.prune_history().await {
                            tracing::error!(error = %format!("{error:#}"), "pruning history failed");
                        }
                    }
                    let until_due = next_due.map(|at| Duration::from_millis((at - self.store.now()).max(0) as u64));
                    until_due.map_or(renew_every, |d| d.min(renew_every))
                }
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "scheduler pass failed");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        let _ = self.store.release_lease(LEASE_NAME, &self.config.owner).await;
    }
}
