//! `raw_batches`: upstream data as fetched, stored at checkpoints and then
//! turned into records by `process`.

use super::{Connection, Store, state};
use anyhow::Result;
use sqlx::Row;
use std::collections::BTreeSet;

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
    /// `(kind, payload)` in emit order.
    pub batches: &'a [(String, String)],
    /// `Some(value)` sets the key, `None` deletes it.
    pub state: &'a [(String, Option<String>)],
}

impl Store {
    /// Store the batches and the state changes in one transaction: a crash
    /// leaves either all of them or none.
    pub async fn commit_checkpoint(&self, checkpoint: &Checkpoint<'_>) -> Result<()> {
        let now = self.now();
        let mut tx = self.begin().await?;
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
        tx.commit().await?;
        Ok(())
    }

    /// Batches stored but not yet processed, oldest first (including those a
    /// crashed run left behind).
    pub async fn pending_batches(&self, integration_id: i64) -> Result<Vec<StoredBatch>> {
        sqlx::query(
            "SELECT id, kind, payload FROM raw_batches WHERE integration_id = $1 AND status = 'pending' ORDER BY id",
        )
        .bind(integration_id)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|row| {
            Ok(StoredBatch { id: row.try_get("id")?, kind: row.try_get("kind")?, payload: row.try_get("payload")? })
        })
        .collect()
    }

    pub async fn mark_batch_failed(&self, batch_id: i64, error: &str) -> Result<()> {
        sqlx::query("UPDATE raw_batches SET status = 'failed', error = $2, processed_at = $3 WHERE id = $1")
            .bind(batch_id)
            .bind(error)
            .bind(self.now())
            .execute(self.pool())
            .await?;
        Ok(())
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
