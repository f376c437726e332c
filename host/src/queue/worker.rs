//! A worker for one queue: claims due jobs up to its concurrency, renews their
//! leases while they run, applies the retry policy when they end, and on
//! shutdown stops claiming, lets running jobs finish within a grace period and
//! hands back the rest.

use super::policy::{Decision, QueuePolicy, decide};
use crate::notify::Notifier;
use crate::runtime::wit::Trigger;
use crate::store::Store;
use crate::store::jobs::{Job, Queue};
use crate::sync::{ErrorClass, RunRequest, SyncRunner};
use anyhow::Result;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this process in leases; unique per process.
    pub owner: String,
    /// A job whose worker has not renewed for this long is rescued.
    pub lease: Duration,
    /// Longest sleep when nothing is due (other processes may enqueue).
    pub poll_interval: Duration,
    /// How long shutdown waits for running jobs before handing them back.
    pub grace: Duration,
    /// Pause an integration after this many failed runs in a row.
    pub pause_after_failures: i64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            owner: format!("inlet-{}-{}", hostname(), std::process::id()),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            grace: Duration::from_secs(30),
            pause_after_failures: 3,
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into())
}

pub struct QueueWorker {
    pub runner: Arc<SyncRunner>,
    pub queue: Queue,
    pub policy: QueuePolicy,
    pub config: WorkerConfig,
    /// Notified when jobs are enqueued in this process.
    pub wake: Arc<Notify>,
    pub notifier: Arc<Notifier>,
    /// Jobs this worker holds, for lease renewal and release.
    running: Mutex<BTreeSet<i64>>,
}

impl QueueWorker {
    pub fn new(
        runner: Arc<SyncRunner>,
        queue: Queue,
        policy: QueuePolicy,
        config: WorkerConfig,
        wake: Arc<Notify>,
        notifier: Arc<Notifier>,
    ) -> Arc<QueueWorker> {
        Arc::new(QueueWorker { runner, queue, policy, config, wake, notifier, running: Mutex::default() })
    }

    fn store(&self) -> &Store {
        &self.runner.store
    }

    fn lease_ms(&self) -> i64 {
        self.config.lease.as_millis() as i64
    }

    /// Run until `shutdown` becomes true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.policy.concurrency));
        let mut tasks: JoinSet<()> = JoinSet::new();
        let renewer = tokio::spawn(Arc::clone(&self).renew_leases());
        let mut last_rescue = std::time::Instant::now() - self.config.lease;
        while !*shutdown.borrow() {
            // Register for wake-ups before looking, so a notification that
            // arrives between the look and the wait is not lost.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            if last_rescue.elapsed() >= self.config.lease / 2 {
                last_rescue = std::time::Instant::now();
                if let Err(error) = self.rescue().await {
                    tracing::error!(error = %format!("{error:#}"), "rescuing expired jobs failed");
                }
            }
            let free = permits.available_permits();
            let mut claimed = 0;
            if free > 0 {
                match self.store().claim_jobs(self.queue, &self.config.owner, self.lease_ms(), free as i64).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            let permit = Arc::clone(&permits).acquire_owned().await.expect("semaphore never closes");
                            self.running.lock().unwrap().insert(job.id);
                            let worker = Arc::clone(&self);
                            tasks.spawn(async move {
                                worker.execute(job).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(error) => {
                        tracing::error!(queue = self.queue.as_str(), error = %format!("{error:#}"), "claiming jobs failed")
                    }
                }
            }
            while tasks.try_join_next().is_some() {}
            if free > 0 && claimed == free {
                continue; // there may be more due right now
            }
            let wait = self.time_until_next_job().await;
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        self.drain(tasks).await;
        renewer.abort();
    }

    async fn time_until_next_job(&self) -> Duration {
        let poll = self.config.poll_interval;
        match self.store().next_job_due_at(self.queue).await {
            Ok(Some(at)) => Duration::from_millis((at - self.store().now()).max(0) as u64).min(poll),
            _ => poll,
        }
    }

    /// Shutdown: wait up to the grace period, then stop what still runs and
    /// hand its jobs back without counting the attempt.
    async fn drain(&self, mut tasks: JoinSet<()>) {
        let waited =
            tokio::time::timeout(self.config.grace, async { while tasks.join_next().await.is_some() {} }).await;
        if waited.is_ok() {
            return;
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let held: Vec<i64> = self.running.lock().unwrap().iter().copied().collect();
        for id in &held {
            if let Ok(Some(job)) = self.store().job(*id).await
                && let Some(run_id) = job.sync_run_id
            {
                let _ = self
                    .store()
                    .abandon_sync_run(run_id, "cancelled", "the worker shut down before the run finished")
                    .await;
            }
        }
        match self.store().release_jobs(&self.config.owner, &held).await {
            Ok(released) => {
                tracing::warn!(queue = self.queue.as_str(), released, "released unfinished jobs at shutdown")
            }
            Err(error) => tracing::error!(error = %format!("{error:#}"), "releasing jobs at shutdown failed"),
        }
    }

    async fn renew_leases(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.config.lease / 3).await;
            let held: Vec<i64> = self.running.lock().unwrap().iter().copied().collect();
            if held.is_empty() {
                continue;
            }
            if let Err(error) = self.store().renew_leases(&self.config.owner, &held, self.lease_ms()).await {
                tracing::error!(error = %format!("{error:#}"), "renewing job leases failed");
            }
        }
    }

    /// Make jobs of dead workers available again (or failed if that was their
    /// last attempt), and close the runs they left open.
    async fn rescue(&self) -> Result<()> {
        let rescued = self.store().rescue_expired_jobs().await?;
        for job in &rescued {
            tracing::warn!(job = job.id, integration = ?job.integration_id, "rescued a job whose lease expired");
            if let Some(run_id) = job.sync_run_id {
                self.store()
                    .abandon_sync_run(
                        run_id,
                        "failed",
                        "the worker running it stopped renewing its lease (killed or stuck)",
                    )
                    .await?;
            }
        }
        if !rescued.is_empty() {
            self.wake.notify_waiters();
        }
        Ok(())
    }

    async fn execute(&self, job: Job) {
        if let Err(error) = self.try_execute(&job).await {
            // The database failed around the run; try again later.
            tracing::error!(job = job.id, error = %format!("{error:#}"), "job failed in the host");
            let backoff = self.policy.backoff_before(job.id, job.attempt + 1);
            let at = self.store().now() + backoff.as_millis() as i64;
            let _ =
                self.store().retry_job_at(job.id, at, false, ErrorClass::Host.as_str(), &format!("{error:#}")).await;
        }
        self.running.lock().unwrap().remove(&job.id);
    }

    async fn try_execute(&self, job: &Job) -> Result<()> {
        let Some(integration_id) = job.integration_id else {
            self.store().fail_job(job.id, "permanent", "job has no integration").await?;
            return Ok(());
        };
        let trigger = match job.args.trigger.as_str() {
            _ if job.attempt > 1 => Trigger::Retry,
            "manual" => Trigger::Manual,
            "webhook" => Trigger::Webhook,
            "backfill" => Trigger::Backfill,
            _ => Trigger::Schedule,
        };
        let request = RunRequest {
            integration_id,
            trigger,
            attempt: job.attempt,
            job_id: Some(job.id),
            backfill_since: job.args.backfill_since,
        };
        let outcome = self.runner.run(&request).await?;
        let error = outcome.error.as_ref();
        let decision =
            decide(&self.policy, job.id, job.attempt, error.map(|e| e.class), error.and_then(|e| e.retry_after));
        let now = self.store().now();
        match decision {
            Decision::Complete => self.store().complete_job(job.id).await?,
            Decision::Retry(wait) | Decision::Wait(wait) => {
                let error = error.expect("only a failed run is retried");
                let refund = matches!(decision, Decision::Wait(_));
                let at = now + wait.as_millis() as i64;
                self.store().retry_job_at(job.id, at, refund, error.class.as_str(), &error.message).await?;
                return Ok(()); // the run is not over for scheduling purposes
            }
            Decision::Fail => {
                let error = error.expect("only a failed run fails");
                self.store().fail_job(job.id, error.class.as_str(), &error.message).await?;
            }
        }
        self.runner
            .record_run_end(integration_id, outcome.started_at, error, self.config.pause_after_failures, &self.notifier)
            .await
    }
}
