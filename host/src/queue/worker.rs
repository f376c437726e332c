//! A worker for one queue. It claims due jobs up to its concurrency; a task
//! per claimed batch records the batch's runs as started in one transaction
//! (while the worker claims the next batch) and runs each on its own task; a
//! completer records finished runs in batches (one transaction for everything
//! that finished meanwhile), as River does: per-job transactions would cap a
//! queue at a few thousand jobs a second.
//!
//! Leases are renewed while a job runs and until its completion is written. On
//! shutdown it stops claiming, lets running jobs finish within a grace period,
//! and hands the rest back without counting the attempt.

use crate::domain::error_class::ErrorClass;
use crate::domain::job_state::JobState;
use crate::domain::queue::Queue;
use crate::lease_owner::LeaseOwner;
use crate::metrics::METRICS;
use crate::scheduler::SchedulerWake;
use crate::settings::QueuePolicy;
use crate::store::jobs::{Abandoned, Job, JobAction, JobLease};
use crate::store::run_batches::{Recorded, RunCompletion};
use crate::store::sync_runs::RunStatus;
use crate::store::{self, Store};
use crate::sync::{ExecutedRun, NotStarted, RunRequest, SyncRunner, job_action};
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};

/// Completions written per transaction, at most.
const COMPLETION_BATCH: usize = 512;

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
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            owner: LeaseOwner::this_process().to_string(),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            grace: Duration::from_secs(30),
        }
    }
}

/// A run that finished executing, waiting for the completer.
struct Finished {
    job: Job,
    run: ExecutedRun,
}

pub struct QueueWorker {
    pub runner: Arc<SyncRunner>,
    pub queue: Queue,
    pub policy: QueuePolicy,
    pub config: WorkerConfig,
    /// Notified when jobs are enqueued in this process.
    pub wake: Arc<Notify>,
    /// Told of the due times that runs' ends set.
    pub scheduler_wake: Arc<SchedulerWake>,
    /// Jobs this worker holds a lease on, until their completion is written,
    /// with the claim each lease came from: a write of an earlier claim's
    /// completion must not let go of a later claim of the same job.
    held: Mutex<BTreeMap<i64, i64>>,
    /// Runs executing now, by job, with the claim they run for: stopped if
    /// that claim's lease is found lost.
    executing: Mutex<BTreeMap<i64, (i64, AbortHandle)>>,
}

impl QueueWorker {
    pub fn new(
        runner: Arc<SyncRunner>,
        queue: Queue,
        policy: QueuePolicy,
        config: WorkerConfig,
        wake: Arc<Notify>,
        scheduler_wake: Arc<SchedulerWake>,
    ) -> Arc<QueueWorker> {
        Arc::new(QueueWorker {
            runner,
            queue,
            policy,
            config,
            wake,
            scheduler_wake,
            held: Mutex::default(),
            executing: Mutex::default(),
        })
    }

    fn store(&self) -> &Store {
        &self.runner.store
    }

    fn lease_ms(&self) -> i64 {
        self.config.lease.as_millis() as i64
    }

    /// The held jobs and their claims.
    fn held(&self) -> Vec<(i64, i64)> {
        self.held.lock().unwrap().iter().map(|(id, claim)| (*id, *claim)).collect()
    }

    /// Run until `shutdown` becomes true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.policy.concurrency));
        let slot_freed = Arc::new(Notify::new());
        // One task per claimed batch: it starts the batch's runs and owns
        // their tasks, so claiming the next batch overlaps starting this one.
        let mut batches: JoinSet<()> = JoinSet::new();
        let (finished, completions) = mpsc::unbounded_channel();
        let completer = tokio::spawn(Arc::clone(&self).complete(completions));
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
            // While busy, claim in batches (a quarter of the slots at least):
            // one transaction per handful of jobs instead of one per job.
            let worth_claiming = free > 0 && (batches.is_empty() || free * 4 >= self.policy.concurrency);
            let mut claimed = 0;
            if worth_claiming {
                match self.claim(free).await {
                    Ok(jobs) if !jobs.is_empty() => {
                        claimed = jobs.len();
                        let permit = Arc::clone(&permits).try_acquire_many_owned(claimed as u32);
                        let permit =
                            permit.expect("only this loop takes permits, and it claimed no more than were free");
                        let (worker, finished, slot_freed) =
                            (Arc::clone(&self), finished.clone(), Arc::clone(&slot_freed));
                        // On the plugin threads with its runs: starting
                        // them there costs no wake-up of another thread.
                        let run_batch = async move { worker.run_batch(jobs, permit, finished, slot_freed).await };
                        batches.spawn_on(run_batch, self.runner.runtime.plugin_threads());
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(queue = self.queue.as_str(), error = %format!("{error:#}"), "claiming jobs failed")
                    }
                }
            }
            while batches.try_join_next().is_some() {}
            if worth_claiming && claimed == free {
                continue; // there may be more due right now
            }
            // While busy, a finishing run is the next reason to look again;
            // asking for the next due time after every run is a query per job.
            let wait = match worth_claiming {
                true => self.time_until_next_job().await,
                false => self.config.poll_interval,
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
                _ = slot_freed.notified(), if !batches.is_empty() => {}
            }
        }
        self.drain(batches, finished, completer).await;
        renewer.abort();
    }

    /// Claim up to `limit` jobs; this worker holds their leases from now on.
    async fn claim(&self, limit: usize) -> Result<Vec<Job>> {
        let jobs = self.store().claim_jobs(self.queue, &self.config.owner, self.lease_ms(), limit as i64).await?;
        self.held.lock().unwrap().extend(jobs.iter().map(|j| (j.id, j.claims)));
        let now = self.store().now();
        for job in &jobs {
            METRICS.job_claimed(self.queue.as_str(), Duration::from_millis((now - job.run_at).max(0) as u64));
        }
        Ok(jobs)
    }

    /// Start the runs of claimed jobs and execute each on its own task, each
    /// holding one of `permit`'s slots until it has executed.
    async fn run_batch(
        self: Arc<Self>,
        jobs: Vec<Job>,
        mut permit: OwnedSemaphorePermit,
        finished: mpsc::UnboundedSender<Finished>,
        slot_freed: Arc<Notify>,
    ) {
        let started = self.start(jobs).await.unwrap_or_else(|error| {
            tracing::error!(queue = self.queue.as_str(), error = %format!("{error:#}"), "starting runs failed");
            Vec::new()
        });
        // Dropping this set (shutdown past its grace) stops the runs.
        let mut runs = JoinSet::new();
        for (job, run) in started {
            let slot = permit.split(1).expect("a slot per claimed job");
            let (worker, finished, slot_freed) = (Arc::clone(&self), finished.clone(), Arc::clone(&slot_freed));
            let (job_id, claim) = (job.id, job.claims);
            // Registered before the task can finish and deregister itself.
            let mut executing = self.executing.lock().unwrap();
            // On the plugin threads: the run's calls then need no hop there.
            let handle = runs.spawn_on(
                async move {
                    // Boxed: a task's future is copied into its cell and moved
                    // as its stage changes, and a plugin call's is large.
                    let run = Box::pin(worker.runner.execute(run)).await;
                    worker.stop_executing(job.id, job.claims);
                    drop(slot);
                    slot_freed.notify_one();
                    let _ = finished.send(Finished { job, run });
                },
                self.runner.runtime.plugin_threads(),
            );
            // Two claims of one job here: the earlier lost its lease (the
            // job was rescued and claimed again), and must not run beside
            // the later, whichever batch started first. Claims only grow.
            match executing.get(&job_id) {
                Some((running_for, _)) if *running_for > claim => handle.abort(),
                _ => {
                    if let Some((_, stale)) = executing.insert(job_id, (claim, handle)) {
                        stale.abort();
                        tracing::warn!(job = job_id, "the job was claimed again; its earlier claim's run was stopped");
                    }
                }
            }
        }
        drop(permit); // the slots of jobs that did not start
        slot_freed.notify_one();
        while runs.join_next().await.is_some() {}
    }

    /// Record the runs of claimed jobs as started.
    async fn start(&self, jobs: Vec<Job>) -> Result<Vec<(Job, crate::sync::StartedRun)>> {
        let mut requests = Vec::with_capacity(jobs.len());
        for job in &jobs {
            match job.integration_id {
                Some(integration_id) => requests.push(RunRequest::for_job(job, integration_id, self.lease(job))),
                None => self.fail(job, "job has no integration").await,
            }
        }
        let (started, not_started) = match self.runner.start(requests).await {
            Ok(started) => started,
            Err(error) => {
                // Hand them back rather than wait for their leases to lapse.
                // Stop renewing them first: if handing back fails too, the
                // leases lapse and the jobs are rescued.
                let claims: Vec<(i64, i64)> = jobs.iter().map(|j| (j.id, j.claims)).collect();
                self.release_held(claims.iter().copied());
                self.store().release_jobs(&self.config.owner, &claims).await?;
                return Err(error);
            }
        };
        for (request, why) in not_started {
            let lease = request.lease.expect("worker requests carry their job");
            match why {
                NotStarted::Deleted => self.fail_leased(&lease, "the integration was deleted").await,
                NotStarted::Paused => self.withdraw_paused(&lease).await,
            }
        }
        let mut by_id: std::collections::BTreeMap<i64, Job> = jobs.into_iter().map(|j| (j.id, j)).collect();
        Ok(started
            .into_iter()
            .filter_map(|run| {
                let job_id = run.request.lease.as_ref().expect("worker requests carry their job").job_id;
                by_id.remove(&job_id).map(|j| (j, run))
            })
            .collect())
    }

    async fn fail(&self, job: &Job, message: &str) {
        self.fail_leased(&self.lease(job), message).await
    }

    /// Fail a job that cannot run, for good. A store error here must not
    /// take the batch's started runs with it: the lease is let go either
    /// way, so a job the store could not fail lapses and is rescued.
    async fn fail_leased(&self, lease: &JobLease, message: &str) {
        self.release_held([(lease.job_id, lease.claim)]);
        if let Err(error) = self.store().fail_job(lease, "permanent", message).await {
            let error = format!("{error:#}");
            tracing::warn!(job = lease.job_id, %error, "failing a job that cannot run failed; it is rescued when its lease lapses");
        }
    }

    /// Withdraw a scheduled run of an integration paused since it was
    /// queued, as the pause withdrew those waiting: it ran no attempt.
    async fn withdraw_paused(&self, lease: &JobLease) {
        self.release_held([(lease.job_id, lease.claim)]);
        match self.store().complete_job(lease).await {
            Ok(_) => tracing::info!(job = lease.job_id, "withdrew a scheduled run: its integration is paused"),
            Err(error) => {
                let error = format!("{error:#}");
                tracing::warn!(job = lease.job_id, %error, "withdrawing a paused integration's run failed; it is rescued when its lease lapses");
            }
        }
    }

    /// This worker's lease on a job it claimed.
    fn lease(&self, job: &Job) -> JobLease {
        JobLease::of(job, &self.config.owner)
    }

    async fn time_until_next_job(&self) -> Duration {
        let poll = self.config.poll_interval;
        match self.store().next_job_due_at(self.queue).await {
            Ok(Some(at)) => Duration::from_millis((at - self.store().now()).max(0) as u64).min(poll),
            _ => poll,
        }
    }

    /// Record finished runs, as many per transaction as have finished.
    async fn complete(self: Arc<Self>, mut completions: mpsc::UnboundedReceiver<Finished>) {
        while let Some(first) = completions.recv().await {
            let mut batch = vec![first];
            while batch.len() < COMPLETION_BATCH {
                match completions.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.write_completions(batch).await;
        }
    }

    async fn write_completions(&self, batch: Vec<Finished>) {
        let records: Vec<_> =
            batch.iter().map(|finished| self.runner.completion(&finished.run, Some(self.action(finished)))).collect();
        let claims: Vec<(i64, i64)> = batch.iter().map(|f| (f.job.id, f.job.claims)).collect();
        match self.complete_runs_retrying(&records).await {
            Ok(recorded) => {
                let now = self.store().now();
                for (finished, recorded) in batch.iter().zip(&recorded) {
                    if *recorded == Recorded::LeaseLost {
                        tracing::warn!(
                            job = finished.job.id,
                            run = finished.run.started.run_id,
                            "the job's lease was lost before its run was recorded (the job was rescued); the run's \
                             result was dropped"
                        );
                        continue;
                    }
                    if *recorded == Recorded::Earlier {
                        tracing::info!(
                            job = finished.job.id,
                            run = finished.run.started.run_id,
                            "the run was recorded by the write whose acknowledgement was lost"
                        );
                    }
                    let took = Duration::from_millis((now - finished.run.started.started_at).max(0) as u64);
                    METRICS.run_finished(self.queue.as_str(), finished.run.outcome.status.as_str(), took);
                }
                // What the fetches stored is processed without waiting for a poll.
                if records
                    .iter()
                    .zip(&recorded)
                    .any(|(r, done)| r.then_process.is_some() && *done != Recorded::LeaseLost)
                {
                    self.runner.process_queue.wake.notify_waiters();
                }
                let soonest_due = (records.iter().zip(&recorded))
                    .filter(|(_, done)| matches!(done, Recorded::Finished { paused: None }))
                    .filter_map(|(r, _)| r.end.as_ref().filter(|end| end.fetched)?.next_due_at)
                    .min();
                if let Some(due_at) = soonest_due {
                    self.scheduler_wake.due_set(due_at, now);
                }
                let runs: Vec<ExecutedRun> = batch.into_iter().map(|f| f.run).collect();
                self.runner.notify_operator(&runs, &records, &recorded);
            }
            // The jobs stay running under our lease; once we stop renewing
            // it they are rescued and run again.
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), jobs = claims.len(), "recording finished runs failed")
            }
        }
        self.release_held(claims);
    }

    /// Write `records`, trying again while the database cannot be used (down,
    /// its disk full) for at most a lease: the jobs stay ours meanwhile, so
    /// their runs are recorded once it is back instead of run again. (Should
    /// a lease run out first, the job is rescued and the write refused.)
    async fn complete_runs_retrying(&self, records: &[RunCompletion]) -> Result<Vec<Recorded>> {
        let give_up_at = std::time::Instant::now() + self.config.lease;
        let mut wait = Duration::from_millis(250);
        loop {
            match self.store().complete_runs(records).await {
                Err(error) if store::is_unavailable(&error) && std::time::Instant::now() + wait < give_up_at => {
                    tracing::warn!(
                        error = %format!("{error:#}"),
                        retry_in_ms = wait.as_millis() as u64,
                        "recording finished runs failed; the database cannot be used, trying again"
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                written => return written,
            }
        }
    }

    /// Take the run of job `id` out of those executing, if it runs for
    /// `claim` (a later claim's run goes on).
    fn stop_executing(&self, id: i64, claim: i64) -> Option<AbortHandle> {
        let mut executing = self.executing.lock().unwrap();
        match executing.get(&id) {
            Some((running_for, _)) if *running_for == claim => executing.remove(&id).map(|(_, run)| run),
            _ => None,
        }
    }

    /// Stop renewing the leases of these claims (job id, claim), each
    /// while it is the job's claim held.
    fn release_held(&self, claims: impl IntoIterator<Item = (i64, i64)>) {
        let mut held = self.held.lock().unwrap();
        for (id, claim) in claims {
            if held.get(&id) == Some(&claim) {
                held.remove(&id);
            }
        }
    }

    /// What the retry policy makes of a finished run's job.
    fn action(&self, finished: &Finished) -> JobAction {
        job_action(&self.policy, &finished.job, finished.run.error.as_ref(), self.store().now())
    }

    /// Shutdown: wait up to the grace period, record what finished, then
    /// stop what still runs and hand its jobs back without counting the attempt.
    async fn drain(
        &self,
        mut batches: JoinSet<()>,
        finished: mpsc::UnboundedSender<Finished>,
        completer: tokio::task::JoinHandle<()>,
    ) {
        let waited =
            tokio::time::timeout(self.config.grace, async { while batches.join_next().await.is_some() {} }).await;
        if waited.is_err() {
            batches.abort_all();
            while batches.join_next().await.is_some() {}
        }
        drop(finished);
        let _ = completer.await;
        let unfinished = self.held();
        if unfinished.is_empty() {
            return;
        }
        for &(id, claim) in &unfinished {
            // Still this claim's: a run of a lease lost unnoticed is another's now.
            if let Ok(Some(job)) = self.store().job(id).await
                && job.claims == claim
                && job.state == JobState::Running
                && let Some(run_id) = job.sync_run_id
            {
                let _ = self
                    .store()
                    .abandon_sync_run(
                        run_id,
                        RunStatus::Cancelled,
                        ErrorClass::LeaseExpired,
                        "the worker shut down before the run finished",
                    )
                    .await;
            }
        }
        match self.store().release_jobs(&self.config.owner, &unfinished).await {
            Ok(released) => {
                tracing::warn!(queue = self.queue.as_str(), released, "released unfinished jobs at shutdown")
            }
            Err(error) => tracing::error!(error = %format!("{error:#}"), "releasing jobs at shutdown failed"),
        }
    }

    /// Renew the leases of held jobs; stop the run of a job whose lease is
    /// found lost (it was rescued, and may run elsewhere now).
    async fn renew_leases(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.config.lease / 3).await;
            let held = self.held();
            if held.is_empty() {
                continue;
            }
            let renewed = match self.store().renew_leases(&self.config.owner, &held, self.lease_ms()).await {
                Ok(renewed) => renewed.into_iter().collect::<BTreeSet<i64>>(),
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "renewing job leases failed");
                    continue;
                }
            };
            let lost: Vec<(i64, i64)> = held.into_iter().filter(|(id, _)| !renewed.contains(id)).collect();
            for &(id, claim) in &lost {
                // A run already executed is fenced when its completion is written.
                if let Some(run) = self.stop_executing(id, claim) {
                    run.abort();
                    tracing::warn!(job = id, "the job's lease was lost (it was rescued); its run was stopped");
                }
            }
            self.release_held(lost);
        }
    }

    /// Make jobs of dead workers available again (or failed if that was their
    /// last attempt), closing the runs they left open: jobs whose lease
    /// expired, and at once those of processes of this machine that ended
    /// (a restarted `serve` takes its predecessor's jobs without waiting).
    /// The process worker also queues batches that nothing was to process.
    async fn rescue(&self) -> Result<()> {
        let mut abandoned = vec![Abandoned::LeaseExpired];
        for owner in self.store().running_job_owners().await? {
            if LeaseOwner::parse(&owner).is_some_and(|o| o.is_gone()) {
                abandoned.push(Abandoned::HolderEnded(owner));
            }
        }
        let mut any = false;
        for which in &abandoned {
            for job in self.runner.rescue_jobs(which).await? {
                any = true;
                tracing::warn!(job = job.id, integration = ?job.integration_id, reason = which.reason(), "rescued a job");
            }
        }
        if self.queue == Queue::Process {
            for integration in self.store().queue_unprocessed_batches(self.policy.max_attempts).await? {
                any = true;
                tracing::warn!(integration, "queued the processing of stored batches that nothing was to process");
            }
        }
        if any {
            self.wake.notify_waiters();
        }
        Ok(())
    }
}
