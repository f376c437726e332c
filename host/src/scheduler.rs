//! The scheduler: sleeps until the earliest `next_due_at` is near (or until
//! woken by a change), then queues a fetch job for everything due within
//! [`QUEUE_AHEAD`], each to run at its due time. Queueing ahead takes the
//! scheduler's pass off the path from a due time to its run: when it comes,
//! a worker claims the job waiting for it. With several processes
//! on one database, only the holder of the "scheduler" lease schedules; a dead
//! leader's lease runs out and another process takes over (at once, when the
//! leader was a process of the same machine that has ended). The leader also
//! makes sure the host's own tasks exist (`housekeeping`), which it then
//! schedules like any integration.

use crate::housekeeping;
use crate::lease_owner::LeaseOwner;
use crate::store::Store;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

const LEASE_NAME: &str = "scheduler";
/// Integrations enqueued per transaction.
const ENQUEUE_BATCH: i64 = 500;
/// How far ahead of its due time a run is queued. An operator's pause or
/// new schedule withdraws a run queued but not yet due, so this is not felt
/// beyond the Updates page showing the run as queued.
pub const QUEUE_AHEAD: Duration = Duration::from_secs(1);
/// The shortest time between passes while runs fall due all the time: a
/// pass then queues what falls due in this long, in as few statements.
const PASS_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub owner: String,
    /// Leadership lasts this long without renewal.
    pub lease: Duration,
    /// Attempts of the fetch jobs it queues.
    pub fetch_max_attempts: i64,
}

pub struct Scheduler {
    store: Store,
    config: SchedulerConfig,
    /// Notified when schedules change or runs are triggered in this process.
    wake: Arc<Notify>,
    /// Notified after enqueueing, to wake the fetch workers.
    jobs_enqueued: Arc<Notify>,
    /// When this process last took or renewed the leadership.
    renewed_at: Mutex<Option<Instant>>,
}

impl Scheduler {
    pub fn new(store: Store, config: SchedulerConfig, wake: Arc<Notify>, jobs_enqueued: Arc<Notify>) -> Scheduler {
        Scheduler { store, config, wake, jobs_enqueued, renewed_at: Mutex::new(None) }
    }

    /// One pass. Returns whether this process leads, and the earliest due
    /// time it has not queued yet.
    pub async fn tick(&self) -> anyhow::Result<(bool, Option<i64>)> {
        if !self.lead().await? {
            return Ok((false, None));
        }
        let until = self.store.now() + QUEUE_AHEAD.as_millis() as i64;
        loop {
            let enqueued = self.store.enqueue_due_fetches(until, self.config.fetch_max_attempts, ENQUEUE_BATCH).await?;
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

    /// Take or keep the leadership: when it is free or expired, or at once
    /// when its holder is a process of this machine that has ended. A leader
    /// renews once a third of the lease has passed, not at every pass: with
    /// thousands due a second, passes follow each other closely, and a write
    /// each would cost more than the work. (Leading only saves work: two
    /// schedulers cannot queue one due time twice, as queueing clears it.)
    async fn lead(&self) -> anyhow::Result<bool> {
        let fresh = |at: &Option<Instant>| at.is_some_and(|at| at.elapsed() < self.config.lease / 3);
        if fresh(&self.renewed_at.lock().expect("never poisoned")) {
            return Ok(true);
        }
        let lease_ms = self.config.lease.as_millis() as i64;
        let started = Instant::now();
        let led = self.lead_now(lease_ms).await?;
        *self.renewed_at.lock().expect("never poisoned") = led.then_some(started);
        Ok(led)
    }

    async fn lead_now(&self, lease_ms: i64) -> anyhow::Result<bool> {
        if self.store.acquire_lease(LEASE_NAME, &self.config.owner, lease_ms).await? {
            return Ok(true);
        }
        let holder = self.store.lease_holder(LEASE_NAME).await?;
        let Some(ended) = holder.filter(|h| LeaseOwner::parse(h).is_some_and(|o| o.is_gone())) else {
            return Ok(false);
        };
        let taken = self.store.take_lease_from(LEASE_NAME, &ended, &self.config.owner, lease_ms).await?;
        if taken {
            tracing::info!(ended, "took the scheduler's leadership from a process that ended");
        }
        Ok(taken)
    }

    /// Run until `shutdown` becomes true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let renew_every = self.config.lease / 3;
        let mut host_tasks_exist = false;
        while !*shutdown.borrow() {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let wait = match self.tick().await {
                Ok((leader, next_due)) => {
                    // Only the leader creates them, so two processes starting
                    // together do not both.
                    if leader && !host_tasks_exist {
                        match housekeeping::ensure_tasks(&self.store).await {
                            Ok(()) => host_tasks_exist = true,
                            Err(error) => {
                                tracing::error!(error = %format!("{error:#}"), "creating the host's tasks failed")
                            }
                        }
                    }
                    let ahead = QUEUE_AHEAD.as_millis() as i64;
                    let until_queued =
                        next_due.map(|at| Duration::from_millis((at - ahead - self.store.now()).max(0) as u64));
                    until_queued.map_or(renew_every, |d| d.max(PASS_EVERY).min(renew_every))
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
        *self.renewed_at.lock().expect("never poisoned") = None;
        let _ = self.store.release_lease(LEASE_NAME, &self.config.owner).await;
    }
}
