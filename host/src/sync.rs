//! One sync run of one integration: fetch (batches and state committed at the
//! plugin's checkpoints), then process every stored batch into records, then
//! record the run with its counts, error and log lines.

use crate::capabilities::batches;
use crate::capabilities::http::{OutboundHttp, UpstreamOverrides};
use crate::notify::Notifier;
use crate::runtime::context::{FetchScope, OutputLimits, PluginCtx};
use crate::runtime::registry::{LoadedPlugin, PluginRegistry};
use crate::runtime::wit::{FetchMode, FetchRequest, PluginError, RawBatch, Trigger};
use crate::runtime::{CallError, Runtime};
use crate::schedule::Schedule;
use crate::store::Store;
use crate::store::integrations::{Integration, RunEnd};
use crate::store::records::RecordCounts;
use crate::store::sync_runs::{LogLine, RunOutcome, RunStatus, SyncRun};
use anyhow::{Context, Result, anyhow};
use std::sync::Arc;
use std::time::Duration;

/// Why a run failed, as stored in `sync_runs.error_class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Transient,
    RateLimited,
    Unauthorized,
    InvalidConfig,
    Permanent,
    /// The plugin crashed (panic, trap) or ran past its deadline.
    Trap,
    /// The integration's plugin is not loaded.
    PluginMissing,
    /// The host failed around the plugin (database, I/O).
    Host,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::RateLimited => "rate-limited",
            ErrorClass::Unauthorized => "unauthorized",
            ErrorClass::InvalidConfig => "invalid-config",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Trap => "trap",
            ErrorClass::PluginMissing => "plugin-missing",
            ErrorClass::Host => "host",
        }
    }
}

/// Why a run failed, with what the queue needs to decide about a retry.
#[derive(Debug, Clone)]
pub struct RunError {
    pub class: ErrorClass,
    pub message: String,
    /// The upstream asked to wait this long.
    pub retry_after: Option<Duration>,
}

impl RunError {
    fn new(class: ErrorClass, message: impl Into<String>) -> RunError {
        RunError { class, message: message.into(), retry_after: None }
    }
}

fn plugin_error(error: PluginError) -> RunError {
    match error {
        PluginError::Transient(m) => RunError::new(ErrorClass::Transient, m),
        PluginError::RateLimited(r) => RunError {
            class: ErrorClass::RateLimited,
            message: format!("retry after {}s: {}", r.retry_after_seconds, r.message),
            retry_after: Some(Duration::from_secs(r.retry_after_seconds.into())),
        },
        PluginError::Unauthorized(m) => RunError::new(ErrorClass::Unauthorized, m),
        PluginError::InvalidConfig(m) => RunError::new(ErrorClass::InvalidConfig, m),
        PluginError::Permanent(m) => RunError::new(ErrorClass::Permanent, m),
    }
}

fn call_error(error: CallError) -> RunError {
    RunError::new(ErrorClass::Trap, error.to_string())
}

/// One run to make.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub integration_id: i64,
    pub trigger: Trigger,
    /// 1 for the first attempt of a job.
    pub attempt: i64,
    /// The queued job this run belongs to, if any.
    pub job_id: Option<i64>,
    /// Fetch history from this time (ms), ignoring cursors.
    pub backfill_since: Option<i64>,
}

impl RunRequest {
    pub fn manual(integration_id: i64) -> RunRequest {
        RunRequest { integration_id, trigger: Trigger::Manual, attempt: 1, job_id: None, backfill_since: None }
    }
}

/// A finished run: its stored row, and its error for the queue's decision.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    pub run: SyncRun,
    pub started_at: i64,
    pub error: Option<RunError>,
}

pub fn trigger_name(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Schedule => "schedule",
        Trigger::Manual => "manual",
        Trigger::Webhook => "webhook",
        Trigger::Retry => "retry",
        Trigger::Backfill => "backfill",
    }
}

/// Everything a run needs: the database, the engine, the loaded plugins and
/// the outbound HTTP settings.
pub struct SyncRunner {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub plugins: Arc<PluginRegistry>,
    pub overrides: Arc<UpstreamOverrides>,
    pub http_client: reqwest::Client,
    pub output_limits: OutputLimits,
    pub request_timeout: Duration,
    pub max_response_bytes: u64,
}

/// What the fetch half of a run left behind.
#[derive(Default)]
struct FetchResult {
    items_seen: i64,
    batches: i64,
    logs: Vec<LogLine>,
    error: Option<RunError>,
}

impl SyncRunner {
    /// Make one run now: record it, fetch, process, and store the outcome.
    pub async fn run(&self, request: &RunRequest) -> Result<SyncOutcome> {
        let id = request.integration_id;
        let integration =
            self.store.integration(id).await?.ok_or_else(|| anyhow!("there is no integration with id {id}"))?;
        let plugin = self.plugins.get(&integration.plugin_id);
        let mode = plugin.as_ref().map(|p| self.fetch_mode(p, &integration, request));
        // A first run, or an explicit re-fetch of history, is a backfill.
        let trigger = match mode {
            Some(FetchMode::Backfill(_)) => Trigger::Backfill,
            _ => request.trigger,
        };
        let run_id = self.store.start_sync_run(id, trigger_name(trigger), request.attempt).await?;
        let started_at = self.store.now();
        self.store.record_run_started(id, started_at).await?;
        if let Some(job_id) = request.job_id {
            self.store.set_job_sync_run(job_id, run_id).await?;
        }
        tracing::info!(integration = id, plugin = %integration.plugin_id, run = run_id, attempt = request.attempt, "sync started");

        let (outcome, error, logs) = match (plugin, mode) {
            (Some(plugin), Some(mode)) => self.run_plugin(&plugin, &integration, run_id, trigger, mode).await,
            _ => failed(RunError::new(
                ErrorClass::PluginMissing,
                format!("plugin {:?} is not loaded; put its .wasm file in the plugins folder", integration.plugin_id),
            )),
        };
        self.store.append_sync_run_logs(run_id, &logs).await?;
        self.store.finish_sync_run(run_id, &outcome).await?;
        match &error {
            None => tracing::info!(integration = id, run = run_id, records = ?outcome.records, "sync succeeded"),
            Some(e) => {
                tracing::warn!(integration = id, run = run_id, class = e.class.as_str(), message = %e.message, "sync failed")
            }
        }
        let run = self.store.sync_run(run_id).await?.context("the sync run row vanished")?;
        Ok(SyncOutcome { run, started_at, error })
    }

    /// The schedule an integration follows: its own, else its instance type's
    /// default, else hourly when the plugin is not loaded.
    pub fn effective_schedule(&self, integration: &Integration) -> Schedule {
        if let Some(schedule) = &integration.schedule {
            return schedule.clone();
        }
        self.plugins
            .get(&integration.plugin_id)
            .and_then(|p| {
                p.instance_type(&integration.instance_type).map(|t| Schedule::from_manifest(&t.default_schedule))
            })
            .unwrap_or(Schedule::Interval { seconds: crate::schedule::DEFAULT_INTERVAL_SECONDS })
    }

    /// When the next run of `integration` is due after a run that started at
    /// `started_at` (`None` for manual schedules).
    pub fn next_due_after_run(&self, integration: &Integration, started_at: i64) -> Option<i64> {
        let compiled = self.effective_schedule(integration).compile().ok()?;
        let now = to_datetime(self.store.now());
        compiled.next_due(Some(to_datetime(started_at)), now).map(|t| t.timestamp_millis())
    }

    /// After a run's last attempt: record success or failure, compute when the
    /// next run is due, and pause the integration (and tell the operator) when
    /// its credentials were refused or it failed `pause_after` times in a row.
    pub async fn record_run_end(
        &self,
        integration_id: i64,
        started_at: i64,
        error: Option<&RunError>,
        pause_after: i64,
        notifier: &Notifier,
    ) -> Result<()> {
        let Some(integration) = self.store.integration(integration_id).await? else { return Ok(()) };
        let end = RunEnd {
            started_at,
            success: error.is_none(),
            next_due_at: self.next_due_after_run(&integration, started_at),
            pause_after_failures: pause_after,
        };
        let paused_for_errors = self.store.record_run_finished(integration_id, &end).await?;
        let now = self.store.now();
        match error {
            Some(e) if e.class == ErrorClass::Unauthorized => {
                self.store.set_integration_paused(integration_id, Some("needs-reconnect"), None).await?;
                notifier.integration_paused(&integration, "needs-reconnect", &e.message, now).await;
            }
            Some(e) if paused_for_errors => {
                let detail = format!("{pause_after} runs failed in a row; last error: {}", e.message);
                notifier.integration_paused(&integration, "error", &detail, now).await;
            }
            _ => {}
        }
        Ok(())
    }

    async fn run_plugin(
        &self,
        plugin: &LoadedPlugin,
        integration: &Integration,
        run_id: i64,
        trigger: Trigger,
        mode: FetchMode,
    ) -> (RunOutcome, Option<RunError>, Vec<LogLine>) {
        let fetched = match self.fetch(plugin, integration, run_id, trigger, mode).await {
            Ok(fetched) => fetched,
            Err(error) => return failed(RunError::new(ErrorClass::Host, format!("{error:#}"))),
        };
        // Process whatever is stored, including batches committed before a
        // failure (or left by an earlier crashed run): checkpointed data is kept.
        let (records, process_error) = match self.process_pending(plugin, integration.id).await {
            Ok(processed) => processed,
            Err(error) => (RecordCounts::default(), Some(RunError::new(ErrorClass::Host, format!("{error:#}")))),
        };
        let error = fetched.error.or(process_error);
        let outcome = RunOutcome {
            status: if error.is_none() { RunStatus::Success } else { RunStatus::Failed },
            batches: fetched.batches,
            items_seen: fetched.items_seen,
            records,
            error: error.as_ref().map(|e| (e.class.as_str().to_string(), e.message.clone())),
        };
        (outcome, error, fetched.logs)
    }

    /// A backfill when asked for, and for an integration's first run: from the
    /// config's `since` (RFC 3339) or the instance type's default depth.
    fn fetch_mode(&self, plugin: &LoadedPlugin, integration: &Integration, request: &RunRequest) -> FetchMode {
        if let Some(since) = request.backfill_since {
            return FetchMode::Backfill(since);
        }
        if integration.last_success_at.is_some() {
            return FetchMode::Incremental;
        }
        let configured = serde_json::from_str::<serde_json::Value>(&integration.config)
            .ok()
            .and_then(|c| c["since"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()))
            .map(|t| t.timestamp_millis());
        let default_days = plugin.instance_type(&integration.instance_type).map_or(30, |t| t.default_backfill_days);
        FetchMode::Backfill(configured.unwrap_or_else(|| self.store.now() - i64::from(default_days) * 86_400_000))
    }

    async fn fetch(
        &self,
        plugin: &LoadedPlugin,
        integration: &Integration,
        run_id: i64,
        trigger: Trigger,
        mode: FetchMode,
    ) -> Result<FetchResult> {
        let Some(instance_type) = plugin.instance_type(&integration.instance_type) else {
            return Ok(FetchResult {
                error: Some(RunError::new(
                    ErrorClass::InvalidConfig,
                    format!("plugin {:?} has no instance type {:?}", plugin.id(), integration.instance_type),
                )),
                ..FetchResult::default()
            });
        };
        let scope = FetchScope {
            store: self.store.clone(),
            integration_id: integration.id,
            sync_run_id: run_id,
            http: OutboundHttp {
                client: self.http_client.clone(),
                allowed_hosts: instance_type.hosts.clone(),
                overrides: Arc::clone(&self.overrides),
                credentials: self.store.group_credentials(integration.group_id).await?,
                timeout: self.request_timeout,
                max_response_bytes: self.max_response_bytes,
            },
            pending_batches: Vec::new(),
            pending_bytes: 0,
            pending_state: Default::default(),
            committed_batches: 0,
            limits: self.output_limits,
        };
        let request = FetchRequest {
            instance_type: integration.instance_type.clone(),
            config: integration.config.clone(),
            mode,
            trigger,
        };
        let (result, mut ctx) = self.runtime.fetch(&plugin.pre, plugin.id(), scope, &request).await;
        let mut fetched = FetchResult::default();
        match result {
            Ok(Ok(summary)) => {
                fetched.items_seen = summary.items_seen as i64;
                // The end of a successful fetch is an implicit checkpoint.
                let scope = ctx.fetch.as_mut().expect("fetch scope outlives the call");
                if let Err(error) = batches::commit(scope).await {
                    fetched.error =
                        Some(RunError::new(ErrorClass::Host, format!("final checkpoint failed: {error:#}")));
                }
            }
            Ok(Err(error)) => fetched.error = Some(plugin_error(error)),
            Err(error) => fetched.error = Some(call_error(error)),
        }
        fetched.batches = ctx.fetch.as_ref().map_or(0, |s| s.committed_batches);
        if let Some((done, total)) = ctx.logs.progress_unsaved {
            self.store.set_sync_run_progress(run_id, done, total).await?;
        }
        fetched.logs = call_log(ctx);
        Ok(fetched)
    }

    /// Turn every pending batch of the integration into records. A batch that
    /// fails is marked failed with its error; the others still go through.
    async fn process_pending(
        &self,
        plugin: &LoadedPlugin,
        integration_id: i64,
    ) -> Result<(RecordCounts, Option<RunError>)> {
        let mut counts = RecordCounts::default();
        let mut first_error = None;
        for batch in self.store.pending_batches(integration_id).await? {
            let raw = RawBatch { kind: batch.kind, payload: batch.payload };
            let error = match self.runtime.process(&plugin.pre, plugin.id(), &raw).await {
                Ok(Ok(records)) => {
                    counts.add(self.store.store_records(integration_id, batch.id, &records).await?);
                    continue;
                }
                Ok(Err(error)) => plugin_error(error),
                Err(error) => call_error(error),
            };
            self.store.mark_batch_failed(batch.id, &format!("{}: {}", error.class.as_str(), error.message)).await?;
            first_error.get_or_insert(error);
        }
        Ok((counts, first_error))
    }
}

fn failed(error: RunError) -> (RunOutcome, Option<RunError>, Vec<LogLine>) {
    let outcome = RunOutcome {
        status: RunStatus::Failed,
        batches: 0,
        items_seen: 0,
        records: RecordCounts::default(),
        error: Some((error.class.as_str().to_string(), error.message.clone())),
    };
    (outcome, Some(error), Vec::new())
}

pub fn to_datetime(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The call's log lines, with a note when the cap dropped some.
fn call_log(ctx: PluginCtx) -> Vec<LogLine> {
    let mut lines = ctx.logs.lines;
    if ctx.logs.dropped > 0 {
        lines.push(LogLine {
            at: lines.last().map_or(0, |l| l.at),
            level: "warn".into(),
            message: format!("{} further log lines were dropped (limit per run)", ctx.logs.dropped),
        });
    }
    lines
}
