//! `integrations`: plugin + instance type + group + config + schedule, and the
//! scheduling state (`next_due_at`, last start and success, failure streak).

use super::jobs::{JobArgs, Withdrawal};
use super::listing::Conditions;
use super::records::{self, DeletedWith};
use super::{Backend, Connection, Store};
use crate::domain::manifest::HOST_PLUGIN_ID;
use crate::domain::pause_reason::PauseReason;
use crate::domain::queue::Queue;
use crate::domain::trigger::Trigger;
use crate::schedule::Schedule;
use anyhow::Result;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize)]
pub struct Integration {
    pub id: i64,
    pub plugin_id: String,
    pub instance_type: String,
    pub group_id: i64,
    pub name: String,
    /// JSON object, valid against the instance type's config schema.
    pub config: String,
    /// Its own schedule; `None` follows the instance type's default.
    pub schedule: Option<Schedule>,
    /// Why it is paused; `None` when active.
    pub paused_reason: Option<PauseReason>,
    pub next_due_at: Option<i64>,
    /// Why `next_due_at` is later than the schedule says (the plugin's
    /// schedule hint); `None` when the schedule alone set it.
    pub next_due_reason: Option<String>,
    /// When the last fetch to finish (for good: not one that will retry)
    /// started. Written as it ends, with the rest of the outcome; the run in
    /// flight, if any, is in the sync history.
    pub last_started_at: Option<i64>,
    pub last_success_at: Option<i64>,
    /// When a fetch last succeeded (a webhook's run processes, not fetches).
    pub last_fetched_at: Option<i64>,
    pub consecutive_failures: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// How many times its sync settings (schedule, enabled) were saved, or it
    /// was paused or resumed: a fetch's end sets the next due time only from
    /// the version it started on.
    #[serde(skip)]
    pub schedule_version: i64,
}

/// Which integrations a listing wants; each field given narrows it.
#[derive(Debug, Clone, Default)]
pub struct IntegrationFilter {
    pub plugin_id: Option<String>,
    pub group_id: Option<i64>,
    /// Part of the name, in any case.
    pub name_contains: Option<String>,
    /// Only enabled (`true`) or only paused (`false`) ones.
    pub enabled: Option<bool>,
    /// Only those whose last fetch failed for good (`consecutive_failures > 0`),
    /// or with processing in the failed list.
    pub failing: bool,
    /// Leave out the host's own tasks.
    pub without_host_tasks: bool,
    /// Only, or all but, these instance types.
    pub instance_types: InstanceTypes,
}

/// Which instance types a listing wants, each a plugin id and an instance
/// type's id: what kind an instance type is (task or integration) is in the
/// plugins' manifests, which the caller reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum InstanceTypes {
    #[default]
    All,
    Only(Vec<(String, String)>),
    AllBut(Vec<(String, String)>),
}

pub struct NewIntegration<'a> {
    pub plugin_id: &'a str,
    pub instance_type: &'a str,
    pub group_id: i64,
    pub name: &'a str,
    pub config: &'a str,
    pub schedule: Option<&'a Schedule>,
    /// When the first run (a backfill) is due; `None` for manual schedules.
    pub first_due_at: Option<i64>,
    /// Created paused, for this reason (an operator's, made disabled).
    pub paused_reason: Option<PauseReason>,
}

const COLUMNS: &str = "id, plugin_id, instance_type, group_id, name, config, schedule, paused_reason, next_due_at,
    next_due_reason, last_started_at, last_success_at, last_fetched_at, consecutive_failures, created_at, updated_at,
    schedule_version";

fn integration(row: AnyRow) -> Result<Integration> {
    let schedule: Option<String> = row.try_get("schedule")?;
    Ok(Integration {
        id: row.try_get("id")?,
        plugin_id: row.try_get("plugin_id")?,
        instance_type: row.try_get("instance_type")?,
        group_id: row.try_get("group_id")?,
        name: row.try_get("name")?,
        config: row.try_get("config")?,
        schedule: schedule.map(|s| serde_json::from_str(&s)).transpose()?,
        paused_reason: row
            .try_get::<Option<String>, _>("paused_reason")?
            .as_deref()
            .map(PauseReason::parse)
            .transpose()?,
        next_due_at: row.try_get("next_due_at")?,
        next_due_reason: row.try_get("next_due_reason")?,
        last_started_at: row.try_get("last_started_at")?,
        last_success_at: row.try_get("last_success_at")?,
        last_fetched_at: row.try_get("last_fetched_at")?,
        consecutive_failures: row.try_get("consecutive_failures")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        schedule_version: row.try_get("schedule_version")?,
    })
}

/// When an integration is next due, as its settings are saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextDue {
    /// As it is: a due time, or none while its run is queued or running
    /// (writing back one read earlier could queue a run twice).
    Unchanged,
    /// Worked out again from a new schedule, or a pause or resume.
    At(Option<i64>),
}

/// What an edit of the sync settings does to the pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseEdit {
    /// Leave it as stored when the edit is written.
    Keep,
    /// Paused for this reason, or enabled (`None`).
    To(Option<PauseReason>),
}

/// How a run (a job, after its retries) ended, for the scheduling state.
pub struct RunEnd {
    pub started_at: i64,
    pub success: bool,
    /// False for a run that only processed a webhook delivery's batches: it
    /// leaves the schedule, the fetch history and the failure streak alone.
    pub fetched: bool,
    pub next_due_at: Option<i64>,
    /// Why `next_due_at` is later than the schedule says, if it is.
    pub next_due_reason: Option<String>,
    /// The `Integration::schedule_version` that `next_due_at` was worked out
    /// from: if the schedule was edited since, the edit's due time stays.
    pub schedule_version: i64,
    /// Pause (`PauseReason::Error`) once this many runs in a row have failed.
    pub pause_after_failures: i64,
    /// Pause now with this reason (refused credentials).
    pub pause_reason: Option<PauseReason>,
}

impl Store {
    pub async fn insert_integration(&self, new: &NewIntegration<'_>) -> Result<i64> {
        let now = self.now();
        let schedule = new.schedule.map(serde_json::to_string).transpose()?;
        let id = sqlx::query_scalar(
            "INSERT INTO integrations (plugin_id, instance_type, group_id, name, config, schedule, next_due_at,
                 paused_reason, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $8, $8) RETURNING id",
        )
        .bind(new.plugin_id)
        .bind(new.instance_type)
        .bind(new.group_id)
        .bind(new.name)
        .bind(new.config)
        .bind(schedule)
        .bind(new.first_due_at)
        .bind(now)
        .bind(new.paused_reason.map(PauseReason::as_str))
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    pub async fn integration(&self, id: i64) -> Result<Option<Integration>> {
        get(&mut *self.pool().acquire().await?, id).await
    }

    pub async fn integrations(&self) -> Result<Vec<Integration>> {
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM integrations ORDER BY id")))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(integration)
            .collect()
    }

    /// Up to `limit` integrations matching `filter` with ids above `after`, by id.
    pub async fn integrations_page(
        &self,
        filter: &IntegrationFilter,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Integration>> {
        let mut conditions = Conditions::default();
        if let Some(plugin_id) = &filter.plugin_id {
            conditions.text("plugin_id = ?", plugin_id);
        }
        if let Some(group_id) = filter.group_id {
            conditions.int("group_id = ?", group_id);
        }
        if let Some(name) = &filter.name_contains {
            conditions.name_contains("name", name);
        }
        match filter.enabled {
            Some(true) => conditions.fixed("paused_reason IS NULL"),
            Some(false) => conditions.fixed("paused_reason IS NOT NULL"),
            None => &mut conditions,
        };
        if filter.failing {
            conditions.fixed(&format!("(consecutive_failures > 0 OR {})", super::jobs::WITH_FAILED_PROCESSING));
        }
        if filter.without_host_tasks {
            conditions.text("plugin_id <> ?", HOST_PLUGIN_ID);
        }
        match &filter.instance_types {
            InstanceTypes::All => &mut conditions,
            InstanceTypes::Only(types) => conditions.pair_in(("plugin_id", "instance_type"), types),
            InstanceTypes::AllBut(types) => conditions.pair_not_in(("plugin_id", "instance_type"), types),
        };
        let query = conditions.page(COLUMNS, "integrations", after, limit);
        query.fetch_all(self.pool()).await?.into_iter().map(integration).collect()
    }

    /// How many integrations each of `group_ids` has (groups without any are left out).
    pub async fn integration_counts(&self, group_ids: &[i64]) -> Result<BTreeMap<i64, i64>> {
        if group_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = format!(
            "SELECT group_id, COUNT(*) AS n FROM integrations WHERE {} GROUP BY group_id",
            super::json_ids_match(self.backend(), "group_id", 1)
        );
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(super::json_param(&group_ids)).fetch_all(self.pool()).await?;
        rows.into_iter().map(|row| Ok((row.try_get("group_id")?, row.try_get("n")?))).collect()
    }

    /// Replace the name and config.
    pub async fn update_integration(&self, id: i64, name: &str, config: &str) -> Result<bool> {
        let result = sqlx::query("UPDATE integrations SET name = $2, config = $3, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(name)
            .bind(config)
            .bind(self.now())
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Delete an integration with its state, runs, jobs and records.
    pub async fn delete_integration(&self, id: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        records::record_event_deletions(&mut tx, DeletedWith::Integration(id), self.now()).await?;
        let result = sqlx::query("DELETE FROM integrations WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Replace the sync settings: the schedule (`None`: the instance type's
    /// default), the pause, and when it is next due. Resuming clears the
    /// failure streak. A new due time withdraws a run queued ahead of the old
    /// one. With [`NextDue::Unchanged`] (neither the schedule nor the pause
    /// changed) the pause and due time stay as stored, and with
    /// [`PauseEdit::Keep`] the pause does: a run's failure may have paused it
    /// since the caller read it (then it is due at no time).
    pub async fn save_sync_settings(
        &self,
        id: i64,
        schedule: Option<&Schedule>,
        pause: PauseEdit,
        next_due: NextDue,
    ) -> Result<bool> {
        let schedule = schedule.map(serde_json::to_string).transpose()?;
        let (keep, next_due_at) = match next_due {
            NextDue::Unchanged => (true, None),
            NextDue::At(at) => (false, at),
        };
        let (keep_pause, paused_reason) = match pause {
            PauseEdit::Keep => (true, None),
            PauseEdit::To(reason) => (false, reason),
        };
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE integrations SET schedule = $2, updated_at = $5,
                 schedule_version = CASE WHEN $6 THEN schedule_version ELSE schedule_version + 1 END,
                 paused_reason = CASE WHEN $6 OR $7 THEN paused_reason ELSE $3 END,
                 next_due_at = CASE WHEN $6 THEN next_due_at
                                    WHEN (CASE WHEN $7 THEN paused_reason ELSE $3 END) IS NOT NULL THEN NULL
                                    ELSE $4 END,
                 next_due_reason = CASE WHEN $6 THEN next_due_reason END,
                 consecutive_failures = CASE WHEN NOT $6 AND NOT $7 AND $3 IS NULL AND paused_reason IS NOT NULL
                                             THEN 0 ELSE consecutive_failures END
             WHERE id = $1 RETURNING paused_reason",
        )
        .bind(id)
        .bind(schedule)
        .bind(paused_reason.map(PauseReason::as_str))
        .bind(next_due_at)
        .bind(self.now())
        .bind(keep)
        .bind(keep_pause)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        if !keep {
            let paused = row.try_get::<Option<String>, _>("paused_reason")?.is_some();
            super::jobs::withdraw_scheduled(&mut tx, self.backend(), &[id], Withdrawal::of_change(paused), self.now())
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Pause (with a reason) or resume (`None`, due at `next_due_at`; the
    /// failure streak of one that was paused starts again),
    /// withdrawing a run queued ahead. Like an edit of the schedule, it holds
    /// over the end of a fetch running meanwhile (`schedule_version`).
    pub async fn set_integration_paused(
        &self,
        id: i64,
        reason: Option<PauseReason>,
        next_due_at: Option<i64>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let result = sqlx::query(
            "UPDATE integrations SET paused_reason = $2, next_due_at = $3, next_due_reason = NULL, updated_at = $4,
                 schedule_version = schedule_version + 1,
                 consecutive_failures = CASE WHEN $2 IS NULL AND paused_reason IS NOT NULL THEN 0
                                             ELSE consecutive_failures END
             WHERE id = $1",
        )
        .bind(id)
        .bind(reason.map(PauseReason::as_str))
        .bind(if reason.is_some() { None } else { next_due_at })
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        let which = Withdrawal::of_change(reason.is_some());
        super::jobs::withdraw_scheduled(&mut tx, self.backend(), &[id], which, self.now()).await?;
        tx.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Queue a fetch job for every active integration due by `until`, to
    /// run at its due time, and clear its `next_due_at` (it is computed again
    /// when the run ends), in one transaction. However long the host was
    /// down, that is one job each. The scheduler queues a little ahead, so at
    /// the due time only the claim stands between it and the run.
    /// Set-based, as thousands fall due a second: on PostgreSQL one statement
    /// (every statement is a round trip), on SQLite three.
    pub async fn enqueue_due_fetches(&self, until: i64, max_attempts: i64, limit: i64) -> Result<Vec<i64>> {
        let now = self.now();
        let args = serde_json::to_string(&JobArgs::new(Trigger::Schedule))?;
        let queue_job = "INSERT INTO jobs (queue, integration_id, args, max_attempts, run_at, created_at, updated_at)
             SELECT $1, d.id, $2, $3, d.next_due_at, $4, $4 FROM";
        let unless_waiting =
            "NOT EXISTS (SELECT 1 FROM jobs WHERE queue = $1 AND integration_id = d.id AND state = 'available')
             ORDER BY d.next_due_at, d.id";
        if self.backend() == Backend::Postgres {
            // No key changes: a run's start or end holding the integration
            // (key share, see `lock_order`) does not make the pass skip it.
            let sql = format!(
                "WITH due AS (
                     SELECT id, next_due_at FROM integrations WHERE next_due_at <= $6 AND paused_reason IS NULL
                     ORDER BY next_due_at, id LIMIT $5 FOR NO KEY UPDATE SKIP LOCKED),
                 queued AS ({queue_job} due d WHERE {unless_waiting})
                 UPDATE integrations SET next_due_at = NULL, next_due_reason = NULL
                 WHERE {} RETURNING id",
                super::any_of("id", "id FROM due")
            );
            let query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
            let query = query.bind(Queue::Fetch.as_str()).bind(&args).bind(max_attempts).bind(now).bind(limit);
            return Ok(query.bind(until).fetch_all(self.pool()).await?);
        }
        let mut tx = self.begin().await?;
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM integrations WHERE next_due_at <= $1 AND paused_reason IS NULL
             ORDER BY next_due_at, id LIMIT $2",
        )
        .bind(until)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if due.is_empty() {
            return Ok(due);
        }
        let ids = super::json_param(&due);
        let sql = format!(
            "{queue_job} integrations d WHERE {} AND {unless_waiting}",
            super::json_ids_match(Backend::Sqlite, "d.id", 5)
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql));
        query.bind(Queue::Fetch.as_str()).bind(&args).bind(max_attempts).bind(now).bind(&ids).execute(&mut *tx).await?;
        let sql = format!(
            "UPDATE integrations SET next_due_at = NULL, next_due_reason = NULL WHERE {}",
            super::json_ids_match(Backend::Sqlite, "id", 1)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&ids).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(due)
    }

    /// The earliest `next_due_at` of an active integration.
    pub async fn earliest_due_at(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MIN(next_due_at) FROM integrations WHERE paused_reason IS NULL")
            .fetch_one(self.pool())
            .await?)
    }

    /// Integrations by id (missing ids are left out).
    pub async fn integrations_by_id(&self, ids: &[i64]) -> Result<Vec<Integration>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql =
            format!("SELECT {COLUMNS} FROM integrations WHERE {}", super::json_ids_match(self.backend(), "id", 1));
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(super::json_param(&ids));
        query.fetch_all(self.pool()).await?.into_iter().map(integration).collect()
    }
}

pub(super) async fn get(conn: &mut Connection, id: i64) -> Result<Option<Integration>> {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM integrations WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(integration)
        .transpose()
}

/// A success resets the failure streak; a failure extends it and pauses the
/// integration (`PauseReason::Error`) at the threshold, or at once with
/// `end.pause_reason` (refused credentials).
pub(super) async fn finish_run(conn: &mut Connection, id: i64, end: &RunEnd, now: i64) -> Result<RunEnded> {
    if end.success {
        let set_due = finish_successes(conn, &[(id, end)], now).await?.contains(&id);
        return Ok(RunEnded { set_due, paused: None });
    }
    if !end.fetched {
        return Ok(RunEnded::default());
    }
    let row = sqlx::query(
        "UPDATE integrations SET consecutive_failures = consecutive_failures + 1, last_started_at = $6,
             paused_reason = CASE
                 WHEN paused_reason IS NOT NULL THEN paused_reason
                 WHEN $5 IS NOT NULL THEN $5
                 WHEN consecutive_failures + 1 >= $3 THEN $7
                 ELSE NULL END,
             next_due_at = CASE
                 WHEN paused_reason IS NOT NULL OR $5 IS NOT NULL OR consecutive_failures + 1 >= $3 THEN NULL
                 WHEN schedule_version = $8 THEN $2
                 ELSE next_due_at END,
             next_due_reason = CASE WHEN schedule_version = $8 THEN NULL ELSE next_due_reason END,
             updated_at = $4
         WHERE id = $1 RETURNING paused_reason, consecutive_failures, schedule_version",
    )
    .bind(id)
    .bind(end.next_due_at)
    .bind(end.pause_after_failures)
    .bind(now)
    .bind(end.pause_reason.map(PauseReason::as_str))
    .bind(end.started_at)
    .bind(PauseReason::Error.as_str())
    .bind(end.schedule_version)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(RunEnded::default()) };
    let reason = row.try_get::<Option<String>, _>("paused_reason")?.as_deref().map(PauseReason::parse).transpose()?;
    let streak: i64 = row.try_get("consecutive_failures")?;
    // Only the failure that crossed the threshold (or forced the pause) reports it.
    let newly = match (reason, end.pause_reason) {
        (Some(r), Some(forced)) => r == forced,
        (Some(r), None) => r == PauseReason::Error && streak == end.pause_after_failures,
        _ => false,
    };
    let set_due = row.try_get::<i64, _>("schedule_version")? == end.schedule_version;
    Ok(RunEnded { set_due, paused: reason.filter(|_| newly) })
}

/// What writing a fetch's end did to its integration.
#[derive(Default)]
pub(super) struct RunEnded {
    /// Its schedule was still the one the fetch started on, so the end set
    /// the next due time (not so for an integration since deleted).
    pub set_due: bool,
    /// The pause this run caused, if it did.
    pub paused: Option<PauseReason>,
}

/// Record many successful runs in one statement (the common case; failures
/// go through [`finish_run`], which may pause). Returns the integrations
/// whose schedule was still the one their run started on: each fetch among
/// them set the next due time (see [`RunEnd::schedule_version`]).
pub(super) async fn finish_successes(
    conn: &mut Connection,
    ends: &[(i64, &RunEnd)],
    now: i64,
) -> Result<BTreeSet<i64>> {
    if ends.is_empty() {
        return Ok(BTreeSet::new());
    }
    // Only a fetch (fetched = 1) moves the schedule and the fetch history.
    let columns = [
        ("id", "bigint"),
        ("started_at", "bigint"),
        ("next_due_at", "bigint"),
        ("fetched", "bigint"),
        ("next_due_reason", "text"),
        ("schedule_version", "bigint"),
    ];
    let set = "last_success_at = v.started_at, consecutive_failures = 0,
        last_started_at = CASE WHEN v.fetched = 1 THEN v.started_at ELSE integrations.last_started_at END,
        last_fetched_at = CASE WHEN v.fetched = 1 THEN v.started_at ELSE integrations.last_fetched_at END,
        next_due_at = CASE
            WHEN v.fetched = 0 OR integrations.schedule_version <> v.schedule_version THEN integrations.next_due_at
            WHEN integrations.paused_reason IS NULL THEN v.next_due_at ELSE NULL END,
        next_due_reason = CASE
            WHEN v.fetched = 0 OR integrations.schedule_version <> v.schedule_version THEN integrations.next_due_reason
            WHEN integrations.paused_reason IS NULL THEN v.next_due_reason ELSE NULL END,
        updated_at = $1";
    let sql = super::json_update(Backend::of(conn), "integrations", set, 2, &columns);
    // SQLite's RETURNING sees only the updated table: the versions are
    // compared here.
    let sql = format!("{sql} RETURNING integrations.id, integrations.schedule_version");
    let rows: Vec<_> = (ends.iter())
        .map(|(id, end)| {
            let fetched = i64::from(end.fetched);
            (id, end.started_at, end.next_due_at, fetched, &end.next_due_reason, end.schedule_version)
        })
        .collect();
    let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(super::json_param(&rows));
    let versions: BTreeMap<i64, i64> = (query.fetch_all(conn).await?.iter())
        .map(|row| Ok((row.try_get("id")?, row.try_get("schedule_version")?)))
        .collect::<Result<_>>()?;
    Ok(ends.iter().filter(|(id, end)| versions.get(id) == Some(&end.schedule_version)).map(|(id, _)| *id).collect())
}

/// An integration's due time as a fetch's start read it (with the schedule
/// version it was read at), and the next one the fetch's end will set.
#[derive(Debug, Clone, Copy)]
pub struct DueAtStart {
    pub read: i64,
    pub schedule_version: i64,
    pub next: i64,
}

/// Fetches are starting, each of `(integration id, due at its start)`. A
/// fetch meets its integration's due time if that falls before the next one
/// its end will set (an operator's run just before the scheduler's pass, or
/// one of an interval schedule that the fetch's start resets); it is cleared
/// as queueing clears it, for the end to set. Otherwise the scheduler queues
/// a second fetch to follow this one, as a cron time after the start needs.
/// Only the due time the start read is met: one an edit set since stays,
/// even the same time (the fetch's end will not set the next).
pub(super) async fn meet_due(conn: &mut Connection, meeting: &[(i64, DueAtStart)]) -> Result<()> {
    if meeting.is_empty() {
        return Ok(());
    }
    let set = "next_due_at = NULL, next_due_reason = NULL";
    let columns = [("id", "bigint"), ("due", "bigint"), ("version", "bigint"), ("next", "bigint")];
    let sql = super::json_update(Backend::of(conn), "integrations", set, 1, &columns);
    let sql = format!(
        "{sql} AND integrations.next_due_at = v.due AND integrations.schedule_version = v.version AND v.due < v.next"
    );
    let rows: Vec<_> = meeting.iter().map(|(id, due)| (id, due.read, due.schedule_version, due.next)).collect();
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(super::json_param(&rows)).execute(conn).await?;
    Ok(())
}

/// A fetch of `id` ended without a run recorded: the due time it may have
/// met is owed, as `due_at` (an active integration without one only).
pub(super) async fn owe_due(conn: &mut Connection, id: i64, due_at: i64) -> Result<()> {
    sqlx::query(
        "UPDATE integrations SET next_due_at = $2 WHERE id = $1 AND next_due_at IS NULL AND paused_reason IS NULL",
    )
    .bind(id)
    .bind(due_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Pause every active integration of a group with `reason`; returns them.
pub(super) async fn pause_group(
    conn: &mut Connection,
    group_id: i64,
    reason: PauseReason,
    now: i64,
) -> Result<Vec<Integration>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE integrations SET paused_reason = $2, next_due_at = NULL, next_due_reason = NULL, updated_at = $3
         WHERE group_id = $1 AND paused_reason IS NULL RETURNING {COLUMNS}"
    )))
    .bind(group_id)
    .bind(reason.as_str())
    .bind(now)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(integration)
    .collect()
}

/// Resume a reconnected group's integrations that waited for it: those
/// `on_schedule` says follow a schedule are due now, the others (manual)
/// wait for an operator.
pub(super) async fn resume_reconnected(
    conn: &mut Connection,
    group_id: i64,
    now: i64,
    on_schedule: impl Fn(&Integration) -> bool,
) -> Result<()> {
    let waiting: Vec<Integration> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM integrations WHERE group_id = $1 AND paused_reason = $2"
    )))
    .bind(group_id)
    .bind(PauseReason::NeedsReconnect.as_str())
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(integration)
    .collect::<Result<_>>()?;
    for waited in waiting {
        sqlx::query(
            "UPDATE integrations SET paused_reason = NULL, next_due_at = $2, next_due_reason = NULL,
                 consecutive_failures = 0, updated_at = $3, schedule_version = schedule_version + 1
             WHERE id = $1",
        )
        .bind(waited.id)
        .bind(on_schedule(&waited).then_some(now))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
