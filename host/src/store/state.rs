//! `integration_state`: each integration's private key-value state. Writes go
//! through [`super::raw_batches::commit_checkpoint`] so that state and batches
//! become durable together.

use super::{Connection, Store};
use anyhow::Result;
use std::collections::BTreeSet;

impl Store {
    pub async fn state_value(&self, integration_id: i64, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM integration_state WHERE integration_id = $1 AND key = $2")
            .bind(integration_id)
            .bind(key)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Those of `integration_ids` whose plugin has kept any state.
    pub async fn with_state(&self, integration_ids: &[i64]) -> Result<BTreeSet<i64>> {
        if integration_ids.is_empty() {
            return Ok(BTreeSet::new());
        }
        let sql = format!(
            "SELECT DISTINCT integration_id FROM integration_state WHERE {}",
            super::json_ids_match(self.backend(), "integration_id", 1)
        );
        let query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(super::json_param(&integration_ids));
        Ok(query.fetch_all(self.pool()).await?.into_iter().collect())
    }
}

pub(super) async fn put(conn: &mut Connection, integration_id: i64, key: &str, value: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO integration_state (integration_id, key, value, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (integration_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(integration_id)
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn delete(conn: &mut Connection, integration_id: i64, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM integration_state WHERE integration_id = $1 AND key = $2")
        .bind(integration_id)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many state keys an integration holds.
pub(super) async fn count(conn: &mut Connection, integration_id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM integration_state WHERE integration_id = $1")
        .bind(integration_id)
        .fetch_one(conn)
        .await?)
}
