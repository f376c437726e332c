//! One sync run of one integration: fetch (batches and state committed at the
//! plugin's checkpoints), then process every stored batch into records, then
//! record the run with its counts, error and log lines.

use crate::capabilities::batches;
use crate::capabilities::http::{OutboundHttp, UpstreamOverrides};
use crate::runtime::context::{FetchScope, OutputLimits, PluginCtx};
use crate::runtime::registry::{LoadedPlugin, PluginRegistry};
use crate::runtime::wit::{FetchMode, FetchRequest, PluginError, RawBatch, Trigger};
use crate::runtime::{CallError, Runtime};
use crate::store::Store;
use crate::store::integrations::Integration;
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

type RunError = (ErrorClass, String);

fn plugin_error(error: PluginError) -> RunError {
    match error {
        PluginError::Transient(m) => (ErrorClass::Transient, m),
        PluginError::RateLimited(r) => (
            ErrorClass::RateLimited,
            format!("retry after {}s: {}", r.retry_after_seconds, r.message),
        ),
        PluginError::Unauthorized(m) => (ErrorClass::Unauthorized, m),
        PluginError::InvalidConfig(m) => (ErrorClass::InvalidConfig, m),
        PluginError::Permanent(m) => (ErrorClass::Permanent, m),
    }
}

fn call_error(error: CallError) -> RunError {
    (ErrorClass::Trap, error.to_string())
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
    /// Run one sync of `integration_id` now and return its stored run row.
    pub async fn run(&self, integration_id: i64, trigger: Trigger) -> Result<SyncRun> {
        let integration = self
            .store
            .integration(integration_id)
            .await?
            .ok_or_else(|| anyhow!("there is no integration with id {integration_id}"))?;
        let run_id = self
            .store
            .start_sync_run(integration_id, trigger_name(trigger), 1)
            .await?;
        tracing::info!(integration = integration_id, plugin = %integration.plugin_id, run = run_id, "sync started");

        let (outcome, logs) = match self.plugins.get(&integration.plugin_id) {
            Some(plugin) => {
                self.run_plugin(&plugin, &integration, run_id, trigger)
                    .await
            }
            None => failed(
                ErrorClass::PluginMissing,
                format!(
                    "plugin {:?} is not loaded; put its .wasm file in the plugins folder",
                    integration.plugin_id
                ),
            ),
        };
        self.store.append_sync_run_logs(run_id, &logs).await?;
        self.store.finish_sync_run(run_id, &outcome).await?;
        match &outcome.error {
            None => {
                tracing::info!(integration = integration_id, run = run_id, records = ?outcome.records, "sync succeeded")
            }
            Some((class, message)) => {
                tracing::warn!(integration = integration_id, run = run_id, class = %class, %message, "sync failed")
            }
        }
        self.store
            .sync_run(run_id)
            .await?
            .context("the sync run row vanished")
    }

    async fn run_plugin(
        &self,
        plugin: &LoadedPlugin,
        integration: &Integration,
        run_id: i64,
        trigger: Trigger,
    ) -> (RunOutcome, Vec<LogLine>) {
        let fetched = match self.fetch(plugin, integration, run_id, trigger).await {
            Ok(fetched) => fetched,
            Err(error) => return failed(ErrorClass::Host, format!("{error:#}")),
        };
        // Process whatever is stored, including batches committed before a
        // failure (or left by an earlier crashed run): checkpointed data is kept.
        let (records, process_error) = match self.process_pending(plugin, integration.id).await {
            Ok(processed) => processed,
            Err(error) => (
                RecordCounts::default(),
                Some((ErrorClass::Host, format!("{error:#}"))),
            ),
        };
        let error = fetched.error.or(process_error);
        let outcome = RunOutcome {
            status: if error.is_none() {
                RunStatus::Success
            } else {
                RunStatus::Failed
            },
            batches: fetched.batches,
            items_seen: fetched.items_seen,
            records,
            error: error.map(|(class, message)| (class.as_str().to_string(), message)),
        };
        (outcome, fetched.logs)
    }

    async fn fetch(
        &self,
        plugin: &LoadedPlugin,
        integration: &Integration,
        run_id: i64,
        trigger: Trigger,
    ) -> Result<FetchResult> {
        let Some(instance_type) = plugin.instance_type(&integration.instance_type) else {
            return Ok(FetchResult {
                error: Some((
                    ErrorClass::InvalidConfig,
                    format!(
                        "plugin {:?} has no instance type {:?}",
                        plugin.id(),
                        integration.instance_type
                    ),
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
            mode: FetchMode::Incremental,
            trigger,
        };
        let (result, mut ctx) = self
            .runtime
            .fetch(&plugin.pre, plugin.id(), scope, &request)
            .await;
        let mut fetched = FetchResult::default();
        match result {
            Ok(Ok(summary)) => {
                fetched.items_seen = summary.items_seen as i64;
                // The end of a successful fetch is an implicit checkpoint.
                let scope = ctx.fetch.as_mut().expect("fetch scope outlives the call");
                if let Err(error) = batches::commit(scope).await {
                    fetched.error = Some((
                        ErrorClass::Host,
                        format!("final checkpoint failed: {error:#}"),
                    ));
                }
            }
            Ok(Err(error)) => fetched.error = Some(plugin_error(error)),
            Err(error) => fetched.error = Some(call_error(error)),
        }
        fetched.batches = ctx.fetch.as_ref().map_or(0, |s| s.committed_batches);
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
            let raw = RawBatch {
                kind: batch.kind,
                payload: batch.payload,
            };
            let error = match self.runtime.process(&plugin.pre, plugin.id(), &raw).await {
                Ok(Ok(records)) => {
                    counts.add(
                        self.store
                            .store_records(integration_id, batch.id, &records)
                            .await?,
                    );
                    continue;
                }
                Ok(Err(error)) => plugin_error(error),
                Err(error) => call_error(error),
            };
            let (class, message) = &error;
            self.store
                .mark_batch_failed(batch.id, &format!("{}: {message}", class.as_str()))
                .await?;
            first_error.get_or_insert(error);
        }
        Ok((counts, first_error))
    }
}

fn failed(class: ErrorClass, message: String) -> (RunOutcome, Vec<LogLine>) {
    let outcome = RunOutcome {
        status: RunStatus::Failed,
        batches: 0,
        items_seen: 0,
        records: RecordCounts::default(),
        error: Some((class.as_str().to_string(), message)),
    };
    (outcome, Vec::new())
}

/// The call's log lines, with a note when the cap dropped some.
fn call_log(ctx: PluginCtx) -> Vec<LogLine> {
    let mut lines = ctx.logs.lines;
    if ctx.logs.dropped > 0 {
        lines.push(LogLine {
            at: lines.last().map_or(0, |l| l.at),
            level: "warn".into(),
            message: format!(
                "{} further log lines were dropped (limit per run)",
                ctx.logs.dropped
            ),
        });
    }
    lines
}
