//! `leases`: named, expiring ownership, e.g. "scheduler" leadership when
//! several processes share one database.

use super::Store;
use anyhow::Result;

impl Store {
    /// Take or renew the lease `name` for `owner` until `now + ttl_ms`.
    /// Succeeds when `owner` already holds it or the holder let it expire.
    pub async fn acquire_lease(&self, name: &str, owner: &str, ttl_ms: i64) -> Result<bool> {
        let now = self.now();
        let holder: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
             WHERE leases.owner = excluded.owner OR leases.expires_at < $4
             RETURNING owner",
        )
        .bind(name)
        .bind(owner)
        .bind(now + ttl_ms)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(holder.as_deref() == Some(owner))
    }

    /// Who holds the lease `name`, expired or not.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT owner FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Take the lease `name` from `holder`, known to have ended, for `owner`
    /// until `now + ttl_ms`; fails if someone else took it meanwhile.
    pub async fn take_lease_from(&self, name: &str, holder: &str, owner: &str, ttl_ms: i64) -> Result<bool> {
        let taken = sqlx::query("UPDATE leases SET owner = $3, expires_at = $4 WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(holder)
            .bind(owner)
            .bind(self.now() + ttl_ms)
            .execute(self.pool())
            .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Give the lease up early (clean shutdown), so another process takes over at once.
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
