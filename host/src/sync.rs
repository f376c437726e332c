//! The two halves of a sync, each a run of its own: a fetch run (a job of the
//! `fetch` queue) stores batches and state at the plugin's checkpoints and
//! queues a `process` job with its end; a process run (of the `process` or
//! `webhook` queue) turns stored batches into records. Each is recorded with
//! its counts, error and log lines. A processing failure is retried by its own
//! job, and never fails or repeats the fetch.

use crate::auth::OAuth;
use crate::auth::refresh;
use crate::capabilities::cassette::Cassette;
use crate::capabilities::http::{Auth, GroupTokens, OutboundHttp, RefreshError, UnapprovedHosts};
use crate::capabilities::quota::GroupQuotas;
use crate::capabilities::rate_limit::GroupRateLimits;
use crate::capabilities::{FetchScope, OutputLimits, batches};
use crate::domain::error_class::ErrorClass;
use crate::domain::manifest::{AuthKind, InstanceKind, RateLimit};
use crate::domain::pause_reason::PauseReason;
use crate::domain::plugin_call::{FetchMode, FetchRequest, PluginError, RawBatch, ScheduleHint};
use crate::domain::queue::Queue;
use crate::domain::trigger::Trigger;
use crate::housekeeping::{HostTask, Housekeeping};
use crate::notify::Notifier;
use crate::outbound::UpstreamOverrides;
use crate::runtime::registry::{LoadedPlugin, PluginRegistry};
use crate::runtime::{CallError, Runtime};
use crate::schedule::Schedule;
use crate::settings::{PluginSettings, QueuePolicy, decide};
use crate::store::Store;
use crate::store::groups::{ApprovedPlugin, Credentials, GroupAccess, Unreadable};
use crate::store::integrations::{DueAtStart, Integration, RunEnd};
use crate::store::jobs::{Abandoned, Job, JobAction, JobArgs, JobLease, NewJob, ReprocessScope};
use crate::store::raw_batches::{BatchFate, BatchSelection};
use crate::store::records::RecordCounts;
use crate::store::run_batches::{Recorded, Rescued, RunCompletion, RunStart};
use crate::store::sync_runs::{LogLine, LogTail, RunOutcome, RunStatus, SyncRun};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Why a run failed, with what the queue needs to decide about a retry.
#[derive(Debug, Clone)]
pub struct RunError {
    pub class: ErrorClass,
    pub message: String,
    /// The upstream asked to wait this long.
    pub retry_after: Option<Duration>,
    /// The group was found to need reconnecting; its integrations are
    /// paused and the operator told already.
    pub group_paused: bool,
}

impl RunError {
    fn new(class: ErrorClass, message: impl Into<String>) -> RunError {
        RunError { class, message: message.into(), retry_after: None, group_paused: false }
    }
}

fn plugin_error(error: PluginError) -> RunError {
    match error {
        PluginError::Transient(m) => RunError::new(ErrorClass::Transient, m),
        PluginError::RateLimited { retry_after_seconds, message } => RunError {
            class: ErrorClass::RateLimited,
            message: format!("retry after {retry_after_seconds}s: {message}"),
            retry_after: Some(Duration::from_secs(retry_after_seconds.into())),
            group_paused: false,
        },
        PluginError::Unauthorized(m) => RunError::new(ErrorClass::Unauthorized, m),
        PluginError::InvalidConfig(m) => RunError::new(ErrorClass::InvalidConfig, m),
        PluginError::Permanent(m) => RunError::new(ErrorClass::Permanent, m),
    }
}

fn call_error(error: CallError) -> RunError {
    let class = match error {
        CallError::Busy { .. } => ErrorClass::Transient,
        CallError::Trap { .. } | CallError::Deadline { .. } => ErrorClass::Trap,
    };
    RunError::new(class, error.to_string())
}

fn refresh_error(error: RefreshError) -> RunError {
    match error {
        RefreshError::GroupPaused(m) => RunError { group_paused: true, ..RunError::new(ErrorClass::Unauthorized, m) },
        RefreshError::NeedsReconnect(m) => RunError::new(ErrorClass::Unauthorized, m),
        RefreshError::Transient(m) => RunError::new(ErrorClass::Transient, m),
    }
}

/// One run to make.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub integration_id: i64,
    /// Which half: `fetch`, or processing stored batches (`process`, or a
    /// delivery's on `webhook`).
    pub queue: Queue,
    pub trigger: Trigger,
    /// 1 for the first attempt of a job.
    pub attempt: i64,
    /// The job this run belongs to, and this process's lease on it.
    pub lease: Option<JobLease>,
    /// Fetch history from this time (ms), ignoring cursors.
    pub backfill_since: Option<i64>,
    /// The `pending` run created when the run was asked for, if any.
    pub pending_run_id: Option<i64>,
    /// Process kept batches again with the current plugin (then any
    /// pending); on a processing queue.
    pub reprocess: Option<ReprocessScope>,
    /// An earlier attempt of this job checkpointed: a backfill continues
    /// from the plugin's progress instead of from its start.
    pub resumes: bool,
    /// The scheduler queued it (this attempt or the first) and no operator
    /// asked for it: it does not start while its integration is paused.
    pub scheduled: bool,
}

/// Why [`SyncRunner::start`] left a request unstarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStarted {
    /// The integration was deleted.
    Deleted,
    /// A scheduled run of an integration paused since it was queued: a run
    /// already running when the pause came back to retry, one rescued or
    /// handed back, or one claimed as the pause withdrew the rest.
    Paused,
}

impl RunRequest {
    pub fn manual(integration_id: i64) -> RunRequest {
        RunRequest {
            integration_id,
            queue: Queue::Fetch,
            trigger: Trigger::Manual,
            attempt: 1,
            lease: None,
            backfill_since: None,
            pending_run_id: None,
            reprocess: None,
            resumes: false,
            scheduled: false,
        }
    }

    /// The run a claimed job asks for.
    pub fn for_job(job: &Job, integration_id: i64, lease: JobLease) -> RunRequest {
        let trigger = if job.attempt > 1 { Trigger::Retry } else { job.args.trigger };
        RunRequest {
            integration_id,
            queue: job.queue,
            trigger,
            attempt: job.attempt,
            lease: Some(lease),
            backfill_since: job.args.backfill_since,
            pending_run_id: job.pending_run_id,
            reprocess: job.args.reprocess,
            resumes: job.checkpoints > 0,
            // Only a fetch: what a scheduled fetch stored is processed
            // whether the integration was paused since or not.
            scheduled: job.queue == Queue::Fetch
                && job.args.trigger == Trigger::Schedule
                && job.pending_run_id.is_none(),
        }
    }
}

/// Where a fetch's batches go to be turned into records.
pub struct ProcessQueue {
    pub policy: QueuePolicy,
    /// Wakes this process's process worker when a fetch queued a job.
    pub wake: Arc<Notify>,
}

/// What `policy` makes of `job` after an attempt that ended with `error`.
pub fn job_action(policy: &QueuePolicy, job: &Job, error: Option<&RunError>, now: i64) -> JobAction {
    let decision = decide(policy, job.id, job.attempt, error.map(|e| e.class), error.and_then(|e| e.retry_after));
    let (class, message) = error.map(|e| (e.class.as_str().to_string(), e.message.clone())).unwrap_or_default();
    decision.action(now, class, message)
}

/// The runs a sync in this process made, in order: the one asked for, then,
/// after a fetch, the processing of what it stored when this process could
/// take it at once (else a worker does, later).
#[derive(Debug, Clone, Serialize)]
pub struct SyncRuns(pub Vec<SyncRun>);

impl SyncRuns {
    /// The run that says how the sync went: the first that failed, else the last.
    pub fn outcome(&self) -> &SyncRun {
        let first_failed = self.0.iter().find(|r| r.status != RunStatus::Success);
        first_failed.or(self.0.last()).expect("a sync makes at least one run")
    }
}

/// Everything a run needs: the database, the engine, the loaded plugins,
/// outbound HTTP settings, and who to tell when an integration stops.
pub struct SyncRunner {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub plugins: Arc<PluginRegistry>,
    pub overrides: Arc<UpstreamOverrides>,
    pub http_client: reqwest::Client,
    pub output_limits: OutputLimits,
    pub request_timeout: Duration,
    pub max_response_bytes: u64,
    pub notifier: Arc<Notifier>,
    pub oauth: Arc<OAuth>,
    pub rate_limits: GroupRateLimits,
    /// What the operator decided per plugin: rate limit, hosts, raw credentials.
    pub plugin_settings: BTreeMap<String, PluginSettings>,
    /// Pause an integration after this many failed runs in a row.
    pub pause_after_failures: i64,
    /// Names this process in job leases.
    pub owner: String,
    /// How long a job's lease lasts unless renewed.
    pub job_lease: Duration,
    /// Fetches record to it or replay from it (`inlet plugin test`).
    pub cassette: Option<Arc<Cassette>>,
    /// Runs the host's own tasks.
    pub housekeeping: Housekeeping,
    /// Where fetches queue the processing of what they stored.
    pub process_queue: ProcessQueue,
}

/// A run recorded as started, with everything executing it needs.
pub struct StartedRun {
    pub request: RunRequest,
    pub run_id: i64,
    pub started_at: i64,
    /// Backfill for a first run or a requested re-fetch; else the request's.
    pub trigger: Trigger,
    pub integration: Integration,
    plugin: Option<Arc<LoadedPlugin>>,
    mode: FetchMode,
    /// A backfill that continues from the plugin's progress (see `RunRequest::resumes`).
    resumes_backfill: bool,
    /// The group's credentials and what its operator approved.
    access: GroupAccess,
    /// Batches stored earlier wait to be processed (a crash, or a host from
    /// before the process queue, left them): a fetch queues them too.
    had_pending_batches: bool,
}

impl StartedRun {
    /// What the plugin is told started the run: a resumed backfill is a
    /// `retry`, which by the contract asks it to continue from the progress
    /// it keeps in state.
    fn plugin_trigger(&self) -> Trigger {
        if self.resumes_backfill { Trigger::Retry } else { self.trigger }
    }
}

/// A run that has executed and is not yet recorded as finished.
pub struct ExecutedRun {
    pub started: StartedRun,
    pub outcome: RunOutcome,
    pub error: Option<RunError>,
    /// Its log lines not written while it ran.
    pub logs: LogTail,
    /// The plugin asked that the next run start no earlier than this.
    pub not_before: Option<ScheduleHint>,
}

/// What the fetch half of a run left behind.
#[derive(Default)]
struct FetchResult {
    items_seen: i64,
    not_before: Option<ScheduleHint>,
    batches: i64,
    logs: LogTail,
    progress: Option<(u64, Option<u64>)>,
    error: Option<RunError>,
}

impl SyncRunner {
    /// Record runs as started, in one transaction. Requests whose integration
    /// no longer exists, and scheduled fetches of a paused one, come back
    /// unstarted, with why.
    pub async fn start(&self, requests: Vec<RunRequest>) -> Result<(Vec<StartedRun>, Vec<(RunRequest, NotStarted)>)> {
        let ids: Vec<i64> = requests.iter().map(|r| r.integration_id).collect();
        let mut integrations: BTreeMap<i64, Integration> =
            self.store.integrations_by_id(&ids).await?.into_iter().map(|i| (i.id, i)).collect();
        let groups: BTreeSet<i64> = integrations.values().map(|i| i.group_id).collect();
        let mut access = self.store.group_access(&groups).await?;
        self.approve_unrecorded(&integrations, &mut access).await?;
        let pending = self.store.with_pending_batches(&ids).await?;

        let (mut prepared, mut not_started) = (Vec::new(), Vec::new());
        for request in requests {
            let Some(integration) = integrations.remove(&request.integration_id) else {
                not_started.push((request, NotStarted::Deleted));
                continue;
            };
            if request.scheduled && integration.paused_reason.is_some() {
                not_started.push((request, NotStarted::Paused));
                continue;
            }
            let plugin = self.plugins.get(&integration.plugin_id);
            let mode = self.fetch_mode(plugin.as_deref(), &integration, &request);
            // A first run, or an explicit re-fetch of history, is a backfill.
            let trigger = if matches!(mode, FetchMode::Backfill(_)) { Trigger::Backfill } else { request.trigger };
            prepared.push((request, integration, plugin, mode, trigger, false));
        }
        // A backfill resumes where an earlier attempt of its job checkpointed.
        // A first-run backfill resumes where any earlier run of the
        // integration got to: until one finishes, every run is that first
        // backfill, and state kept means one checkpointed.
        let first_runs: Vec<i64> = (prepared.iter())
            .filter(|(request, _, _, mode, _, _)| {
                matches!(mode, FetchMode::Backfill(_)) && request.backfill_since.is_none()
            })
            .map(|(request, ..)| request.integration_id)
            .collect();
        let first_runs_again = self.store.with_state(&first_runs).await?;
        for (request, _, _, mode, _, resumes) in &mut prepared {
            *resumes = matches!(mode, FetchMode::Backfill(_))
                && (request.resumes || first_runs_again.contains(&request.integration_id));
        }
        let now = self.store.now();
        let starts: Vec<RunStart> = prepared
            .iter()
            .map(|(request, integration, _, _, trigger, _)| RunStart {
                integration_id: request.integration_id,
                queue: request.queue,
                trigger: *trigger,
                attempt: request.attempt,
                job_id: request.lease.as_ref().map(|l| l.job_id),
                pending_run_id: request.pending_run_id,
                // Only a fetch of an integration still due meets its due time
                // at the start (one the scheduler queued has none); a run
                // queued meanwhile is withdrawn at the fetch's end.
                due_at_start: (integration.next_due_at).filter(|_| request.queue == Queue::Fetch).and_then(|read| {
                    let next = self.next_due_after_run(integration, now)?;
                    Some(DueAtStart { read, schedule_version: integration.schedule_version, next })
                }),
            })
            .collect();
        let (run_ids, started_at) = self.store.start_runs(&starts).await?;
        let started = prepared
            .into_iter()
            .zip(run_ids)
            .map(|((request, integration, plugin, mode, trigger, resumes_backfill), run_id)| StartedRun {
                had_pending_batches: pending.contains(&integration.id),
                access: access
                    .get(&integration.group_id)
                    .cloned()
                    .unwrap_or_else(|| GroupAccess { credentials: Ok(Credentials::default()), approved: None }),
                request,
                run_id,
                started_at,
                trigger,
                integration,
                plugin,
                mode,
                resumes_backfill,
            })
            .collect();
        Ok((started, not_started))
    }

    /// Groups from before approvals were recorded approve what their plugin
    /// declares now, once.
    async fn approve_unrecorded(
        &self,
        integrations: &BTreeMap<i64, Integration>,
        access: &mut BTreeMap<i64, GroupAccess>,
    ) -> Result<()> {
        for integration in integrations.values() {
            let Some(group) = access.get_mut(&integration.group_id).filter(|a| a.approved.is_none()) else { continue };
            let Some(plugin) = self.plugins.get(&integration.plugin_id) else { continue };
            let approval = plugin.approval();
            self.store.approve_plugin(integration.group_id, &approval).await?;
            group.approved = Some(approval);
        }
        Ok(())
    }

    /// Fetch (writing checkpoints), or process what is stored (writing
    /// records), as the run's queue says.
    pub async fn execute(&self, run: StartedRun) -> ExecutedRun {
        let integration_id = run.integration.id;
        tracing::debug!(integration = integration_id, run = run.run_id, attempt = run.request.attempt, "run started");
        if let Some(task) = HostTask::of(&run.integration) {
            let fetched = self.run_host_task(task, &run.integration).await;
            return executed(run, RunResult::Fetched(fetched));
        }
        let Some(plugin) = run.plugin.clone() else {
            let error = RunError::new(
                ErrorClass::PluginMissing,
                format!(
                    "plugin {:?} is not loaded; put its .wasm file in the plugins folder",
                    run.integration.plugin_id
                ),
            );
            return executed(run, RunResult::Fetched(FetchResult { error: Some(error), ..FetchResult::default() }));
        };
        if run.request.queue.processes() {
            let lease = run.request.lease.as_ref();
            let processed = match run.request.reprocess {
                Some(scope) => self.reprocess(&plugin, integration_id, scope, lease).await,
                None => self.process_batches(&plugin, integration_id, BatchSelection::Pending, lease).await,
            };
            let processed = processed.unwrap_or_else(|error| Processed {
                error: Some(RunError::new(ErrorClass::Host, format!("{error:#}"))),
                ..Processed::default()
            });
            return executed(run, RunResult::Processed(processed));
        }
        let fetched = self.fetch(&plugin, &run).await.unwrap_or_else(|error| FetchResult {
            error: Some(RunError::new(ErrorClass::Host, format!("{error:#}"))),
            ..FetchResult::default()
        });
        executed(run, RunResult::Fetched(fetched))
    }

    /// What recording `run` as finished writes: its row, what `action` makes
    /// of its job (if it has one), and, unless the job will retry, the
    /// integration's schedule state.
    pub fn completion(&self, run: &ExecutedRun, action: Option<JobAction>) -> RunCompletion {
        let started = &run.started;
        let retrying = matches!(action, Some(JobAction::Retry { .. }));
        // Processing a fetch's batches, or reprocessing, changes records
        // only: the integration's schedule, its last success and its failure
        // streak are about fetching. A delivery's processing is how a push
        // integration syncs: its success counts (see `RunEnd::fetched`).
        let fetch_or_delivery = matches!(started.request.queue, Queue::Fetch | Queue::Webhook);
        let end = (!retrying && fetch_or_delivery).then(|| {
            let scheduled = self.next_due_after_run(&started.integration, started.started_at);
            let (next_due_at, next_due_reason) = held_back(scheduled, run.not_before.as_ref(), self.store.now());
            RunEnd {
                started_at: started.started_at,
                success: run.error.is_none(),
                fetched: started.request.queue == Queue::Fetch,
                next_due_at,
                next_due_reason,
                schedule_version: started.integration.schedule_version,
                pause_after_failures: self.pause_after_failures,
                pause_reason: run
                    .error
                    .as_ref()
                    .filter(|e| e.class == ErrorClass::Unauthorized && !e.group_paused)
                    .map(|_| PauseReason::NeedsReconnect),
            }
        });
        let job = started.request.lease.clone().zip(action);
        // What a fetch stored, even before it failed, is processed: data
        // checkpointed is kept.
        let stored = run.outcome.batches > 0 || started.had_pending_batches;
        let then_process = (started.request.queue == Queue::Fetch && started.plugin.is_some() && stored).then(|| {
            // Its processing says why the fetch ran; a retried fetch's is a
            // first attempt of its own, started by a retry.
            NewJob {
                queue: Queue::Process,
                integration_id: started.integration.id,
                args: JobArgs::new(started.trigger),
                max_attempts: self.process_queue.policy.max_attempts,
                run_at: self.store.now(),
            }
        });
        RunCompletion {
            run_id: started.run_id,
            outcome: run.outcome.clone(),
            logs: run.logs.clone(),
            job,
            integration_id: started.integration.id,
            end,
            then_process,
        }
    }

    /// Take back the jobs whose holder is gone (see [`Store::rescue_job`]).
    /// A job rescued into the failed list (the holder of its last attempt
    /// died or stalled) ends like a run that failed for good: a fetch's
    /// integration's failure streak grows, which may pause it, and its
    /// schedule goes on from that attempt's start; processing is told to
    /// the operator, as when it fails. Returns the jobs rescued, as they were.
    pub async fn rescue_jobs(&self, abandoned: &Abandoned) -> Result<Vec<Job>> {
        let end_of_fetch = |integration: &Integration, started_at: i64| RunEnd {
            started_at,
            success: false,
            fetched: true,
            next_due_at: self.next_due_after_run(integration, started_at),
            next_due_reason: None,
            schedule_version: integration.schedule_version,
            pause_after_failures: self.pause_after_failures,
            pause_reason: None,
        };
        let mut rescued = Vec::new();
        for job in self.store.abandoned_jobs(abandoned).await? {
            match self.store.rescue_job(&job, abandoned, &end_of_fetch).await {
                Ok(Some(outcome)) => {
                    self.tell_rescued(&job, &outcome, abandoned).await;
                    rescued.push(job);
                }
                Ok(None) => {}
                // The others go on, and their notices with them; this one
                // is tried again at the next rescue.
                Err(error) => tracing::error!(job = job.id, error = %format!("{error:#}"), "rescuing a job failed"),
            }
        }
        Ok(rescued)
    }

    /// Tell the operator about a rescued job that failed processing for
    /// good, or whose failure paused its integration.
    async fn tell_rescued(&self, job: &Job, outcome: &Rescued, abandoned: &Abandoned) {
        let told = job.queue.processes() && outcome.failed;
        let (Some(id), true) = (job.integration_id, told || outcome.paused.is_some()) else { return };
        let Ok(Some(integration)) = self.store.integration(id).await else { return };
        let now = self.store.now();
        if told {
            self.notifier.processing_failed(&integration, abandoned.reason(), now);
        }
        if let Some(reason) = outcome.paused {
            let detail = format!("{} runs failed in a row; the last one: {reason}", self.pause_after_failures);
            self.notifier.integration_paused(&integration, reason, &detail, now);
        }
    }

    /// Tell the operator about each integration that a recorded run paused,
    /// or whose processing it sent to the failed list. `completions` are the
    /// runs' records, in the same order.
    pub fn notify_operator(&self, runs: &[ExecutedRun], completions: &[RunCompletion], recorded: &[Recorded]) {
        let now = self.store.now();
        for ((run, completion), recorded) in runs.iter().zip(completions).zip(recorded) {
            let paused = match recorded {
                Recorded::Finished { paused } => paused,
                // Its write applied the job's action; whether it paused the
                // integration is not known.
                Recorded::Earlier => &None,
                Recorded::LeaseLost => continue,
            };
            let last_error = run.error.as_ref().map_or("", |e| e.message.as_str());
            if let Some(reason) = paused {
                let detail = match reason {
                    PauseReason::Error => {
                        format!("{} runs failed in a row; last error: {last_error}", self.pause_after_failures)
                    }
                    _ => last_error.to_string(),
                };
                self.notifier.integration_paused(&run.started.integration, *reason, &detail, now);
            }
            let failed_for_good = matches!(completion.job, Some((_, JobAction::Fail { .. })));
            if failed_for_good && run.started.request.queue.processes() {
                self.notifier.processing_failed(&run.started.integration, last_error, now);
            }
        }
    }

    /// Sync in this process (`inlet sync`, the demo): the run asked for,
    /// then, after a fetch, the processing of what it stored. Each takes its
    /// integration the way a worker does, through a leased running job, so it
    /// never overlaps a queued run of its lane in any process; the first is
    /// refused while one runs. The processing is the job the fetch queued:
    /// if a worker holds the integration's processing, it waits for it.
    pub async fn run(&self, request: &RunRequest) -> Result<SyncRuns> {
        let id = request.integration_id;
        self.store.integration(id).await?.with_context(|| format!("there is no integration with id {id}"))?;
        let args =
            JobArgs { backfill_since: request.backfill_since, reprocess: request.reprocess, trigger: request.trigger };
        let lease_ms = self.job_lease.as_millis() as i64;
        let lease = match self.store.claim_integration(id, request.queue, &args, &self.owner, lease_ms).await? {
            Ok(lease) => lease,
            Err(running) => bail!(
                "integration {id} is already running (job {}, held by {}); wait for that run to finish, or queue \
                 another with `inlet sync {id} --force`",
                running.job_id,
                running.owner.as_deref().unwrap_or("another process")
            ),
        };
        let fetches = request.queue == Queue::Fetch;
        let mut runs = vec![self.run_leased(RunRequest { lease: Some(lease.clone()), ..request.clone() }, None).await?];
        if fetches {
            let claimed = self.store.claim_waiting_job(id, Queue::Process, &self.owner, lease_ms).await?;
            if let Some(job) = claimed {
                let lease = JobLease::of(&job, &self.owner);
                runs.push(self.run_leased(RunRequest::for_job(&job, id, lease), Some(&job)).await?);
            }
        }
        Ok(SyncRuns(runs))
    }

    /// Start, execute and record the run of `request`, under the lease it
    /// carries. The job is `queued`'s, which its queue's policy retries or
    /// fails as a worker's would, or else the run's own of one attempt: what
    /// fails is reported, not retried. If the run cannot be recorded, a
    /// queued job is handed back and the run's own is done with: left
    /// running, either would hold the integration until its lease ran out.
    async fn run_leased(&self, request: RunRequest, queued: Option<&Job>) -> Result<SyncRun> {
        let lease = request.lease.clone().expect("run_leased is called with a lease");
        let (id, queue) = (request.integration_id, request.queue);
        let mut run_id = None;
        let outcome = async {
            let (mut started, _not_started) = self.start(vec![request]).await?;
            let run = started.pop().with_context(|| format!("there is no integration with id {id}"))?;
            run_id = Some(run.run_id);
            self.execute_and_record(run, &lease, queued).await
        }
        .await;
        if let Err(failed) = &outcome {
            let mut let_go = match queued {
                Some(_) => self.store.release_jobs(&lease.owner, &[(lease.job_id, lease.claim)]).await.map(|_| ()),
                None => self.let_go_unrecorded(&lease, id, queue).await,
            };
            // Left open, the run would show as running for ever: nothing
            // else closes a run whose job is gone or queued again. (One
            // recorded after all, or closed by the rescue, stays as it is.)
            if let Some(run_id) = run_id {
                let message = format!("its end could not be recorded: {failed:#}");
                let closed = self.store.abandon_sync_run(run_id, RunStatus::Failed, ErrorClass::Host, &message).await;
                let_go = let_go.and(closed);
            }
            if let Err(error) = let_go {
                tracing::warn!(error = %format!("{error:#}"), "letting the run's job go failed");
            }
        }
        outcome
    }

    /// Done with the run's own job, its run unrecorded. A fetch owes its
    /// integration the due time it may have met as it started (see
    /// `Store::start_runs`): due now, unless its schedule is manual.
    async fn let_go_unrecorded(&self, lease: &JobLease, id: i64, queue: Queue) -> Result<()> {
        let integration = self.store.integration(id).await?;
        let scheduled = integration.is_some_and(|i| self.effective_schedule(&i) != Schedule::Manual);
        if queue == Queue::Fetch && scheduled {
            self.store.end_unrecorded_fetch(lease, id, self.store.now()).await?;
        } else {
            self.store.complete_job(lease).await?;
        }
        Ok(())
    }

    async fn execute_and_record(&self, run: StartedRun, lease: &JobLease, queued: Option<&Job>) -> Result<SyncRun> {
        let (id, run_id) = (run.integration.id, run.run_id);
        let executed = tokio::select! {
            executed = self.execute(run) => executed,
            () = self.keep_lease(lease) => bail!(
                "integration {id}: run {run_id} lost its lease (this process stalled past {}s and the job was \
                 rescued); it was stopped",
                self.job_lease.as_secs()
            ),
        };
        let action = match queued {
            Some(job) => job_action(&self.process_queue.policy, job, executed.error.as_ref(), self.store.now()),
            None => JobAction::Complete,
        };
        let completion = self.completion(&executed, Some(action));
        let recorded = self.store.complete_runs(std::slice::from_ref(&completion)).await?;
        if recorded[0] == Recorded::LeaseLost {
            bail!("integration {id}: run {run_id} lost its lease before it was recorded; its result was dropped");
        }
        self.notify_operator(std::slice::from_ref(&executed), std::slice::from_ref(&completion), &recorded);
        self.store.sync_run(completion.run_id).await?.context("the sync run row vanished")
    }

    /// Renew `lease` until it is found lost; then return.
    async fn keep_lease(&self, lease: &JobLease) {
        let lease_ms = self.job_lease.as_millis() as i64;
        loop {
            tokio::time::sleep(self.job_lease / 3).await;
            match self.store.renew_leases(&lease.owner, &[(lease.job_id, lease.claim)], lease_ms).await {
                Ok(renewed) if renewed.is_empty() => return,
                Ok(_) => {}
                Err(error) => tracing::error!(error = %format!("{error:#}"), "renewing the run's lease failed"),
            }
        }
    }

    /// One of the host's own tasks, run here: what it did goes in the run's log.
    async fn run_host_task(&self, task: HostTask, integration: &Integration) -> FetchResult {
        match self.housekeeping.run(task, &self.effective_schedule(integration)).await {
            Ok((message, touched)) => FetchResult {
                items_seen: touched,
                logs: LogTail {
                    after: 0,
                    lines: vec![LogLine { at: self.store.now(), level: "info".into(), message }],
                },
                ..FetchResult::default()
            },
            Err(error) => FetchResult {
                error: Some(RunError::new(ErrorClass::Host, format!("{}: {error:#}", task.name()))),
                ..FetchResult::default()
            },
        }
    }

    /// The schedule an integration follows: its own, else its instance type's
    /// default, else hourly when the plugin is not loaded.
    pub fn effective_schedule(&self, integration: &Integration) -> Schedule {
        match HostTask::of(integration) {
            Some(task) if integration.schedule.is_none() => task.default_schedule(),
            _ => self.plugins.schedule_of(integration),
        }
    }

    /// When the next run of `integration` is due after a run that started at
    /// `started_at` (`None` for manual schedules).
    pub fn next_due_after_run(&self, integration: &Integration, started_at: i64) -> Option<i64> {
        let compiled = self.effective_schedule(integration).compile().ok()?;
        let now = to_datetime(self.store.now());
        compiled.next_due(Some(to_datetime(started_at)), now).map(|t| t.timestamp_millis())
    }

    /// A backfill when asked for, and for an integration's first run: from the
    /// config's `since` (RFC 3339) or the instance type's default depth.
    fn fetch_mode(&self, plugin: Option<&LoadedPlugin>, integration: &Integration, request: &RunRequest) -> FetchMode {
        if let Some(since) = request.backfill_since {
            return FetchMode::Backfill(since);
        }
        if integration.last_fetched_at.is_some() || request.queue.processes() {
            return FetchMode::Incremental;
        }
        let configured = serde_json::from_str::<serde_json::Value>(&integration.config)
            .ok()
            .and_then(|c| c["since"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()))
            .map(|t| t.timestamp_millis());
        let default_days =
            plugin.and_then(|p| p.instance_type(&integration.instance_type)).map_or(30, |t| t.default_backfill_days);
        FetchMode::Backfill(configured.unwrap_or_else(|| self.store.now() - i64::from(default_days) * 86_400_000))
    }

    async fn fetch(&self, plugin: &LoadedPlugin, run: &StartedRun) -> Result<FetchResult> {
        let integration = &run.integration;
        let run_id = run.run_id;
        let Some(instance_type) = plugin.instance_type(&integration.instance_type) else {
            return Ok(FetchResult {
                error: Some(RunError::new(
                    ErrorClass::InvalidConfig,
                    format!("plugin {:?} has no instance type {:?}", plugin.id(), integration.instance_type),
                )),
                ..FetchResult::default()
            });
        };
        let needs_raw = plugin.manifest.needs_raw_credentials;
        if needs_raw && !self.plugin_settings.get(plugin.id()).is_some_and(|p| p.approve_raw_credentials) {
            let message = format!(
                "plugin {0:?} asks to read the group's credentials itself; an operator must approve that with \
                 approve_raw_credentials = true under [plugins.{0}] in inlet.toml",
                plugin.id()
            );
            return Ok(FetchResult {
                error: Some(RunError::new(ErrorClass::InvalidConfig, message)),
                ..FetchResult::default()
            });
        }
        let mut credentials = match &run.access.credentials {
            Ok(credentials) => credentials.clone(),
            Err(unreadable) => return Ok(self.unreadable_credentials(integration, unreadable).await),
        };
        if refresh::expiring(&credentials, self.store.now()) {
            match self.oauth.fresh_credentials(integration.group_id, &credentials, false).await {
                Ok(renewed) => credentials = renewed,
                Err(error) => return Ok(FetchResult { error: Some(refresh_error(error)), ..FetchResult::default() }),
            }
        }
        let raw_credentials = needs_raw.then(|| credentials.clone());
        let approved = run.access.approved.as_ref();
        let (allowed_hosts, unapproved) =
            self.hosts_for_group(plugin, integration.group_id, approved, &instance_type.hosts);
        let scope = FetchScope {
            store: self.store.clone(),
            integration_id: integration.id,
            sync_run_id: run_id,
            lease: run.request.lease.clone(),
            http: OutboundHttp {
                client: self.http_client.clone(),
                declared_auth: Auth::declared_by(&plugin.manifest.auth),
                allowed_hosts,
                unapproved,
                overrides: Arc::clone(&self.overrides),
                credentials,
                timeout: self.request_timeout,
                max_response_bytes: self.max_response_bytes,
                tokens: Some(GroupTokens { refresh: self.oauth.clone(), group_id: integration.group_id }),
                rate_limit: self
                    .rate_limit(plugin)
                    .map(|limit| self.rate_limits.for_group(integration.group_id, limit)),
                quotas: (!plugin.quotas.is_empty()).then(|| GroupQuotas {
                    store: self.store.clone(),
                    group_id: integration.group_id,
                    quotas: Arc::clone(&plugin.quotas),
                }),
                // Requests end a twentieth of the call's time before the call
                // does, so the plugin can still report what they ran into.
                deadline: tokio::time::Instant::now() + self.runtime.limits.fetch_timeout * 19 / 20,
                clock: self.store.clock(),
                exhausted_until: None,
                group_needs_reconnect: false,
                refreshed_after_401: false,
                cassette: self.cassette.clone(),
            },
            raw_credentials,
            records_group: (instance_type.kind == InstanceKind::Task).then_some(integration.group_id),
            pending_batches: Vec::new(),
            pending_bytes: 0,
            pending_state: Default::default(),
            committed_batches: 0,
            limits: self.output_limits,
        };
        let request = FetchRequest {
            instance_type: integration.instance_type.clone(),
            config: integration.config.clone(),
            mode: run.mode,
            trigger: run.plugin_trigger(),
        };
        let (result, mut call) = self.runtime.fetch(&plugin.pre, plugin.id(), scope, request).await;
        let mut fetched = FetchResult::default();
        match result {
            Ok(Ok(summary)) => {
                fetched.items_seen = summary.items_seen as i64;
                fetched.not_before = summary.not_before;
                // The end of a successful fetch is an implicit checkpoint.
                let scope = call.fetch.as_mut().expect("fetch scope outlives the call");
                if let Err(error) = batches::commit(scope).await {
                    fetched.error =
                        Some(RunError::new(ErrorClass::Host, format!("final checkpoint failed: {error:#}")));
                }
            }
            Ok(Err(error)) => fetched.error = Some(plugin_error(error)),
            Err(error) => fetched.error = Some(call_error(error)),
        }
        let group_paused = call.fetch.as_ref().is_some_and(|s| s.http.group_needs_reconnect);
        if let Some(error) = fetched.error.as_mut().filter(|e| e.class == ErrorClass::Unauthorized) {
            error.group_paused = group_paused;
            // The plugin says the connection itself is gone (a bank agreement
            // expired): the whole group needs reconnecting, when it has a way
            // to be (a connect flow); an API key's integration pauses alone.
            let reconnectable = matches!(plugin.manifest.auth, AuthKind::OAuth2(_) | AuthKind::SecretExchange(_));
            if !group_paused
                && reconnectable
                && let Some(scope) = call.fetch.as_ref()
            {
                let version = scope.http.credentials.version();
                error.group_paused = self.pause_group(integration.group_id, version, &error.message).await;
            }
        }
        fetched.batches = call.fetch.as_ref().map_or(0, |s| s.committed_batches);
        // Saved with the finished run.
        fetched.progress = call.logs.progress_unsaved;
        fetched.logs = call.logs.into_tail();
        Ok(fetched)
    }

    /// A run whose group's credentials cannot be opened fails alone: the
    /// group is marked needs-reconnect (its integrations pause, the operator
    /// is told), and connecting it again replaces what cannot be read.
    async fn unreadable_credentials(&self, integration: &Integration, unreadable: &Unreadable) -> FetchResult {
        let group = integration.group_id;
        let message = format!(
            "the credentials of group {group} cannot be read ({}): connect the group again, or restore the secret \
             key they were sealed with",
            unreadable.reason
        );
        let group_paused = self.pause_group(group, unreadable.version, &message).await;
        let error = RunError { group_paused, ..RunError::new(ErrorClass::Unauthorized, message) };
        FetchResult { error: Some(error), ..FetchResult::default() }
    }

    /// Mark the group needs-reconnect for `reason` and tell the operator of
    /// each integration that paused; false when its credentials changed since
    /// `version` was read (a reconnect won) or marking failed.
    async fn pause_group(&self, group: i64, version: i64, reason: &str) -> bool {
        match self.store.mark_group_needs_reconnect(group, version, reason).await {
            Ok(Some(paused)) => {
                for paused in &paused {
                    self.notifier.integration_paused(paused, PauseReason::NeedsReconnect, reason, self.store.now());
                }
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::error!(group, error = %format!("{error:#}"), "marking the group failed");
                false
            }
        }
    }

    /// The hosts a run may reach: those the plugin declares, the operator's
    /// settings allow, and the group was approved for. Hosts a newer plugin
    /// file added are held back (and named in its refusals) until the
    /// operator approves them for the group.
    fn hosts_for_group(
        &self,
        plugin: &LoadedPlugin,
        group_id: i64,
        approved: Option<&ApprovedPlugin>,
        declared: &[String],
    ) -> (Vec<String>, Option<UnapprovedHosts>) {
        let allowed = self.allowed_hosts(plugin.id(), declared);
        let Some(approved) = approved else { return (allowed, None) };
        let (allowed, held): (Vec<String>, Vec<String>) = allowed.into_iter().partition(|h| approved.hosts.contains(h));
        let unapproved = (!held.is_empty()).then_some(UnapprovedHosts { hosts: held, group_id });
        (allowed, unapproved)
    }

    /// The declared hosts the operator approved: config may narrow the
    /// manifest's list, never widen it.
    pub fn allowed_hosts(&self, plugin_id: &str, declared: &[String]) -> Vec<String> {
        PluginSettings::approved_hosts(self.plugin_settings.get(plugin_id), declared)
    }

    /// The ceiling on a plugin's requests per group: the operator's, else the manifest's.
    fn rate_limit(&self, plugin: &LoadedPlugin) -> Option<RateLimit> {
        self.plugin_settings.get(plugin.id()).and_then(|p| p.rate_limit).or(plugin.manifest.rate_limit)
    }

    /// The current plugin over the kept batches of `scope`, records updated
    /// in place; then whatever is pending, which a reprocess covers too,
    /// unless a passing failure stopped the first pass.
    async fn reprocess(
        &self,
        plugin: &LoadedPlugin,
        integration_id: i64,
        scope: ReprocessScope,
        lease: Option<&JobLease>,
    ) -> Result<Processed> {
        let kept = BatchSelection::Kept { since: scope.since };
        let mut processed = self.process_batches(plugin, integration_id, kept, lease).await?;
        if processed.error.as_ref().is_some_and(|e| e.class == ErrorClass::Transient) {
            return Ok(processed);
        }
        let pending = self.process_batches(plugin, integration_id, BatchSelection::Pending, lease).await?;
        processed.records.add(pending.records);
        processed.batches += pending.batches;
        processed.error = processed.error.or(pending.error);
        Ok(processed)
    }

    /// Turn the integration's batches of `which` into records (pending ones,
    /// or kept ones again for a reprocess), a page at a time so a large
    /// backfill is never in memory at once. A batch that fails for good is
    /// marked failed, kept for an operator to retry, and the pass goes on.
    /// One that fails for a passing reason (deadline under load, no free
    /// instance, the plugin's `transient`) is left pending, with the attempt
    /// counted unless no instance was free, and ends the pass: the run fails
    /// as transient, and its retry processes it and those after it.
    async fn process_batches(
        &self,
        plugin: &LoadedPlugin,
        integration_id: i64,
        which: BatchSelection,
        lease: Option<&JobLease>,
    ) -> Result<Processed> {
        let mut processed = Processed::default();
        let mut after = 0;
        loop {
            let page = self.store.batches(integration_id, which, after, PROCESS_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for batch in page {
                let (id, kind) = (batch.id, batch.kind.clone());
                let raw = RawBatch { kind: batch.kind, payload: batch.payload };
                let error = match self.runtime.process(&plugin.pre, plugin.id(), raw).await {
                    // Records the database would refuse, or that no reader
                    // could parse back, fail their batch for good, as the
                    // plugin's own error would: they would fail every retry.
                    Ok(Ok(records)) => match records.storable() {
                        Ok(()) => {
                            let stored = self.store.store_records(integration_id, id, &records, lease).await?;
                            processed.records.add(stored);
                            processed.batches += 1;
                            continue;
                        }
                        Err(problem) => Ok(PluginError::Permanent(format!("its records cannot be stored: {problem}"))),
                    },
                    Ok(Err(error)) => Ok(error),
                    Err(error) => Err(error),
                };
                // No free instance says nothing about the batch: it keeps its
                // attempts. A deadline or the plugin's `transient` counts one.
                // Either way the pass stops: the rest would fare no better now,
                // and later batches may build on this one.
                let (busy, passing) = match &error {
                    Ok(error) => (false, matches!(error, PluginError::Transient(_) | PluginError::RateLimited { .. })),
                    Err(error) => {
                        (matches!(error, CallError::Busy { .. }), matches!(error, CallError::Deadline { .. }))
                    }
                };
                let error = match error {
                    Ok(error) => plugin_error(error),
                    Err(error) => call_error(error),
                };
                if busy {
                    let message = format!("batch {id} ({kind}) and those after it stay pending: {}", error.message);
                    processed.error = Some(RunError { class: ErrorClass::Transient, message, ..error });
                    return Ok(processed);
                }
                let detail = format!("{}: {}", error.class.as_str(), error.message);
                if passing {
                    let error = match self.store.defer_batch(id, &detail, MAX_PROCESS_ATTEMPTS, lease).await? {
                        BatchFate::Pending { attempts } => RunError {
                            class: ErrorClass::Transient,
                            message: format!(
                                "batch {id} ({kind}) could not be processed yet (attempt {attempts} of \
                                 {MAX_PROCESS_ATTEMPTS}; it and those after it stay pending and are retried): {}",
                                error.message
                            ),
                            ..error
                        },
                        BatchFate::Failed => failed_batch(id, &kind, error),
                    };
                    // Transient wins over an earlier batch's permanent failure
                    // (kept in the failed list): the run must be retried.
                    processed.error = Some(error);
                    return Ok(processed);
                }
                self.store.mark_batch_failed(id, &detail, lease).await?;
                processed.error.get_or_insert(failed_batch(id, &kind, error));
            }
        }
        Ok(processed)
    }
}

/// What a processing pass did.
#[derive(Default)]
struct Processed {
    records: RecordCounts,
    /// Batches turned into records.
    batches: i64,
    /// The first batch's failure; a passing one ends the pass.
    error: Option<RunError>,
}

/// Pending batches read at once while processing.
const PROCESS_PAGE: i64 = 16;

/// A batch that keeps failing for passing reasons is marked failed after
/// this many attempts.
pub const MAX_PROCESS_ATTEMPTS: i64 = 5;

/// The error of a run whose batch failed for good.
fn failed_batch(id: i64, kind: &str, error: RunError) -> RunError {
    RunError {
        message: format!(
            "batch {id} ({kind}) failed and is kept (inlet batches retry {id} processes it again): {}",
            error.message
        ),
        ..error
    }
}

/// What a run did: its half of a sync.
enum RunResult {
    Fetched(FetchResult),
    Processed(Processed),
}

/// Assemble the outcome of an executed run.
fn executed(run: StartedRun, result: RunResult) -> ExecutedRun {
    // A processing run has what a fetch has (log lines, a hint) as none.
    let (fetched, batches, records, error) = match result {
        RunResult::Fetched(mut fetched) => {
            let error = fetched.error.take();
            let batches = fetched.batches;
            (fetched, batches, RecordCounts::default(), error)
        }
        RunResult::Processed(processed) => {
            (FetchResult::default(), processed.batches, processed.records, processed.error)
        }
    };
    match &error {
        None => tracing::debug!(integration = run.integration.id, run = run.run_id, ?records, "run succeeded"),
        Some(e) => tracing::warn!(
            integration = run.integration.id,
            run = run.run_id,
            class = e.class.as_str(),
            message = %e.message,
            "run failed"
        ),
    }
    let outcome = RunOutcome {
        status: if error.is_none() { RunStatus::Success } else { RunStatus::Failed },
        batches,
        items_seen: fetched.items_seen,
        records,
        error: error.as_ref().map(|e| (e.class, e.message.clone())),
        progress: fetched.progress,
    };
    ExecutedRun { started: run, outcome, error, logs: fetched.logs, not_before: fetched.not_before }
}

/// How far ahead a plugin's schedule hint may push the next run.
const MAX_HINT_MS: i64 = 7 * 86_400_000;

/// The next run's time, held back by the plugin's hint when that asks for
/// later than the schedule does (at most [`MAX_HINT_MS`] from now, and never
/// earlier than the schedule), with why; a manual schedule stays manual.
fn held_back(scheduled: Option<i64>, hint: Option<&ScheduleHint>, now: i64) -> (Option<i64>, Option<String>) {
    let (Some(at), Some(hint)) = (scheduled, hint) else { return (scheduled, None) };
    let held = hint.at.min(now + MAX_HINT_MS);
    if held <= at {
        return (scheduled, None);
    }
    let reason: String = hint.reason.chars().take(MAX_HINT_REASON_CHARS).collect();
    let reason = if reason.trim().is_empty() { "the plugin asked to wait".to_string() } else { reason };
    (Some(held), Some(reason))
}

/// A hint's reason is the plugin's text, shown on the page: kept short.
const MAX_HINT_REASON_CHARS: usize = 200;

pub fn to_datetime(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_only_delays_and_never_past_a_week() {
        let now = 1_800_000_000_000;
        let hint = |at: i64, reason: &str| ScheduleHint { at, reason: reason.into() };
        let scheduled = Some(now + 60_000);
        assert_eq!(held_back(scheduled, None, now), (scheduled, None));
        assert_eq!(held_back(scheduled, Some(&hint(now + 1_000, "sooner")), now), (scheduled, None), "never earlier");
        assert_eq!(held_back(None, Some(&hint(now + 1_000, "manual")), now), (None, None), "manual stays manual");
        let (at, why) = held_back(scheduled, Some(&hint(now + 3_600_000, "poll interval")), now);
        assert_eq!((at, why.as_deref()), (Some(now + 3_600_000), Some("poll interval")));
        let (at, why) = held_back(scheduled, Some(&hint(i64::MAX, " ")), now);
        assert_eq!((at, why.as_deref()), (Some(now + MAX_HINT_MS), Some("the plugin asked to wait")));
        // The week's cap never pulls a run the schedule puts later forward.
        let monthly = Some(now + 30 * 86_400_000);
        assert_eq!(held_back(monthly, Some(&hint(now + 60 * 86_400_000, "later")), now), (monthly, None));
    }
}
