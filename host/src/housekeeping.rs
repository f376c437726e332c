//! The host's own scheduled work: pruning old history and refreshing tokens
//! before they lapse. Each is a task like any plugin's: an integration of the
//! built-in plugin `inlet` in its group `host` (created when the scheduler
//! starts), so the Updates page lists it under Tasks with its schedule, last
//! run and history, "Update now" runs it and its schedule can be edited. The
//! sync runner runs it here, in the host, instead of in a sandbox.

use crate::auth::OAuth;
use crate::auth::refresh::expiring;
use crate::domain::manifest::HOST_PLUGIN_ID;
use crate::schedule::Schedule;
use crate::store::Store;
use crate::store::groups::{Credentials, GroupFilter};
use crate::store::integrations::{Integration, IntegrationFilter, NewIntegration};
use anyhow::Result;
use std::sync::Arc;
use std::time::Duration;

const GROUP_NAME: &str = "host";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostTask {
    /// Delete runs, webhook deliveries, processed batches and deleted records past the history limits.
    PruneHistory,
    /// Refresh the access tokens that would lapse before this task runs again.
    RefreshTokens,
}

impl HostTask {
    pub const ALL: [HostTask; 2] = [HostTask::PruneHistory, HostTask::RefreshTokens];

    pub fn id(self) -> &'static str {
        match self {
            HostTask::PruneHistory => "prune-history",
            HostTask::RefreshTokens => "refresh-tokens",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HostTask::PruneHistory => "Prune history",
            HostTask::RefreshTokens => "Refresh tokens",
        }
    }

    pub fn default_schedule(self) -> Schedule {
        Schedule::Interval { seconds: self.default_interval().as_secs() as u32 }
    }

    fn default_interval(self) -> Duration {
        match self {
            HostTask::PruneHistory => Duration::from_secs(3600),
            HostTask::RefreshTokens => Duration::from_secs(15 * 60),
        }
    }

    /// The host task `integration` is, if it is one.
    pub fn of(integration: &Integration) -> Option<HostTask> {
        (integration.plugin_id == HOST_PLUGIN_ID)
            .then(|| HostTask::ALL.into_iter().find(|task| task.id() == integration.instance_type))
            .flatten()
    }
}

/// Create the host's group and an integration per task, where missing.
pub async fn ensure_tasks(store: &Store) -> Result<()> {
    let host_group = GroupFilter { plugin_id: Some(HOST_PLUGIN_ID.into()), ..GroupFilter::default() };
    let group = match store.groups_page(&host_group, None, 1).await?.first() {
        Some(group) => group.id,
        None => store.insert_group(HOST_PLUGIN_ID, GROUP_NAME, &Credentials::default()).await?,
    };
    // The host's group only: a node may hold a million integrations.
    let filter = IntegrationFilter { group_id: Some(group), ..IntegrationFilter::default() };
    let existing = store.integrations_page(&filter, None, i64::MAX).await?;
    for task in HostTask::ALL {
        if existing.iter().any(|i| HostTask::of(i) == Some(task)) {
            continue;
        }
        store
            .insert_integration(&NewIntegration {
                plugin_id: HOST_PLUGIN_ID,
                instance_type: task.id(),
                group_id: group,
                name: task.name(),
                config: "{}",
                schedule: None,
                // Due at once: a host that was down may owe a prune.
                first_due_at: Some(store.now()),
                paused_reason: None,
            })
            .await?;
    }
    Ok(())
}

/// What the host's tasks need: the store, the token refresher and the limits
/// history is kept to.
pub struct Housekeeping {
    pub store: Store,
    pub oauth: Arc<OAuth>,
    pub history_max_age: Duration,
    pub history_max_runs: i64,
    pub processed_batches_max_age: Duration,
    pub deleted_events_max_age: Duration,
}

impl Housekeeping {
    /// Run `task`; what it did, for the run's log, and how many things it touched.
    pub async fn run(&self, task: HostTask, schedule: &Schedule) -> Result<(String, i64)> {
        match task {
            HostTask::PruneHistory => self.prune_history().await,
            HostTask::RefreshTokens => self.refresh_tokens(schedule).await,
        }
    }

    async fn prune_history(&self) -> Result<(String, i64)> {
        let before = |max_age: Duration| self.store.now() - max_age.as_millis() as i64;
        let runs = self.store.prune_sync_runs(before(self.history_max_age), self.history_max_runs).await?;
        let deliveries = self.store.prune_webhook_deliveries(before(self.history_max_age)).await?;
        let batches = self.store.prune_processed_batches(before(self.processed_batches_max_age)).await?;
        let deleted_before = before(self.deleted_events_max_age);
        let events = self.store.prune_deleted_events(deleted_before).await?;
        let others = self.store.prune_deleted_objects_and_blocks(deleted_before).await?;
        let message = format!(
            "pruned {runs} runs, {deliveries} webhook deliveries, {batches} processed batches, {events} deleted \
             events and {others} deleted objects and blocks"
        );
        Ok((message, (runs + deliveries + batches + events + others) as i64))
    }

    /// Refresh every renewable token that expires before the next run of
    /// this task (as `schedule` has it), so no fetch waits on a refresh.
    async fn refresh_tokens(&self, schedule: &Schedule) -> Result<(String, i64)> {
        // What a fetch at the next run would find expiring.
        let next_run = next_run_after(schedule, self.store.now());
        let (mut refreshed, mut failed) = (Vec::new(), Vec::new());
        for group in self.store.groups().await? {
            let Ok((credentials, _)) = self.store.group_credentials(group.id).await else { continue };
            if !expiring(&credentials, next_run) {
                continue;
            }
            match self.oauth.fresh_credentials(group.id, &credentials, true).await {
                Ok(_) => refreshed.push(group.id),
                Err(error) => failed.push(format!("group {}: {error}", group.id)),
            }
        }
        let mut message = format!("refreshed the tokens of {} group(s)", refreshed.len());
        if !failed.is_empty() {
            message.push_str(&format!("; failed: {}", failed.join("; ")));
        }
        Ok((message, refreshed.len() as i64))
    }
}

/// When a task on `schedule` runs next after `now`: an interval's end, a
/// cron's next time, or, run by hand only, a default interval's end.
fn next_run_after(schedule: &Schedule, now: i64) -> i64 {
    let next = schedule.compile().ok().zip(chrono::DateTime::from_timestamp_millis(now));
    match next.and_then(|(compiled, now)| compiled.next_after(now)) {
        Some(next) => next.timestamp_millis(),
        None => now + HostTask::RefreshTokens.default_interval().as_millis() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token refresh looks ahead to the task's next run, whatever its
    /// schedule (with a cron's, it looked 15 minutes ahead).
    #[test]
    fn the_next_run_follows_the_tasks_schedule() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z").unwrap().timestamp_millis();
        let hour = 3_600_000;
        assert_eq!(next_run_after(&Schedule::Interval { seconds: 3_600 }, now), now + hour);
        let daily = Schedule::cron(vec!["0 3 * * *".into()], "UTC").unwrap();
        assert_eq!(next_run_after(&daily, now), now + 17 * hour);
        assert_eq!(next_run_after(&Schedule::Manual, now), now + 15 * 60_000);
    }
}
