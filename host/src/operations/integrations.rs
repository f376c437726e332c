//! Create, change, trigger and delete integrations.

use super::{OperationError, OperationResult};
use crate::Host;
use crate::domain::manifest::{HOST_PLUGIN_ID, InstanceKind};
use crate::domain::pause_reason::PauseReason;
use crate::domain::queue::Queue;
use crate::domain::trigger::Trigger;
use crate::housekeeping::HostTask;
use crate::runtime::registry::LoadedPlugin;
use crate::schedule::Schedule;
use crate::store::integrations::{Integration, IntegrationFilter, NewIntegration, NextDue, PauseEdit};
use crate::store::jobs::{JobArgs, NewJob, ReprocessScope, TriggerOutcome};
use crate::store::sync_runs::RunStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// New integrations start within this many milliseconds, spread so that a
/// batch created together does not hit an upstream at the same instant.
const FIRST_RUN_JITTER_MS: i64 = 5_000;

const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIntegrationInput {
    /// Plugin id, e.g. `monzo`.
    pub plugin: String,
    /// One of the plugin's instance types, e.g. `transactions`.
    pub instance_type: String,
    /// The group (connected account) whose credentials it uses.
    pub group_id: i64,
    /// Display name; default "<plugin> <instance type>".
    pub name: Option<String>,
    /// JSON object, as the instance type's config schema describes.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// Its own schedule; absent follows the instance type's default.
    pub schedule: Option<ScheduleInput>,
    /// false creates it paused (reason `operator`): it does not run until
    /// resumed (or forced, `sync?force=true`); its first run is due then. Default true.
    pub enabled: Option<bool>,
}

/// `PUT /api/integrations/{id}`: the fields that can be replaced.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationUpdate {
    pub name: String,
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

/// A schedule as an operator writes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ScheduleInput {
    /// Every `seconds`, or every `every` (`5m`, `15m`, `30m`, `1h`, `6h`, `daily`, `weekly`, `90m`, ...).
    Interval { seconds: Option<u32>, every: Option<String> },
    /// 5-field cron expressions in an IANA time zone (default UTC).
    Cron { expressions: Vec<String>, timezone: Option<String> },
    /// Only when triggered.
    Manual,
    /// Follow the instance type's default schedule.
    Default,
}

impl ScheduleInput {
    /// The schedule; `None` for the instance type's default.
    pub fn resolve(self, field: &str) -> OperationResult<Option<Schedule>> {
        let schedule = match self {
            ScheduleInput::Default => return Ok(None),
            ScheduleInput::Manual => Ok(Schedule::Manual),
            ScheduleInput::Interval { seconds: Some(seconds), every: None } => Schedule::interval(seconds),
            ScheduleInput::Interval { seconds: None, every: Some(every) } => Schedule::parse_interval(&every),
            ScheduleInput::Interval { .. } => {
                return Err(OperationError::invalid(
                    format!("{field}.seconds"),
                    "give exactly one of seconds (e.g. 900) or every (e.g. \"15m\")",
                ));
            }
            ScheduleInput::Cron { expressions, timezone } => {
                Schedule::cron(expressions, timezone.as_deref().unwrap_or("UTC"))
            }
        };
        schedule.map(Some).map_err(|e| OperationError::schedule(field, e))
    }
}

/// What a schedule would do, to check it before saving.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchedulePreview {
    /// e.g. "06:00 and 18:00 Europe/London".
    pub summary: String,
    /// The next run instants from now, epoch ms; none for a manual schedule.
    pub next: Vec<i64>,
}

/// The summary and next `count` runs of `input`, from `now`.
pub fn preview_schedule(input: ScheduleInput, count: usize, now: i64) -> OperationResult<SchedulePreview> {
    let Some(schedule) = input.resolve("schedule")? else {
        return Err(OperationError::invalid(
            "schedule.kind",
            "a preview takes interval, cron or manual (default is the instance type's schedule)",
        ));
    };
    let compiled = schedule.compile().map_err(|e| OperationError::schedule("schedule", e))?;
    let from = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    let next = compiled.preview(from, count).iter().map(|at| at.timestamp_millis()).collect();
    Ok(SchedulePreview { summary: schedule.summary(), next })
}

/// `PATCH /api/integrations/{id}/sync-settings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncSettingsPatch {
    pub schedule: Option<ScheduleInput>,
    /// false pauses scheduled runs (reason `operator`); true resumes them.
    pub enabled: Option<bool>,
}

/// An integration as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    pub id: i64,
    pub plugin_id: String,
    pub instance_type: String,
    pub kind: InstanceKind,
    pub group_id: i64,
    pub name: String,
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    pub sync_settings: SyncSettingsView,
    /// Epoch milliseconds, like every time in this API. None from the time
    /// the scheduler queues its run (up to a second ahead), or a fetch
    /// started before it meets it, until that run ends.
    pub next_due_at: Option<i64>,
    pub last_started_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub consecutive_failures: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncSettingsView {
    /// The schedule it follows (its own, or the instance type's default).
    pub schedule: Schedule,
    pub schedule_is_default: bool,
    /// e.g. "every 15 minutes", "06:00 and 18:00 Europe/London", "manual only".
    pub schedule_summary: String,
    pub enabled: bool,
    /// Why it is paused (`operator`, `error`, `needs-reconnect`); null when enabled.
    pub paused_reason: Option<PauseReason>,
}

/// An accepted "Update now".
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRequested {
    pub integration_id: i64,
    pub job_id: i64,
    /// The run's id in the sync history; `pending` until a worker starts it.
    pub run_id: i64,
}

impl IntegrationView {
    pub fn of(host: &Host, integration: Integration) -> IntegrationView {
        let schedule = host.runner.effective_schedule(&integration);
        IntegrationView {
            kind: instance_kind(host, &integration),
            config: serde_json::from_str(&integration.config).unwrap_or_default(),
            sync_settings: SyncSettingsView {
                schedule_summary: schedule.summary(),
                schedule,
                schedule_is_default: integration.schedule.is_none(),
                enabled: integration.paused_reason.is_none(),
                paused_reason: integration.paused_reason,
            },
            id: integration.id,
            plugin_id: integration.plugin_id,
            instance_type: integration.instance_type,
            group_id: integration.group_id,
            name: integration.name,
            next_due_at: integration.next_due_at,
            last_started_at: integration.last_started_at,
            last_success_at: integration.last_success_at,
            consecutive_failures: integration.consecutive_failures,
            created_at: integration.created_at,
            updated_at: integration.updated_at,
        }
    }
}

/// What `integration` is, from its plugin's manifest (an integration while
/// the plugin is not loaded).
pub fn instance_kind(host: &Host, integration: &Integration) -> InstanceKind {
    if HostTask::of(integration).is_some() {
        return InstanceKind::Task;
    }
    host.runner
        .plugins
        .get(&integration.plugin_id)
        .and_then(|plugin| plugin.instance_type(&integration.instance_type).map(|t| t.kind))
        .unwrap_or(InstanceKind::Integration)
}

/// The plugin and instance type of every kind of task: the host's own, and
/// those of the plugins loaded (see [`instance_kind`]).
pub fn task_types(host: &Host) -> Vec<(String, String)> {
    let host_tasks = HostTask::ALL.iter().map(|task| (HOST_PLUGIN_ID.to_string(), task.id().to_string()));
    let mut types: Vec<(String, String)> = host_tasks.collect();
    for plugin in host.runner.plugins.plugins() {
        let tasks = plugin.manifest.instance_types.iter().filter(|t| t.kind == InstanceKind::Task);
        types.extend(tasks.map(|t| (plugin.id().to_string(), t.id.clone())));
    }
    types
}

/// Up to `limit` integrations and tasks matching `filter`, with ids above
/// `after`, by id; never the host's own tasks (those are on the Updates page,
/// in `schedule list` and each by its id).
pub async fn list(
    host: &Host,
    filter: IntegrationFilter,
    after: Option<i64>,
    limit: i64,
) -> OperationResult<Vec<Integration>> {
    let filter = IntegrationFilter { without_host_tasks: true, ..filter };
    Ok(host.store().integrations_page(&filter, after, limit).await?)
}

pub async fn get(host: &Host, id: i64) -> OperationResult<Integration> {
    host.store().integration(id).await?.ok_or_else(|| OperationError::not_found("integration", id))
}

pub async fn create(host: &Host, input: NewIntegrationInput) -> OperationResult<Integration> {
    let Some(plugin) = host.runner.plugins.get(&input.plugin) else {
        let loaded: Vec<String> = host.runner.plugins.plugins().iter().map(|p| p.id().to_string()).collect();
        return Err(OperationError::invalid(
            "plugin",
            format!("plugin {:?} is not loaded; loaded plugins: {}", input.plugin, loaded.join(", ")),
        ));
    };
    let Some(instance_type) = plugin.instance_type(&input.instance_type) else {
        let known: Vec<&str> = plugin.manifest.instance_types.iter().map(|t| t.id.as_str()).collect();
        return Err(OperationError::invalid(
            "instance_type",
            format!(
                "plugin {:?} has no instance type {:?}; it has {}",
                input.plugin,
                input.instance_type,
                known.join(", ")
            ),
        ));
    };
    let group =
        host.store().group(input.group_id).await?.ok_or_else(|| {
            OperationError::invalid("group_id", format!("there is no group with id {}", input.group_id))
        })?;
    if group.plugin_id != input.plugin {
        return Err(OperationError::invalid(
            "group_id",
            format!("group {} belongs to plugin {:?}, not {:?}", group.id, group.plugin_id, input.plugin),
        ));
    }
    let name = check_name(input.name.unwrap_or_else(|| format!("{} {}", input.plugin, input.instance_type)))?;
    let config =
        check_config(Some(&plugin), &input.instance_type, input.config.unwrap_or_else(|| serde_json::json!({})))?;
    let schedule = input.schedule.map(|s| s.resolve("schedule")).transpose()?.flatten();
    let effective = schedule.clone().unwrap_or_else(|| instance_type.default_schedule.clone());
    let now = host.store().now();
    let enabled = input.enabled.unwrap_or(true);
    // The first run is a backfill, due at once (with a little jitter) unless
    // manual; a disabled one's is due when it is resumed.
    let first_due_at = (enabled && effective != Schedule::Manual)
        .then(|| now + (now.rem_euclid(997) * 7919).rem_euclid(FIRST_RUN_JITTER_MS));
    let id = host
        .store()
        .insert_integration(&NewIntegration {
            plugin_id: &input.plugin,
            instance_type: &input.instance_type,
            group_id: group.id,
            name: &name,
            config: &config,
            schedule: schedule.as_ref(),
            first_due_at,
            paused_reason: (!enabled).then_some(PauseReason::Operator),
        })
        .await?;
    host.wake(Queue::Fetch);
    get(host, id).await
}

pub async fn update(host: &Host, id: i64, input: IntegrationUpdate) -> OperationResult<Integration> {
    let current = get(host, id).await?;
    let name = check_name(input.name)?;
    let plugin = host.runner.plugins.get(&current.plugin_id);
    let config = check_config(plugin.as_deref(), &current.instance_type, input.config)?;
    host.store().update_integration(id, &name, &config).await?;
    get(host, id).await
}

pub async fn delete(host: &Host, id: i64) -> OperationResult<()> {
    if HostTask::of(&get(host, id).await?).is_some() {
        return Err(host_task(id));
    }
    if !host.store().delete_integration(id).await? {
        return Err(OperationError::not_found("integration", id));
    }
    Ok(())
}

/// Change the schedule and/or enable or disable scheduled runs.
pub async fn set_sync_settings(host: &Host, id: i64, patch: SyncSettingsPatch) -> OperationResult<Integration> {
    if patch.schedule.is_none() && patch.enabled.is_none() {
        return Err(OperationError::invalid("schedule", "give schedule, enabled, or both"));
    }
    let integration = get(host, id).await?;
    let schedule = match patch.schedule {
        Some(input) => input.resolve("schedule")?,
        None => integration.schedule.clone(),
    };
    let paused_reason = match patch.enabled {
        Some(false) => Some(integration.paused_reason.unwrap_or(PauseReason::Operator)),
        Some(true) => None,
        None => integration.paused_reason,
    };
    let changed = Integration { schedule, paused_reason, ..integration.clone() };
    // A new schedule, or resuming, computes the next run (a missed one is due
    // now); otherwise it stays as it was.
    let next_due = if changed.schedule != integration.schedule || changed.paused_reason != integration.paused_reason {
        NextDue::At(next_due(host, &changed).await?)
    } else {
        NextDue::Unchanged
    };
    // Not given, the pause is left as stored then, not as read now: a run's
    // failure may pause it meanwhile.
    let pause = match patch.enabled {
        Some(_) => PauseEdit::To(changed.paused_reason),
        None => PauseEdit::Keep,
    };
    let saved = host.store().save_sync_settings(id, changed.schedule.as_ref(), pause, next_due).await?;
    if !saved {
        return Err(OperationError::not_found("integration", id));
    }
    host.wake(Queue::Fetch);
    get(host, id).await
}

pub async fn pause(host: &Host, id: i64) -> OperationResult<Integration> {
    if !host.store().set_integration_paused(id, Some(PauseReason::Operator), None).await? {
        return Err(OperationError::not_found("integration", id));
    }
    get(host, id).await
}

/// Resume scheduled runs; a missed run happens once, now, as does the first
/// run of one that never ran (created disabled).
pub async fn resume(host: &Host, id: i64) -> OperationResult<Integration> {
    let integration = get(host, id).await?;
    let due = next_due(host, &integration).await?;
    host.store().set_integration_paused(id, None, due).await?;
    host.wake(Queue::Fetch);
    get(host, id).await
}

/// "Update now": queue a run at once. Refused while paused (unless `force`)
/// and when the last request was less than the configured minimum ago
/// (unless `force`).
pub async fn request_sync(host: &Host, id: i64, force: bool) -> OperationResult<SyncRequested> {
    let integration = get(host, id).await?;
    if let (Some(reason), false) = (&integration.paused_reason, force) {
        return Err(OperationError::Conflict {
            code: "paused",
            message: format!(
                "integration {id} is paused ({reason}); resume it, or pass force=true to run it once anyway"
            ),
        });
    }
    let min_gap = if force { 0 } else { host.settings.min_sync_request_gap.as_millis() as i64 };
    let job = NewJob {
        queue: Queue::Fetch,
        integration_id: id,
        args: JobArgs::new(Trigger::Manual),
        max_attempts: host.policy(Queue::Fetch).max_attempts,
        run_at: host.store().now(),
    };
    match host.store().request_run(&job, min_gap).await? {
        TriggerOutcome::Queued { job_id, run_id } => {
            host.wake(Queue::Fetch);
            Ok(SyncRequested { integration_id: id, job_id, run_id })
        }
        TriggerOutcome::TooSoon { last_requested_at } => {
            let wait_ms = (last_requested_at + min_gap - host.store().now()).max(1);
            let retry_after_seconds = (wait_ms as u64).div_ceil(1000);
            Err(OperationError::TooSoon {
                message: format!(
                    "integration {id} was asked to update {}s ago; the minimum between requests is {}s. Try again in \
                     {retry_after_seconds}s, or pass force=true",
                    (host.store().now() - last_requested_at) / 1000,
                    min_gap / 1000
                ),
                retry_after_seconds,
            })
        }
        TriggerOutcome::NoIntegration => Err(OperationError::not_found("integration", id)),
    }
}

/// Queue a reprocess: the current plugin's `process` over the integration's
/// kept batches (those stored since `since`, or all), updating its records
/// in place without fetching. It runs on the `process` queue, paused or not:
/// it asks nothing of the upstream.
pub async fn request_reprocess(host: &Host, id: i64, since: Option<i64>) -> OperationResult<SyncRequested> {
    check_reprocessable(host, id).await?;
    let job = NewJob {
        queue: Queue::Process,
        integration_id: id,
        args: JobArgs { reprocess: Some(ReprocessScope { since }), ..JobArgs::new(Trigger::Reprocess) },
        max_attempts: host.policy(Queue::Process).max_attempts,
        run_at: host.store().now(),
    };
    match host.store().request_run(&job, 0).await? {
        TriggerOutcome::Queued { job_id, run_id } => {
            host.wake(Queue::Process);
            Ok(SyncRequested { integration_id: id, job_id, run_id })
        }
        TriggerOutcome::NoIntegration => Err(OperationError::not_found("integration", id)),
        TriggerOutcome::TooSoon { .. } => unreachable!("no minimum gap was asked for"),
    }
}

/// A reprocess needs stored data: a host task has none (and running it
/// again is "Update now").
pub async fn check_reprocessable(host: &Host, id: i64) -> OperationResult<()> {
    let integration = get(host, id).await?;
    match HostTask::of(&integration) {
        Some(_) => Err(OperationError::Conflict {
            code: "nothing-to-reprocess",
            message: format!("{id} is one of the host's tasks, which store no data to process again"),
        }),
        None => Ok(()),
    }
}

/// Refused for one of the host's own tasks: its scheduler makes them once,
/// and pruning and refreshing tokens would stop until a restart.
fn host_task(id: i64) -> OperationError {
    OperationError::Conflict {
        code: "host-task",
        message: format!("{id} is one of the host's own tasks, which cannot be deleted; pause it instead"),
    }
}

/// When the next run is due under the integration's (possibly new)
/// schedule: counting from the start of the fetch running now, or else of
/// the last one (a missed run is due now). The first run of one that never
/// ran is due now, as at its creation.
async fn next_due(host: &Host, integration: &Integration) -> OperationResult<Option<i64>> {
    let now = host.store().now();
    // `last_started_at` is written when a run ends: counting from it while
    // a fetch runs would find a run due at once, to follow this one.
    let running = host.store().active_sync_runs(&[integration.id]).await?;
    let running_since = running
        .iter()
        .filter(|run| run.queue == Queue::Fetch && run.status == RunStatus::Running)
        .filter_map(|run| run.started_at)
        .max();
    Ok(match running_since.or(integration.last_started_at) {
        Some(started) => host.runner.next_due_after_run(integration, started),
        None => host.runner.next_due_after_run(integration, now).map(|_| now),
    })
}

fn check_name(name: String) -> OperationResult<String> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(OperationError::invalid("name", format!("must be 1 to {MAX_NAME_CHARS} characters")));
    }
    Ok(name)
}

/// A JSON object that fits the instance type's config schema. Without its
/// plugin loaded there is no schema to check against: the object is kept,
/// and its runs wait for the plugin anyway.
fn check_config(
    plugin: Option<&LoadedPlugin>,
    instance_type: &str,
    config: serde_json::Value,
) -> OperationResult<String> {
    if !config.is_object() {
        return Err(OperationError::invalid("config", format!("must be a JSON object, got {config}")));
    }
    if let Some(schema) = plugin.and_then(|p| p.config_schemas.get(instance_type)) {
        schema.check(&config).map_err(|refusal| OperationError::invalid(refusal.field, refusal.message))?;
    }
    Ok(config.to_string())
}
