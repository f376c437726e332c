//! `sync_runs` and `sync_run_logs`: one row per attempt, with its counts, error
//! and the log lines the plugin wrote.

use super::records::RecordCounts;
use super::{Backend, Connection, Store};
use crate::domain::error_class::ErrorClass;
use crate::domain::queue::Queue;
use crate::domain::trigger::Trigger;
use anyhow::Result;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Running,
    Success,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "pending" => RunStatus::Pending,
            "running" => RunStatus::Running,
            "success" => RunStatus::Success,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            other => anyhow::bail!("unknown sync run status {other:?} in the database"),
        })
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncRun {
    pub id: i64,
    pub integration_id: i64,
    /// Which half of a sync it was: `fetch` stores batches, `process` (or
    /// `webhook`, a delivery's) turns stored batches into records.
    pub queue: Queue,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub attempt: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    /// Batches a fetch stored, or a processing run turned into records.
    pub batches: i64,
    /// Items the plugin said a fetch saw (0 for processing).
    pub items_seen: i64,
    /// What a processing run did to the records (0s for a fetch).
    pub records: RecordCounts,
    /// Progress the plugin last reported (long backfills).
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    pub error_class: Option<ErrorClass>,
    pub error_message: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub batches: i64,
    pub items_seen: i64,
    pub records: RecordCounts,
    /// `(class, message)` for a failed run.
    pub error: Option<(ErrorClass, String)>,
    /// Progress reported last and not yet saved: `(done, total)`.
    pub progress: Option<(u64, Option<u64>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub at: i64,
    pub level: String,
    pub message: String,
}

/// A run's log lines from a place on: `after` lines come before them, which
/// were written while the run ran.
#[derive(Debug, Clone, Default)]
pub struct LogTail {
    pub after: i64,
    pub lines: Vec<LogLine>,
}

/// A stored log line with its place in the run's log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunLogLine {
    /// 1, 2, ... in the order the lines were written.
    pub seq: i64,
    pub at: i64,
    pub level: String,
    pub message: String,
}

fn sync_run(row: AnyRow) -> Result<SyncRun> {
    Ok(SyncRun {
        id: row.try_get("id")?,
        integration_id: row.try_get("integration_id")?,
        queue: Queue::parse(row.try_get("queue")?)?,
        trigger: Trigger::parse(row.try_get("trigger")?)?,
        status: RunStatus::parse(row.try_get("status")?)?,
        attempt: row.try_get("attempt")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        duration_ms: row.try_get("duration_ms")?,
        batches: row.try_get("batches")?,
        items_seen: row.try_get("items_seen")?,
        records: RecordCounts {
            created: row.try_get("records_created")?,
            updated: row.try_get("records_updated")?,
            unchanged: row.try_get("records_unchanged")?,
            deleted: row.try_get("records_deleted")?,
        },
        progress_done: row.try_get("progress_done")?,
        progress_total: row.try_get("progress_total")?,
        error_class: row.try_get::<Option<String>, _>("error_class")?.as_deref().map(ErrorClass::parse).transpose()?,
        error_message: row.try_get("error_message")?,
    })
}

const COLUMNS: &str =
    "id, integration_id, queue, trigger, status, attempt, started_at, finished_at, duration_ms, batches, items_seen,
    records_created, records_updated, records_unchanged, records_deleted, progress_done, progress_total, error_class, error_message";

impl Store {
    /// Record that a run has started.
    pub async fn start_sync_run(&self, integration_id: i64, trigger: Trigger, attempt: i64) -> Result<i64> {
        let conn = &mut *self.pool().acquire().await?;
        let inserted =
            insert_running_many(conn, &[(integration_id, Queue::Fetch, trigger, attempt, None)], self.now()).await?;
        Ok(inserted[0].0)
    }

    pub async fn finish_sync_run(&self, id: i64, outcome: &RunOutcome) -> Result<()> {
        finish_many(&mut *self.pool().acquire().await?, &[(id, outcome)], self.now()).await
    }

    /// Close a run its worker can no longer finish (killed, shut down, its
    /// end not recordable), or a requested run whose job ended before
    /// starting it.
    pub async fn abandon_sync_run(&self, id: i64, status: RunStatus, class: ErrorClass, message: &str) -> Result<()> {
        abandon(&mut *self.pool().acquire().await?, id, status, class, message, self.now()).await
    }

    /// Delete finished runs older than `before`, and beyond the newest
    /// `keep_per_integration` fetches and as many processing runs of each
    /// integration (a sync is one of each: this keeps that many syncs). Each
    /// integration's latest successful processing run stays: it says whether
    /// a processing job in the failed list was overtaken (see
    /// `Store::processing_failures`).
    pub async fn prune_sync_runs(&self, before: i64, keep_per_integration: i64) -> Result<u64> {
        let result = sqlx::query(
            "DELETE FROM sync_runs WHERE status NOT IN ('pending', 'running') AND (finished_at < $1 OR id IN (
                 SELECT id FROM (
                     SELECT id, ROW_NUMBER() OVER (PARTITION BY integration_id, queue = 'fetch' ORDER BY id DESC) AS newer
                     FROM sync_runs) ranked
                 WHERE newer > $2))
               AND id NOT IN (
                 SELECT MAX(id) FROM sync_runs WHERE queue <> 'fetch' AND status = 'success' GROUP BY integration_id)",
        )
        .bind(before)
        .bind(keep_per_integration)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected())
    }

    pub async fn set_sync_run_progress(&self, id: i64, done: u64, total: Option<u64>) -> Result<()> {
        sqlx::query("UPDATE sync_runs SET progress_done = $2, progress_total = $3 WHERE id = $1")
            .bind(id)
            .bind(done as i64)
            .bind(total.map(|t| t as i64))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Write a run's log lines at their places (see [`append_logs`]).
    pub async fn append_sync_run_logs(&self, id: i64, after: i64, lines: &[LogLine]) -> Result<()> {
        let mut tx = self.begin().await?;
        append_logs(&mut tx, id, after, lines).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn sync_run(&self, id: i64) -> Result<Option<SyncRun>> {
        get(&mut *self.pool().acquire().await?, id).await
    }

    /// The newest `limit` runs of an integration, newest first.
    pub async fn sync_runs(&self, integration_id: i64, limit: i64) -> Result<Vec<SyncRun>> {
        self.sync_runs_page(integration_id, None, limit).await
    }

    /// Runs of `integration_ids` asked for or under way (`pending`, `running`), oldest first.
    pub async fn active_sync_runs(&self, integration_ids: &[i64]) -> Result<Vec<SyncRun>> {
        if integration_ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM sync_runs WHERE status IN ('pending', 'running') AND {} ORDER BY id",
            super::json_ids_match(self.backend(), "integration_id", 1)
        )))
        .bind(super::json_param(&integration_ids))
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(sync_run)
        .collect()
    }

    /// The error of each integration's newest failed fetch (the failures
    /// its streak counts), by integration, for those of `ids` that have one.
    pub async fn last_failures(&self, ids: &[i64]) -> Result<BTreeMap<i64, String>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = format!(
            "SELECT integration_id, error_message FROM sync_runs WHERE id IN (
                 SELECT MAX(id) FROM sync_runs WHERE {} AND status = 'failed' AND queue = 'fetch'
                 GROUP BY integration_id)",
            super::json_ids_match(self.backend(), "integration_id", 1)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(super::json_param(&ids)).fetch_all(self.pool()).await?;
        super::errors_by_integration(rows)
    }

    /// A page of an integration's runs, newest first, older than `before` (a run id).
    pub async fn sync_runs_page(&self, integration_id: i64, before: Option<i64>, limit: i64) -> Result<Vec<SyncRun>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM sync_runs WHERE integration_id = $1 AND ($2 IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(integration_id)
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(sync_run)
        .collect()
    }

    /// Up to `limit` of a run's log lines after line `after`, in order: a
    /// run's lines are written while it runs, so this follows it.
    pub async fn sync_run_log_page(&self, id: i64, after: i64, limit: i64) -> Result<Vec<RunLogLine>> {
        sqlx::query(
            "SELECT seq, at, level, message FROM sync_run_logs WHERE sync_run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|row| {
            Ok(RunLogLine {
                seq: row.try_get("seq")?,
                at: row.try_get("at")?,
                level: row.try_get("level")?,
                message: row.try_get("message")?,
            })
        })
        .collect()
    }

    pub async fn sync_run_logs(&self, id: i64) -> Result<Vec<LogLine>> {
        sqlx::query("SELECT at, level, message FROM sync_run_logs WHERE sync_run_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(|row| {
                Ok(LogLine { at: row.try_get("at")?, level: row.try_get("level")?, message: row.try_get("message")? })
            })
            .collect()
    }
}

pub(super) async fn get(conn: &mut Connection, id: i64) -> Result<Option<SyncRun>> {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM sync_runs WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(sync_run)
        .transpose()
}

/// Write log lines at their places in the run's log, after the first
/// `after`. A line already at its place stays: a write cut off by the run's
/// deadline may have landed, and the run's end writes those lines again.
pub(super) async fn append_logs(conn: &mut Connection, id: i64, after: i64, lines: &[LogLine]) -> Result<()> {
    for (seq, line) in (after + 1..).zip(lines) {
        sqlx::query(
            "INSERT INTO sync_run_logs (sync_run_id, seq, at, level, message) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (sync_run_id, seq) DO NOTHING",
        )
        .bind(id)
        .bind(seq)
        .bind(line.at)
        .bind(&line.level)
        .bind(&line.message)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A run an operator asked for, waiting for a worker: its id can be handed
/// out at once ("Update now" answers with it).
pub(super) async fn insert_pending(
    conn: &mut Connection,
    integration_id: i64,
    job_id: i64,
    queue: Queue,
    trigger: Trigger,
    now: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO sync_runs (integration_id, job_id, queue, trigger, status, created_at)
         VALUES ($1, $2, $5, $3, 'pending', $4) RETURNING id",
    )
    .bind(integration_id)
    .bind(job_id)
    .bind(trigger.as_str())
    .bind(now)
    .bind(queue.as_str())
    .fetch_one(conn)
    .await?)
}

/// Turn a pending run into the running one; false when it is no longer
/// pending. It keeps the trigger it was asked with (`manual`, even when it
/// joined a scheduled job), unless it turned out to be a backfill.
pub(super) async fn start_pending(
    conn: &mut Connection,
    id: i64,
    trigger: Trigger,
    attempt: i64,
    now: i64,
) -> Result<bool> {
    let result = sqlx::query(
        "UPDATE sync_runs SET status = 'running', attempt = $3, started_at = $4,
             trigger = CASE WHEN $2 = 'backfill' THEN $2 ELSE trigger END
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(trigger.as_str())
    .bind(attempt)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Insert `running` rows for many runs in one statement, from
/// `(integration id, queue, trigger, attempt, job id)`; returns `(run id, integration id)` pairs.
pub(super) async fn insert_running_many(
    conn: &mut Connection,
    starts: &[(i64, Queue, Trigger, i64, Option<i64>)],
    now: i64,
) -> Result<Vec<(i64, i64)>> {
    let columns = [
        ("integration_id", "bigint"),
        ("queue", "text"),
        ("trigger", "text"),
        ("attempt", "bigint"),
        ("job_id", "bigint"),
    ];
    let sql = format!(
        "INSERT INTO sync_runs (integration_id, queue, trigger, attempt, job_id, status, started_at, created_at)
         SELECT integration_id, queue, trigger, attempt, job_id, 'running', $1, $1 FROM {} AS v
         RETURNING id, integration_id",
        super::json_rows(Backend::of(conn), 2, &columns)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(super::json_param(&starts))
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("integration_id")?)))
        .collect()
}

/// Finish many runs in one statement.
pub(super) async fn finish_many(conn: &mut Connection, runs: &[(i64, &RunOutcome)], now: i64) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let columns = [
        ("id", "bigint"),
        ("status", "text"),
        ("batches", "bigint"),
        ("items_seen", "bigint"),
        ("created", "bigint"),
        ("updated", "bigint"),
        ("unchanged", "bigint"),
        ("deleted", "bigint"),
        ("error_class", "text"),
        ("error_message", "text"),
        ("progress_done", "bigint"),
        ("progress_total", "bigint"),
    ];
    let set = "status = v.status, finished_at = $1, duration_ms = $1 - sync_runs.started_at,
        batches = v.batches, items_seen = v.items_seen, records_created = v.created, records_updated = v.updated,
        records_unchanged = v.unchanged, records_deleted = v.deleted, error_class = v.error_class,
        error_message = v.error_message, progress_done = COALESCE(v.progress_done, sync_runs.progress_done),
        progress_total = COALESCE(v.progress_total, sync_runs.progress_total)";
    let sql = super::json_update(Backend::of(conn), "sync_runs", set, 2, &columns);
    let rows: Vec<_> = runs
        .iter()
        .map(|(id, outcome)| {
            let (error_class, error_message) = outcome.error.clone().unzip();
            let (done, total) = outcome.progress.unzip();
            let records = &outcome.records;
            serde_json::json!([
                id,
                outcome.status.as_str(),
                outcome.batches,
                outcome.items_seen,
                records.created,
                records.updated,
                records.unchanged,
                records.deleted,
                error_class,
                error_message,
                done,
                total.flatten()
            ])
        })
        .collect();
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(super::json_param(&rows)).execute(conn).await?;
    Ok(())
}

/// Of runs `ids`, those their worker ended (the rescue, and a worker's
/// shutdown, close a run as `lease-expired`): a worker whose write of their
/// ends landed although it never learnt so finds them here.
pub(super) async fn ended_by_their_worker(conn: &mut Connection, ids: &[i64]) -> Result<BTreeSet<i64>> {
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let sql = format!(
        "SELECT id FROM sync_runs WHERE {} AND status NOT IN ('pending', 'running')
           AND (error_class IS NULL OR error_class <> $2)",
        super::json_ids_match(Backend::of(conn), "id", 1)
    );
    let ended: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(super::json_param(&ids))
        .bind(ErrorClass::LeaseExpired.as_str())
        .fetch_all(conn)
        .await?;
    Ok(ended.into_iter().collect())
}

/// Close run `id` if it is still open, as abandoned at `now`.
pub(super) async fn abandon(
    conn: &mut Connection,
    id: i64,
    status: RunStatus,
    class: ErrorClass,
    message: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE sync_runs SET status = $2, finished_at = $3, duration_ms = $3 - started_at,
             error_class = $5, error_message = $4
         WHERE id = $1 AND status IN ('pending', 'running')",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(now)
    .bind(message)
    .bind(class.as_str())
    .execute(conn)
    .await?;
    Ok(())
}
