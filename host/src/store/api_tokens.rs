//! `api_tokens`: bearer tokens for the admin API, kept only as SHA-256 digests.

use super::{Backend, Store};
use anyhow::Result;
use serde::Serialize;
use sqlx::Row;

/// A stored admin token: never the token itself, which only its creator saw.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    /// To the minute; `None` if never used.
    pub last_used_at: Option<i64>,
}

/// How stale `last_used_at` may get: a request writes it at most this often.
const USE_RECORDED_EVERY_MS: i64 = 60_000;

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

    /// Whether a token with this digest exists; records its use (at most once a minute).
    pub async fn use_api_token(&self, token_sha256: &str) -> Result<bool> {
        let found = sqlx::query("SELECT id, last_used_at FROM api_tokens WHERE token_sha256 = $1")
            .bind(token_sha256)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = found else { return Ok(false) };
        let now = self.now();
        let last_used_at: Option<i64> = row.try_get("last_used_at")?;
        if last_used_at.is_none_or(|at| now - at >= USE_RECORDED_EVERY_MS) {
            // A note for the operator: failing to write it refuses no one.
            let written = sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(row.try_get::<i64, _>("id")?)
                .bind(now)
                .execute(self.pool())
                .await;
            if let Err(error) = written {
                tracing::warn!(error = %format!("{error:#}"), "recording an admin token's use failed");
            }
        }
        Ok(true)
    }

    /// Every stored token, oldest first.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query("SELECT id, name, created_at, last_used_at FROM api_tokens ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(ApiToken {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                })
            })
            .collect()
    }

    /// Revoke a token: requests bearing it are refused from now on. With
    /// `keep_one`, not the last one. Returns whether it went.
    pub async fn delete_api_token(&self, id: i64, keep_one: bool) -> Result<bool> {
        let mut tx = self.begin().await?;
        if keep_one && self.backend() == Backend::Postgres {
            // Two revocations at once would each read the other's token as
            // still there, and both go: the second waits here for the first,
            // and then reads it gone. (SQLite writes one at a time.)
            sqlx::query("SELECT id FROM api_tokens ORDER BY id FOR UPDATE").execute(&mut *tx).await?;
        }
        let deleted = sqlx::query(
            "DELETE FROM api_tokens WHERE id = $1 AND (NOT $2 OR EXISTS (SELECT 1 FROM api_tokens WHERE id <> $1))",
        )
        .bind(id)
        .bind(keep_one)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }
}
