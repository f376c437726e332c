//! `api_tokens`: bearer tokens for the admin API, kept only as SHA-256 digests.

use super::Store;
use anyhow::Result;

impl Store {
    pub async fn api_token_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens").fetch_one(self.pool()).await?)
    }

    pub async fn insert_api_token(&self, name: &str, token_sha256: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO api_tokens (name, token_sha256, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(token_sha256)
        .bind(self.now())
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn api_token_exists(&self, token_sha256: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM api_tokens WHERE token_sha256 = $1")
            .bind(token_sha256)
            .fetch_optional(self.pool())
            .await?;
        Ok(found.is_some())
    }
}
