//! `raw_batches`: upstream data as fetched, stored at checkpoints and then
//! turned into records by `process`.

use super::jobs::{self, JobLease};
use super::{Connection, Store, lock_order, state};
use anyhow::Result;
use sqlx::Row;
use std::collections::BTreeSet;

/// What became of a batch whose processing failed for a passing reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFate {
    Pending {
        attempts: i64,
    },
    /// It had its last attempt.
    Failed,
}

/// A batch that could not be turned into records, kept for an operator.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FailedBatch {
    pub id: i64,
    pub integration_id: i64,
    pub kind: String,
    pub attempts: i64,
    pub error: String,
    /// Size of the stored payload.
    pub bytes: i64,
    pub created_at: i64,
    pub failed_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub id: i64,
    pub kind: String,
    pub payload: String,
}

/// What a checkpoint makes durable.
pub struct Checkpoint<'a> {
    pub integration_id: i64,
    pub sync_run_id: i64,
    /// The lease of the run's job: nothing is stored once it is lost.
    pub lease: Option<&'a JobLease>,
    /// `(kind, payload)` in emit order.
    pub batches: &'a [(String, String)],
    /// `Some(value)` sets the key, `None` deletes it.
    pub state: &'a [(String, Option<String>)],
    /// The integration may hold no more state keys than this afterwards.
    pub max_state_keys: i64,
}

/// Which stored batches a processing pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSelection {
    /// Stored but not yet processed, including those a crashed run left behind.
    Pending,
    /// Processed and kept, stored at or after `since`: what a reprocess reads.
    Kept { since: Option<i64> },
}

impl Store {
    /// Store the batches and the state changes in one transaction: a crash
    /// leaves either all of them or none.
    pub async fn commit_checkpoint(&self, checkpoint: &Checkpoint<'_>) -> Result<()> {
        let now = self.now();
        let mut tx = self.begin().await?;
        // Before the job's row and the state's (see `lock_order`).
        let integration = [checkpoint.integration_id];
        if checkpoint.batches.is_empty() {
            lock_order::hold_integrations(&mut tx, &integration).await?;
        } else {
            lock_order::hold_batch_order(&mut tx, &integration).await?;
        }
        if let Some(lease) = checkpoint.lease {
            anyhow::ensure!(jobs::count_checkpoint(&mut tx, lease).await?, "{}", jobs::LEASE_LOST);
        }
        for (kind, payload) in checkpoint.batches {
            insert_pending(&mut tx, checkpoint.integration_id, Some(checkpoint.sync_run_id), kind, payload, now)
                .await?;
        }
        for (key, value) in checkpoint.state {
            match value {
                Some(value) => state::put(&mut tx, checkpoint.integration_id, key, value, now).await?,
                None => state::delete(&mut tx, checkpoint.integration_id, key).await?,
            }
        }
        if checkpoint.state.iter().any(|(_, value)| value.is_some()) {
            let keys = state::count(&mut tx, checkpoint.integration_id).await?;
            anyhow::ensure!(
                keys <= checkpoint.max_state_keys,
                "the integration would hold {keys} state keys; at most {} are allowed (limits.state_keys)",
                checkpoint.max_state_keys
            );
        }
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` batches of `which` with ids above `after`, oldest first.
    pub async fn batches(
        &self,
        integration_id: i64,
        which: BatchSelection,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredBatch>> {
        let (status, since) = match which {
            BatchSelection::Pending => ("pending", None),
            BatchSelection::Kept { since } => ("processed", since),
        };
        sqlx::query(
            "SELECT id, kind, payload FROM raw_batches
             WHERE integration_id = $1 AND status = $2 AND ($3 IS NULL OR created_at >= $3) AND id > $4
             ORDER BY id LIMIT $5",
        )
        .bind(integration_id)
        .bind(status)
        .bind(since)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(stored_batch)
        .collect()
    }

    /// A batch that cannot be processed, for good: kept, with why, until an
    /// operator retries it.
    pub async fn mark_batch_failed(&self, batch_id: i64, error: &str, lease: Option<&JobLease>) -> Result<()> {
        let mut tx = self.begin().await?;
        jobs::ensure_held(&mut tx, lease).await?;
        sqlx::query(
            "UPDATE raw_batches SET status = 'failed', attempts = attempts + 1, error = $2, processed_at = $3 WHERE id = $1",
        )
        .bind(batch_id)
        .bind(error)
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A batch that could not be processed for a passing reason: count the
    /// attempt and leave it pending, or mark it failed once it has had
    /// `max_attempts`.
    pub async fn defer_batch(
        &self,
        batch_id: i64,
        error: &str,
        max_attempts: i64,
        lease: Option<&JobLease>,
    ) -> Result<BatchFate> {
        let mut tx = self.begin().await?;
        jobs::ensure_held(&mut tx, lease).await?;
        let row = sqlx::query(
            "UPDATE raw_batches SET attempts = attempts + 1, error = $2,
                 status = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE status END,
                 processed_at = CASE WHEN attempts + 1 >= $3 THEN $4 ELSE processed_at END
             WHERE id = $1 RETURNING status, attempts",
        )
        .bind(batch_id)
        .bind(error)
        .bind(max_attempts)
        .bind(self.now())
        .fetch_one(&mut *tx)
        .await?;
        let fate = match row.try_get::<&str, _>("status")? {
            "failed" => BatchFate::Failed,
            _ => BatchFate::Pending { attempts: row.try_get("attempts")? },
        };
        tx.commit().await?;
        Ok(fate)
    }

    /// Failed batches, newest first, without their payloads.
    pub async fn failed_batches(&self, limit: i64) -> Result<Vec<FailedBatch>> {
        sqlx::query(
            "SELECT id, integration_id, kind, attempts, error, created_at, processed_at, CAST(OCTET_LENGTH(payload) AS BIGINT) AS bytes
             FROM raw_batches WHERE status = 'failed' ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|row| {
            Ok(FailedBatch {
                id: row.try_get("id")?,
                integration_id: row.try_get("integration_id")?,
                kind: row.try_get("kind")?,
                attempts: row.try_get("attempts")?,
                error: row.try_get::<Option<String>, _>("error")?.unwrap_or_default(),
                bytes: row.try_get("bytes")?,
                created_at: row.try_get("created_at")?,
                failed_at: row.try_get("processed_at")?,
            })
        })
        .collect()
    }

    /// Make failed batches pending again with fresh attempts: one (`Some(id)`)
    /// or all. Returns the integrations they belong to.
    pub async fn retry_failed_batches(&self, id: Option<i64>) -> Result<Vec<i64>> {
        let mut integrations: Vec<i64> = sqlx::query_scalar(
            "UPDATE raw_batches SET status = 'pending', attempts = 0, error = NULL, processed_at = NULL
             WHERE status = 'failed' AND ($1 IS NULL OR id = $1) RETURNING integration_id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        integrations.sort_unstable();
        integrations.dedup();
        Ok(integrations)
    }

    /// Delete batches processed before `before`: their records are stored,
    /// and the raw payloads would otherwise grow the database for ever.
    /// Pending and failed batches stay.
    pub async fn prune_processed_batches(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM raw_batches WHERE status = 'processed' AND processed_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Which of these integrations have raw batches waiting to be processed.
    pub async fn with_pending_batches(&self, integration_ids: &[i64]) -> Result<BTreeSet<i64>> {
        if integration_ids.is_empty() {
            return Ok(BTreeSet::new());
        }
        let sql = format!(
            "SELECT DISTINCT integration_id FROM raw_batches WHERE status = 'pending' AND {}",
            super::json_ids_match(self.backend(), "integration_id", 1)
        );
        let query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(super::json_param(&integration_ids));
        Ok(query.fetch_all(self.pool()).await?.into_iter().collect())
    }
}

pub(super) async fn mark_processed(conn: &mut Connection, batch_id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE raw_batches SET status = 'processed', processed_at = $2 WHERE id = $1")
        .bind(batch_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The newest of the integration's batches older than `batch_id` still to
/// be processed (pending, or failed and retryable): it may be processed after
/// that one.
pub(super) async fn newest_older_unprocessed(
    conn: &mut Connection,
    integration_id: i64,
    batch_id: i64,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT MAX(id) FROM raw_batches WHERE integration_id = $1 AND status IN ('pending', 'failed') AND id < $2",
    )
    .bind(integration_id)
    .bind(batch_id)
    .fetch_one(conn)
    .await?)
}

/// Store a batch to be processed. `sync_run_id` is the run that fetched it
/// (none for a webhook delivery's).
pub(super) async fn insert_pending(
    conn: &mut Connection,
    integration_id: i64,
    sync_run_id: Option<i64>,
    kind: &str,
    payload: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO raw_batches (integration_id, sync_run_id, kind, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(integration_id)
    .bind(sync_run_id)
    .bind(kind)
    .bind(payload)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

fn stored_batch(row: &sqlx::any::AnyRow) -> Result<StoredBatch> {
    Ok(StoredBatch { id: row.try_get("id")?, kind: row.try_get("kind")?, payload: row.try_get("payload")? })
}
