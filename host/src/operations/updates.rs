//! The Updates view: every integration and task with its status, last
//! success, next run, schedule and the run in flight.

use super::integrations::instance_kind;
use crate::Host;
use crate::housekeeping::HostTask;
use crate::status::UpdateStatus;
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
    /// `integration` or `task`.
    pub kind: String,
    /// `processing`, `paused` (with `reason`), `plugin-missing`, `needs-update` or `up-to-date`.
    pub status: UpdateStatus,
    /// "Processing", "Paused (operator)", "Needs update", "Up to date", ...
    pub status_label: String,
    pub last_success_at: Option<i64>,
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
    /// `pending` (waiting for a worker) or `running`.
    pub status: RunStatus,
    pub started_at: Option<i64>,
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
}

pub async fn rows(host: &Host, filter: UpdatesFilter) -> Result<Vec<UpdateRow>> {
    let store = host.store();
    let (running, waiting) = store.active_job_integrations().await?;
    // A run under way shows over one asked for after it.
    let mut active: BTreeMap<i64, RunInFlight> = BTreeMap::new();
    for run in store.active_sync_runs().await? {
        let flight = RunInFlight {
            id: run.id,
            status: run.status,
            started_at: run.started_at,
            progress_done: run.progress_done,
            progress_total: run.progress_total,
        };
        match active.get(&run.integration_id) {
            Some(shown) if shown.status == RunStatus::Running => {}
            _ => {
                active.insert(run.integration_id, flight);
            }
        }
    }
    let now = store.now();
    let mut rows = Vec::new();
    for integration in store.integrations().await? {
        let kind = instance_kind(host, &integration);
        let wanted = match filter {
            UpdatesFilter::All => true,
            UpdatesFilter::Integrations => kind == "integration",
            UpdatesFilter::Tasks => kind == "task",
        };
        if !wanted {
            continue;
        }
        let schedule = host.runner.effective_schedule(&integration);
        let status = UpdateStatus::of(
            &integration,
            host.runner.plugins.get(&integration.plugin_id).is_some() || HostTask::of(&integration).is_some(),
            // A run an operator asked for counts as in flight from the click on.
            running.contains(&integration.id) || active.contains_key(&integration.id),
            waiting.contains(&integration.id),
            now,
        );
        rows.push(UpdateRow {
            id: integration.id,
            kind: kind.to_string(),
            status_label: status.label(),
            status,
            last_success_at: integration.last_success_at,
            next_due_at: integration.next_due_at,
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
