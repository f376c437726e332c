//! The Updates view: integrations and tasks with their status, last
//! success, next run, schedule and the run in flight, a page at a time.

use super::integrations::{instance_kind, task_types};
use crate::Host;
use crate::domain::manifest::InstanceKind;
use crate::domain::queue::Queue;
use crate::housekeeping::HostTask;
use crate::status::{UpdateStatus, UpdateStatusKind};
use crate::store::integrations::{InstanceTypes, Integration, IntegrationFilter};
use crate::store::sync_runs::RunStatus;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpdatesFilter {
    #[default]
    All,
    Integrations,
    Tasks,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct UpdateRow {
    pub id: i64,
    pub name: String,
    pub plugin_id: String,
    pub instance_type: String,
    pub kind: InstanceKind,
    /// `processing`, `paused` (with `reason`), `plugin-missing`, `retrying`
    /// (with `attempt`, `max_attempts` and `at`, when it is due), `failed`,
    /// `needs-update` or `up-to-date`.
    pub status: UpdateStatus,
    /// "Processing", "Paused (operator)", "Retrying (attempt 2 of 4)", "Failed", "Up to date", ...
    pub status_label: String,
    /// The first line of the error, while the last attempt failed (retrying,
    /// failed, or paused after failures); the history has the whole run.
    pub last_error: Option<String>,
    pub last_success_at: Option<i64>,
    /// When the next run is due: by the schedule, or that of a run queued
    /// (the scheduler queues runs up to a second ahead), or a retry's.
    pub next_due_at: Option<i64>,
    /// Why the next run is later than the schedule says: the plugin asked
    /// to wait (the upstream's poll interval, a quota that resets later).
    pub next_due_reason: Option<String>,
    pub schedule_summary: String,
    pub schedule_is_default: bool,
    pub consecutive_failures: i64,
    /// The run asked for or under way, if any.
    pub run: Option<RunInFlight>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct RunInFlight {
    pub id: i64,
    /// A fetch, or the processing of what one stored.
    pub queue: Queue,
    /// `pending` (waiting for a worker) or `running`.
    pub status: RunStatus,
    pub started_at: Option<i64>,
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
}

/// Which rows of the Updates view a request wants.
#[derive(Debug, Clone, Default)]
pub struct UpdatesQuery {
    pub kind: UpdatesFilter,
    pub status: Option<UpdateStatusKind>,
    /// Plugin, group and name, which the database filters by.
    pub integrations: IntegrationFilter,
}

impl UpdatesQuery {
    fn wants(&self, row: &UpdateRow) -> bool {
        self.status.is_none_or(|status| row.status.kind() == status)
    }

    /// What the database can rule out: the kind wanted, by the instance
    /// types of tasks (a few among many integrations), and for the status
    /// wanted, what a rare status cannot be, so that it does not read every
    /// row: each status but Processing ranks below Paused, and Failed needs
    /// a failure streak or failed processing (see `UpdateStatus::of`).
    /// `None` when the status contradicts the filter's `enabled`: nothing matches.
    fn candidates(&self, host: &Host) -> Option<IntegrationFilter> {
        let mut filter = self.integrations.clone();
        filter.instance_types = match self.kind {
            UpdatesFilter::All => InstanceTypes::All,
            UpdatesFilter::Integrations => InstanceTypes::AllBut(task_types(host)),
            UpdatesFilter::Tasks => InstanceTypes::Only(task_types(host)),
        };
        let enabled = match self.status {
            None | Some(UpdateStatusKind::Processing) => return Some(filter),
            Some(UpdateStatusKind::Paused) => false,
            Some(UpdateStatusKind::Failed) => {
                filter.failing = true;
                true
            }
            Some(_) => true,
        };
        if filter.enabled.is_some_and(|asked| asked != enabled) {
            return None;
        }
        filter.enabled = Some(enabled);
        Some(filter)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct UpdatesPage {
    /// By id.
    pub rows: Vec<UpdateRow>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<i64>,
}

/// Status is worked out per row, so a page filtered by it reads
/// the integrations the database matched this many at a time until it is full.
const CHUNK: i64 = 500;

/// Up to `limit` rows that `query` wants, of integrations with ids above `after`, by id.
pub async fn page(host: &Host, query: &UpdatesQuery, after: Option<i64>, limit: i64) -> Result<UpdatesPage> {
    let wanted = limit.saturating_add(1);
    let chunk = wanted.min(CHUNK);
    let Some(candidates) = query.candidates(host) else {
        return Ok(UpdatesPage { rows: Vec::new(), next_cursor: None });
    };
    let mut rows = Vec::new();
    let mut after = after;
    loop {
        let integrations = host.store().integrations_page(&candidates, after, chunk).await?;
        let exhausted = (integrations.len() as i64) < chunk;
        after = integrations.last().map(|i| i.id).or(after);
        rows.extend(rows_of(host, integrations).await?.into_iter().filter(|row| query.wants(row)));
        if exhausted || rows.len() as i64 >= wanted {
            break;
        }
    }
    rows.truncate(usize::try_from(wanted).unwrap_or(usize::MAX));
    let next_cursor = crate::store::next_page(&mut rows, wanted).map(|row| row.id);
    Ok(UpdatesPage { rows, next_cursor })
}

/// Every row `query` wants (the CLI's listing).
pub async fn all_rows(host: &Host, query: &UpdatesQuery) -> Result<Vec<UpdateRow>> {
    Ok(page(host, query, None, i64::MAX).await?.rows)
}

async fn rows_of(host: &Host, integrations: Vec<Integration>) -> Result<Vec<UpdateRow>> {
    let store = host.store();
    let ids: Vec<i64> = integrations.iter().map(|i| i.id).collect();
    let jobs = store.active_jobs(&ids).await?;
    // A run under way shows over one asked for after it, and a fetch (with
    // its progress) over the processing of an earlier one's batches.
    let mut active: BTreeMap<i64, RunInFlight> = BTreeMap::new();
    for run in store.active_sync_runs(&ids).await? {
        let flight = RunInFlight {
            id: run.id,
            queue: run.queue,
            status: run.status,
            started_at: run.started_at,
            progress_done: run.progress_done,
            progress_total: run.progress_total,
        };
        let rank = |f: &RunInFlight| (f.status == RunStatus::Running, f.queue == Queue::Fetch);
        if active.get(&run.integration_id).is_none_or(|shown| rank(&flight) >= rank(shown)) {
            active.insert(run.integration_id, flight);
        }
    }
    let now = store.now();
    let failing: Vec<i64> = integrations.iter().filter(|i| i.consecutive_failures > 0).map(|i| i.id).collect();
    let failures = store.last_failures(&failing).await?;
    let processing_failures = store.processing_failures(&ids).await?;
    let mut rows = Vec::new();
    for integration in integrations {
        let kind = instance_kind(host, &integration);
        let schedule = host.runner.effective_schedule(&integration);
        let status = UpdateStatus::of(
            &integration,
            host.runner.plugins.get(&integration.plugin_id).is_some() || HostTask::of(&integration).is_some(),
            // A run an operator asked for counts as in flight from the click on.
            jobs.running.contains(&integration.id) || active.contains_key(&integration.id),
            jobs.waiting.get(&integration.id),
            processing_failures.contains_key(&integration.id),
            now,
        );
        let last_error = match &status {
            UpdateStatus::Retrying { .. } => jobs.waiting.get(&integration.id).and_then(|j| j.error_message.as_deref()),
            _ => failures.get(&integration.id).or_else(|| processing_failures.get(&integration.id)).map(String::as_str),
        };
        rows.push(UpdateRow {
            id: integration.id,
            kind,
            status_label: status.label(),
            status,
            last_error: last_error.map(|e| e.lines().next().unwrap_or_default().to_string()),
            last_success_at: integration.last_success_at,
            // A scheduled run queued ahead of its due time is due then.
            next_due_at: integration.next_due_at.or(jobs.waiting.get(&integration.id).map(|job| job.run_at)),
            next_due_reason: integration.next_due_reason.clone(),
            schedule_summary: schedule.summary(),
            schedule_is_default: integration.schedule.is_none(),
            consecutive_failures: integration.consecutive_failures,
            run: active.get(&integration.id).cloned(),
            name: integration.name,
            plugin_id: integration.plugin_id,
            instance_type: integration.instance_type,
        });
    }
    Ok(rows)
}
