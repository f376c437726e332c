//! The order in which write transactions take the rows an integration's
//! deletion also takes. A deletion takes the integration's row first (a
//! group's, all its integrations in id order), then, integration by
//! integration, the rows that cascade from it (state, batches, records,
//! jobs) and its runs (by a trigger). A transaction that took one of those
//! first, or wrote a row whose foreign key then waited for the integration,
//! could wait for a deletion that waits for it, and PostgreSQL would abort
//! one of the two. So every transaction that writes both holds its
//! integrations here first, in id order. SQLite has one writer at a time and
//! needs none of this.

use super::{Backend, Connection};
use anyhow::Result;

/// Hold the integrations' rows (key share, which only a deletion or a
/// change of id waits for), in id order, in one statement.
pub(super) async fn hold_integrations(conn: &mut Connection, integration_ids: &[i64]) -> Result<()> {
    if integration_ids.is_empty() || Backend::of(conn) != Backend::Postgres {
        return Ok(());
    }
    let ids = super::json_ids_match(Backend::Postgres, "id", 1);
    let sql = format!("SELECT id FROM integrations WHERE {ids} ORDER BY id FOR KEY SHARE");
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(super::json_param(&integration_ids)).execute(conn).await?;
    Ok(())
}

/// Hold the integration of job `job_id` as [`hold_integrations`] does.
pub(super) async fn hold_integration_of_job(conn: &mut Connection, job_id: i64) -> Result<()> {
    if Backend::of(conn) == Backend::Postgres {
        sqlx::query(
            "SELECT id FROM integrations WHERE id = (SELECT integration_id FROM jobs WHERE id = $1) FOR KEY SHARE",
        )
        .bind(job_id)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Hold the integrations as [`hold_integrations`] does, and then make every
/// other transaction that stores batches of them wait for this one to end,
/// so that their batch ids follow commit order. A batch's id says which of
/// two is newer (a record keeps the newer one's data), and PostgreSQL's
/// sequence hands ids out at insert, not at commit: a checkpoint and a
/// webhook delivery storing at once could otherwise commit in the other
/// order, and the newer batch be processed before the older one was
/// visible, so that the older one overwrote it. Taken before any batch is
/// inserted.
pub(super) async fn hold_batch_order(conn: &mut Connection, integration_ids: &[i64]) -> Result<()> {
    hold_integrations(conn, integration_ids).await?;
    if Backend::of(conn) == Backend::Postgres {
        let mut ids = integration_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('raw_batches', $1))")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
