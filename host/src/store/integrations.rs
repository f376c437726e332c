//! `integrations`: plugin + instance type + group + config + schedule.

use super::Store;
use anyhow::Result;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Serialize)]
pub struct Integration {
    pub id: i64,
    pub plugin_id: String,
    pub instance_type: String,
    pub group_id: i64,
    pub name: String,
    /// JSON object, valid against the instance type's config schema.
    pub config: String,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewIntegration<'a> {
    pub plugin_id: &'a str,
    pub instance_type: &'a str,
    pub group_id: i64,
    pub name: &'a str,
    pub config: &'a str,
}

const COLUMNS: &str =
    "id, plugin_id, instance_type, group_id, name, config, enabled, created_at, updated_at";

fn integration(row: AnyRow) -> Result<Integration> {
    Ok(Integration {
        id: row.try_get("id")?,
        plugin_id: row.try_get("plugin_id")?,
        instance_type: row.try_get("instance_type")?,
        group_id: row.try_get("group_id")?,
        name: row.try_get("name")?,
        config: row.try_get("config")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn insert_integration(&self, new: &NewIntegration<'_>) -> Result<i64> {
        let now = self.now();
        let row = sqlx::query(
            "INSERT INTO integrations (plugin_id, instance_type, group_id, name, config, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(new.plugin_id)
        .bind(new.instance_type)
        .bind(new.group_id)
        .bind(new.name)
        .bind(new.config)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn integration(&self, id: i64) -> Result<Option<Integration>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM integrations WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .map(integration)
        .transpose()
    }

    pub async fn integrations(&self) -> Result<Vec<Integration>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM integrations ORDER BY id"
        )))
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(integration)
        .collect()
    }
}
