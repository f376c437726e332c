//! `quota_spends`: requests counted against plugins' declared quotas, per
//! group, over a sliding window: at most `limit` rows of a key in any
//! `period`, whichever process spends them. The provider may count in fixed
//! or rolling windows; a sliding window never overspends either.

use super::{Backend, Store};
use anyhow::Result;

/// What asking to spend one request of a quota came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaSpend {
    Spent,
    /// Spent out; the next request is allowed at this time (ms).
    Exhausted {
        until: i64,
    },
}

impl Store {
    /// Count one request against `key` of `group_id` if fewer than `limit`
    /// were counted in the last `period_ms`. Spends of one key are taken one
    /// at a time across processes (a transaction-scoped advisory lock on
    /// PostgreSQL; SQLite has one writer), so two processes cannot both take
    /// the last one.
    pub async fn spend_quota(&self, group_id: i64, key: &str, limit: u32, period_ms: i64) -> Result<QuotaSpend> {
        let now = self.now();
        let since = now - period_ms;
        let mut tx = self.begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($2, $1))")
                .bind(group_id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM quota_spends WHERE group_id = $1 AND quota_key = $2 AND spent_at <= $3")
            .bind(group_id)
            .bind(key)
            .bind(since)
            .execute(&mut *tx)
            .await?;
        let spent = sqlx::query(
            "INSERT INTO quota_spends (group_id, quota_key, spent_at)
             SELECT $1, $2, $3 WHERE (SELECT COUNT(*) FROM quota_spends WHERE group_id = $1 AND quota_key = $2) < $4",
        )
        .bind(group_id)
        .bind(key)
        .bind(now)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let outcome = if spent {
            QuotaSpend::Spent
        } else {
            let oldest: Option<i64> =
                sqlx::query_scalar("SELECT MIN(spent_at) FROM quota_spends WHERE group_id = $1 AND quota_key = $2")
                    .bind(group_id)
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?;
            QuotaSpend::Exhausted { until: oldest.unwrap_or(now) + period_ms }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}
