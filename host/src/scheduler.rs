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
use std::sync::atomic::{AtomicI64, Ordering};
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

/// Wakes this process's scheduler. A run recorded by another process
/// (`inlet worker`, or a `serve` that does not lead) does not reach the
/// leader: its due time waits for the leader's next pass.
pub struct SchedulerWake {
    notify: Notify,
    /// When the scheduler's next pass is planned (epoch ms, the store's
    /// clock); [`PASS_UNDER_WAY`] while a pass runs or none is planned yet,
    /// `i64::MIN` while another process leads (there is nothing to wake).
    next_pass_at: AtomicI64,
    /// The longest the scheduler sleeps between passes (ms).
    sleeps_at_most: AtomicI64,
}

/// `next_pass_at` while a pass runs: the pass plans the next.
const PASS_UNDER_WAY: i64 = i64::MAX;

impl Default for SchedulerWake {
    fn default() -> Self {
        // Until a scheduler runs, any due time is worth a wake-up: it costs nothing.
        let (next_pass_at, sleeps_at_most) = (AtomicI64::new(PASS_UNDER_WAY), AtomicI64::new(i64::MAX / 2));
        SchedulerWake { notify: Notify::new(), next_pass_at, sleeps_at_most }
    }
}

impl SchedulerWake {
    /// A schedule changed or a run was triggered: look now.
    pub fn now(&self) {
        self.notify.notify_waiters();
    }

    /// A run's end set its integration's next due time to `due_at`. The
    /// scheduler, asleep until its next planned pass, would queue it late
    /// if that pass comes after the time it must be queued by (a fetch that
    /// ran nearly as long as its interval). A pass under way may have read
    /// the due times before this one was set, and plans its next at most its
    /// longest sleep after that read: only a due time sooner than that
    /// wakes it (it is followed by another pass, which sees it).
    pub fn due_set(&self, due_at: i64, now: i64) {
        let queue_by = due_at - QUEUE_AHEAD.as_millis() as i64;
        let next_pass = match self.next_pass_at.load(Ordering::SeqCst) {
            PASS_UNDER_WAY => now.saturating_add(self.sleeps_at_most.load(Ordering::SeqCst)),
            planned => planned,
        };
        if queue_by < next_pass {
            self.notify.notify_waiters();
        }
    }

    fn scheduler_started(&self, sleeps_at_most: Duration) {
        self.sleeps_at_most.store(sleeps_at_most.as_millis() as i64, Ordering::SeqCst);
    }

    fn pass_started(&self) {
        self.next_pass_at.store(PASS_UNDER_WAY, Ordering::SeqCst);
    }

    fn pass_planned(&self, at: i64) {
        self.next_pass_at.store(at, Ordering::SeqCst);
    }
}

pub struct Scheduler {
    store: Store,
    config: SchedulerConfig,
    /// Notified when schedules change or runs are triggered in this process,
    /// and when a run's end sets a due time its next pass would come late for.
    wake: Arc<SchedulerWake>,
    /// Notified after enqueueing, to wake the fetch workers.
    jobs_enqueued: Arc<Notify>,
    /// When this process last took or renewed the leadership.
    renewed_at: Mutex<Option<Instant>>,
}

impl Scheduler {
    pub fn new(
        store: Store,
        config: SchedulerConfig,
        wake: Arc<SchedulerWake>,
        jobs_enqueued: Arc<Notify>,
    ) -> Scheduler {
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
        self.wake.scheduler_started(renew_every);
        let mut host_tasks_exist = false;
        while !*shutdown.borrow() {
            let notified = self.wake.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.wake.pass_started();

            let (wait, leads) = match self.tick().await {
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
                    (until_queued.map_or(renew_every, |d| d.max(PASS_EVERY).min(renew_every)), leader)
                }
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "scheduler pass failed");
                    (Duration::from_secs(1), true)
                }
            };
            self.wake.pass_planned(if leads { self.store.now() + wait.as_millis() as i64 } else { i64::MIN });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::schedule::Schedule;
    use crate::secrets::SecretKey;
    use crate::store::groups::Credentials;
    use crate::store::integrations::{NewIntegration, NextDue, PauseEdit};
    use futures_util::FutureExt;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_due_time_set_sooner_than_the_next_pass_wakes_the_scheduler() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("scheduler.db").display());
        let store = Store::open(&url, Arc::new(SystemClock), Arc::new(SecretKey::generate())).await.unwrap();
        let group = store.insert_group("test", "group", &Credentials::default()).await.unwrap();
        let hourly = Schedule::Interval { seconds: 3_600 };
        let integration = NewIntegration {
            plugin_id: "test",
            instance_type: "things",
            group_id: group,
            name: "a",
            config: "{}",
            schedule: Some(&hourly),
            first_due_at: None,
            paused_reason: None,
        };
        let id = store.insert_integration(&integration).await.unwrap();
        // Nothing is due: after its first pass it sleeps for a third of its
        // lease, 20 s.
        let config = SchedulerConfig { owner: "test".into(), lease: Duration::from_secs(60), fetch_max_attempts: 3 };
        let wake = Arc::new(SchedulerWake::default());
        let scheduler = Arc::new(Scheduler::new(store.clone(), config, Arc::clone(&wake), Arc::default()));
        let (shutdown, stop) = watch::channel(false);
        let running = tokio::spawn(scheduler.run(stop));
        tokio::time::sleep(Duration::from_millis(300)).await;

        // A far due time wakes nobody: the next pass comes before it.
        let woken_by = |due_in_ms: i64| woken(&wake, store.now() + due_in_ms, store.now());
        assert!(!woken_by(30_000), "woken for a far due time");
        // Nor one that a pass already planned queues in time: another
        // integration due in 3 s has the next pass come in 2 s.
        let sooner = NewIntegration { name: "b", first_due_at: Some(store.now() + 3_000), ..integration };
        store.insert_integration(&sooner).await.unwrap();
        wake.now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!woken_by(5_000), "woken for a due time the planned pass queues");

        // A run's end sets one in 1.5 s: queued a second ahead of it, not at
        // the pass planned for the other.
        let due_at = store.now() + 1_500;
        store.save_sync_settings(id, Some(&hourly), PauseEdit::To(None), NextDue::At(Some(due_at))).await.unwrap();
        wake.due_set(due_at, store.now());
        let queued_within = Instant::now() + Duration::from_secs(5);
        while store.integration_jobs(id).await.unwrap().is_empty() {
            assert!(Instant::now() < queued_within, "the run due in 1.5 s was not queued within 5 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(store.integration_jobs(id).await.unwrap()[0].run_at, due_at);
        shutdown.send(true).unwrap();
        running.await.unwrap();
    }

    /// During a pass, a due time wakes the scheduler only if the pass could
    /// plan its next after the time it must be queued by: with daily runs
    /// ending all the time, each would otherwise cost another pass.
    #[test]
    fn during_a_pass_only_a_due_time_within_the_longest_sleep_wakes_the_scheduler() {
        let wake = SchedulerWake::default();
        wake.scheduler_started(Duration::from_secs(20));
        wake.pass_started();
        let now = 1_000_000;
        assert!(!woken(&wake, now + 86_400_000, now), "woken for a run due tomorrow");
        assert!(woken(&wake, now + 15_000, now), "not woken for a run the pass may plan past");
    }

    /// Whether `due_set(due_at, now)` wakes the scheduler.
    fn woken(wake: &SchedulerWake, due_at: i64, now: i64) -> bool {
        let mut notified = Box::pin(wake.notify.notified());
        notified.as_mut().enable();
        wake.due_set(due_at, now);
        notified.now_or_never().is_some()
    }
}
