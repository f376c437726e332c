//! `oauth_start_links`: start links already used, so each works once.

use super::Store;
use anyhow::Result;

impl Store {
    /// Record that the start link `nonce` (valid until `expires_at`) is being
    /// used. False when it was used before. Expired entries are forgotten:
    /// their links are refused by their expiry anyway.
    pub async fn use_oauth_start_link(&self, nonce: &str, expires_at: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM oauth_start_links WHERE expires_at < $1").bind(self.now()).execute(&mut *tx).await?;
        let inserted = sqlx::query(
            "INSERT INTO oauth_start_links (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }

    /// Whether the start link `nonce` was used.
    pub async fn oauth_start_link_used(&self, nonce: &str) -> Result<bool> {
        let found: Option<String> = sqlx::query_scalar("SELECT nonce FROM oauth_start_links WHERE nonce = $1")
            .bind(nonce)
            .fetch_optional(self.pool())
            .await?;
        Ok(found.is_some())
    }
}
