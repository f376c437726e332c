//! `groups`: one connected account for one plugin, owning its credentials.

use super::Store;
use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: i64,
    pub plugin_id: String,
    pub name: String,
    pub status: String,
    pub created_at: i64,
}

/// Credential fields by name (`access_token`, `api_key`, ...). Deliberately not
/// `Debug`/`Serialize` so it cannot end up in a log line or a response.
#[derive(Clone, Default)]
pub struct Credentials(BTreeMap<String, String>);

impl Credentials {
    pub fn new(fields: BTreeMap<String, String>) -> Self {
        Credentials(fields)
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
}

fn group(row: AnyRow) -> Result<Group> {
    Ok(Group {
        id: row.try_get("id")?,
        plugin_id: row.try_get("plugin_id")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn insert_group(&self, plugin_id: &str, name: &str, credentials: &Credentials) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO groups (plugin_id, name, credentials, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(plugin_id)
        .bind(name)
        .bind(self.secrets.seal(serde_json::to_string(&credentials.0)?.as_bytes()))
        .bind(self.now())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn group(&self, id: i64) -> Result<Option<Group>> {
        sqlx::query("SELECT id, plugin_id, name, status, created_at FROM groups WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(group)
            .transpose()
    }

    pub async fn groups(&self) -> Result<Vec<Group>> {
        sqlx::query("SELECT id, plugin_id, name, status, created_at FROM groups ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(group)
            .collect()
    }

    pub async fn group_credentials(&self, id: i64) -> Result<Credentials> {
        let sealed: String =
            sqlx::query_scalar("SELECT credentials FROM groups WHERE id = $1").bind(id).fetch_one(self.pool()).await?;
        self.open_credentials(id, &sealed)
    }

    fn open_credentials(&self, group_id: i64, sealed: &str) -> Result<Credentials> {
        let json = self.secrets.open(sealed).with_context(|| format!("the credentials of group {group_id}"))?;
        Ok(Credentials(serde_json::from_slice(&json)?))
    }

    /// Credentials of each of these groups.
    pub async fn credentials_by_group(&self, group_ids: &BTreeSet<i64>) -> Result<BTreeMap<i64, Credentials>> {
        if group_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql =
            format!("SELECT id, credentials FROM groups WHERE id IN ({})", super::placeholders(1, group_ids.len()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in group_ids {
            query = query.bind(id);
        }
        let mut found = BTreeMap::new();
        for row in query.fetch_all(self.pool()).await? {
            let id: i64 = row.try_get("id")?;
            found.insert(id, self.open_credentials(id, row.try_get("credentials")?)?);
        }
        Ok(found)
    }
}
