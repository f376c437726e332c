//! `oauth_authorizations`: authorization-code flows started and not yet called
//! back. A row lives from `/oauth/<plugin>/start` until its callback (which
//! takes it, so a `state` works once) or until it expires unused.

use super::Store;
use anyhow::Result;
use sqlx::Row;

/// A flow waiting for its callback.
pub struct PendingAuthorization {
    pub state: String,
    pub plugin_id: String,
    pub group_name: String,
    pub redirect_uri: String,
    /// The PKCE verifier, when the provider supports PKCE.
    pub code_verifier: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// Record a flow, and forget flows started before `started_after` that
    /// were never called back.
    pub async fn insert_oauth_authorization(&self, pending: &PendingAuthorization, started_after: i64) -> Result<()> {
        let sealed = pending.code_verifier.as_ref().map(|v| self.secrets.seal(v.as_bytes()));
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM oauth_authorizations WHERE created_at < $1")
            .bind(started_after)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_authorizations (state, plugin_id, group_name, redirect_uri, code_verifier, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&pending.state)
        .bind(&pending.plugin_id)
        .bind(&pending.group_name)
        .bind(&pending.redirect_uri)
        .bind(sealed)
        .bind(pending.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remove and return the flow `state` names, and forget flows older than
    /// `started_after` that were never called back.
    pub async fn take_oauth_authorization(
        &self,
        state: &str,
        started_after: i64,
    ) -> Result<Option<PendingAuthorization>> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM oauth_authorizations WHERE created_at < $1 AND state <> $2")
            .bind(started_after)
            .bind(state)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "DELETE FROM oauth_authorizations WHERE state = $1
             RETURNING state, plugin_id, group_name, redirect_uri, code_verifier, created_at",
        )
        .bind(state)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Option<String> = row.try_get("code_verifier")?;
        let code_verifier = sealed.map(|s| self.secrets.open(&s).map(|v| String::from_utf8_lossy(&v).into_owned()));
        Ok(Some(PendingAuthorization {
            state: row.try_get("state")?,
            plugin_id: row.try_get("plugin_id")?,
            group_name: row.try_get("group_name")?,
            redirect_uri: row.try_get("redirect_uri")?,
            code_verifier: code_verifier.transpose()?,
            created_at: row.try_get("created_at")?,
        }))
    }
}
