//! `record_grants`: the groups whose records a task's group may read, as the
//! operator granted when creating it. A task reads its own group's records
//! and these, read-only; the queries that use them are in `records.rs`.

use super::{Connection, Store};
use anyhow::Result;

impl Store {
    /// The groups `reader` may read the records of, besides its own.
    pub async fn record_grants(&self, reader: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT source_group_id FROM record_grants WHERE reader_group_id = $1 ORDER BY source_group_id",
        )
        .bind(reader)
        .fetch_all(self.pool())
        .await?)
    }
}

/// Let `reader` read the records of each of `sources`, in the caller's
/// transaction (the group is created with its grants, or not at all).
pub(super) async fn grant_record_reads(conn: &mut Connection, reader: i64, sources: &[i64]) -> Result<()> {
    for source in sources {
        sqlx::query("INSERT INTO record_grants (reader_group_id, source_group_id) VALUES ($1, $2)")
            .bind(reader)
            .bind(source)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
