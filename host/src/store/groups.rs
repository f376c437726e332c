//! `groups`: one connected account for one plugin, owning its credentials.

use super::integrations::{self, Integration};
use super::listing::Conditions;
use super::records::{self, DeletedWith};
use super::{Store, jobs, record_grants};
use crate::domain::group_status::GroupStatus;
use crate::domain::manifest::HOST_PLUGIN_ID;
use crate::domain::pause_reason::PauseReason;
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
    pub status: GroupStatus,
    /// Why it needs reconnecting, in the provider's words.
    pub status_reason: Option<String>,
    pub created_at: i64,
}

/// The plugin file a group was connected with (or last approved for), and
/// the hosts it declared: the hosts the group's runs may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApprovedPlugin {
    pub sha256: String,
    pub hosts: Vec<String>,
}

/// What a run of a group's integration may use.
#[derive(Clone)]
pub struct GroupAccess {
    pub credentials: Result<Credentials, Unreadable>,
    /// `None` for a group from before approvals were recorded.
    pub approved: Option<ApprovedPlugin>,
}

/// Credentials that could not be opened.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// Their version, to mark the group without racing a reconnect.
    pub version: i64,
    pub reason: String,
}

/// Which groups a listing wants; each field given narrows it.
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    pub plugin_id: Option<String>,
    /// Part of the name, in any case.
    pub name_contains: Option<String>,
    pub status: Option<GroupStatus>,
    /// Leave out the host's own group (it holds the host's tasks, not an account).
    pub without_host_group: bool,
}

/// Longest group name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// The integrations a group's deletion was confirmed to take with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmedIntegrations {
    /// None: a group that has any is not deleted.
    None,
    /// Whatever it has.
    All,
    /// As many as its deleter was shown: a group that has another number
    /// now (one was added or deleted since) is not deleted.
    Count(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupDeletion {
    Deleted,
    NotFound,
    /// Not deleted: it has this many integrations, and deleting these was not confirmed.
    HasIntegrations(i64),
}

/// Credential fields by name (`access_token`, `refresh_token`, `expires_at`,
/// `api_key`, `webhook_secret`, ...) and the version they were read at.
/// Deliberately not `Debug`/`Serialize` so it cannot end up in a log line or a response.
#[derive(Clone, Default)]
pub struct Credentials {
    fields: BTreeMap<String, String>,
    version: i64,
}

impl Credentials {
    pub fn new(fields: BTreeMap<String, String>) -> Self {
        Credentials { fields, version: 0 }
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    /// Set (`Some`) or remove (`None`) a field.
    pub fn set(&mut self, field: &str, value: Option<String>) {
        match value {
            Some(value) => self.fields.insert(field.to_string(), value),
            None => self.fields.remove(field),
        };
    }

    /// When the access token expires (ms), if the provider said.
    pub fn expires_at(&self) -> Option<i64> {
        self.get("expires_at")?.parse().ok()
    }

    /// Whether the host can get a new access token from these: a refresh
    /// token, or a secret pair it exchanges.
    pub fn renewable(&self) -> bool {
        self.get("refresh_token").is_some() || self.get("secret_id").is_some()
    }

    /// Bumped by every change; a refresh compares it to see whether another
    /// worker got there first.
    pub fn version(&self) -> i64 {
        self.version
    }
}

const GROUP_COLUMNS: &str = "id, plugin_id, name, status, status_reason, created_at";

fn group(row: AnyRow) -> Result<Group> {
    Ok(Group {
        id: row.try_get("id")?,
        plugin_id: row.try_get("plugin_id")?,
        name: row.try_get("name")?,
        status: GroupStatus::parse(row.try_get("status")?)?,
        status_reason: row.try_get("status_reason")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn insert_group(&self, plugin_id: &str, name: &str, credentials: &Credentials) -> Result<i64> {
        self.insert_group_reading(plugin_id, name, credentials, &[]).await
    }

    /// A new group whose tasks may also read the records of `reads` (groups).
    pub async fn insert_group_reading(
        &self,
        plugin_id: &str,
        name: &str,
        credentials: &Credentials,
        reads: &[i64],
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO groups (plugin_id, name, credentials, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(plugin_id)
        .bind(name)
        .bind(self.seal_credentials(credentials)?)
        .bind(self.now())
        .fetch_one(&mut *tx)
        .await?;
        record_grants::grant_record_reads(&mut tx, id, reads).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Store the credentials of a (re)connected account: a new group, or the
    /// group of that name, which is then `ok` again and its integrations paused
    /// for a reconnect resumed: due now if `on_schedule` (they follow a
    /// schedule), else (manual) left to the operator. `update` makes the
    /// credentials from the group's current ones (kept fields such as a
    /// webhook secret survive). Returns the group's id.
    pub async fn connect_group(
        &self,
        plugin_id: &str,
        name: &str,
        update: impl FnOnce(Option<&Credentials>) -> Credentials,
        on_schedule: impl Fn(&Integration) -> bool,
    ) -> Result<i64> {
        let now = self.now();
        let lock = match self.backend() {
            super::Backend::Postgres => "FOR UPDATE",
            super::Backend::Sqlite => "", // BEGIN IMMEDIATE already holds the write lock
        };
        // Tokens a provider issued once: a reconnect may have revoked the old.
        let mut tx = self.begin_durable().await?;
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, credentials, credentials_version FROM groups WHERE plugin_id = $1 AND name = $2 {lock}"
        )))
        .bind(plugin_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        // Credentials this host cannot open are replaced, not a reason to
        // refuse the reconnect that fixes them.
        let current = existing.as_ref().and_then(|row| match self.open_credentials(row) {
            Ok(credentials) => Some(credentials),
            Err(error) => {
                tracing::warn!(plugin_id, name, error = %format!("{error:#}"), "replacing unreadable credentials");
                None
            }
        });
        let credentials = update(current.as_ref());
        let row = sqlx::query(
            "INSERT INTO groups (plugin_id, name, credentials, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (plugin_id, name) DO UPDATE SET credentials = excluded.credentials,
                 credentials_version = groups.credentials_version + 1, status = 'ok', status_reason = NULL
             RETURNING id",
        )
        .bind(plugin_id)
        .bind(name)
        .bind(self.seal_credentials(&credentials)?)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        integrations::resume_reconnected(&mut tx, id, now, on_schedule).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn group(&self, id: i64) -> Result<Option<Group>> {
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(group)
            .transpose()
    }

    pub async fn groups(&self) -> Result<Vec<Group>> {
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {GROUP_COLUMNS} FROM groups ORDER BY id")))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(group)
            .collect()
    }

    /// How many groups there are besides the host's own, and how many of
    /// them need reconnecting.
    pub async fn group_count(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN status = 'ok' THEN 0 ELSE 1 END), 0) AS broken
             FROM groups WHERE plugin_id <> $1",
        )
        .bind(HOST_PLUGIN_ID)
        .fetch_one(self.pool())
        .await?;
        Ok((row.try_get("n")?, row.try_get("broken")?))
    }

    /// Up to `limit` groups matching `filter` with ids above `after`, by id.
    pub async fn groups_page(&self, filter: &GroupFilter, after: Option<i64>, limit: i64) -> Result<Vec<Group>> {
        let mut conditions = Conditions::default();
        if let Some(plugin_id) = &filter.plugin_id {
            conditions.text("plugin_id = ?", plugin_id);
        }
        if let Some(name) = &filter.name_contains {
            conditions.name_contains("name", name);
        }
        if let Some(status) = filter.status {
            conditions.text("status = ?", status.as_str());
        }
        if filter.without_host_group {
            conditions.text("plugin_id <> ?", HOST_PLUGIN_ID);
        }
        let query = conditions.page(GROUP_COLUMNS, "groups", after, limit);
        query.fetch_all(self.pool()).await?.into_iter().map(group).collect()
    }

    /// Delete a group with its integrations (and their runs, jobs and
    /// records), unless it has integrations and `with_integrations` is false.
    pub async fn delete_group(&self, id: i64, confirmed: ConfirmedIntegrations) -> Result<GroupDeletion> {
        // Locking the group row makes an integration created meanwhile wait
        // (its foreign key check needs the row), so none is deleted unseen.
        let lock = match self.backend() {
            super::Backend::Postgres => "FOR UPDATE",
            super::Backend::Sqlite => "", // BEGIN IMMEDIATE already holds the write lock
        };
        let mut tx = self.begin().await?;
        let found: Option<i64> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT id FROM groups WHERE id = $1 {lock}")))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Ok(GroupDeletion::NotFound);
        }
        let integrations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM integrations WHERE group_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let takes = match confirmed {
            ConfirmedIntegrations::None => integrations == 0,
            ConfirmedIntegrations::All => true,
            ConfirmedIntegrations::Count(count) => integrations == count,
        };
        if !takes {
            return Ok(GroupDeletion::HasIntegrations(integrations));
        }
        records::record_event_deletions(&mut tx, DeletedWith::Group(id), self.now()).await?;
        sqlx::query("DELETE FROM groups WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(GroupDeletion::Deleted)
    }

    /// The group's current credentials and status.
    pub async fn group_credentials(&self, id: i64) -> Result<(Credentials, GroupStatus)> {
        let row = sqlx::query("SELECT id, credentials, credentials_version, status FROM groups WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .with_context(|| format!("there is no group {id}"))?;
        Ok((self.open_credentials(&row)?, GroupStatus::parse(row.try_get("status")?)?))
    }

    /// Credentials and approved plugin of each of these groups. A group
    /// whose credentials this host cannot open (sealed with another key, or
    /// damaged) is reported as such, so only its own runs fail.
    pub async fn group_access(&self, group_ids: &BTreeSet<i64>) -> Result<BTreeMap<i64, GroupAccess>> {
        if group_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = format!(
            "SELECT id, credentials, credentials_version, plugin_sha256, approved_hosts FROM groups WHERE {}",
            super::json_ids_match(self.backend(), "id", 1)
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(super::json_param(group_ids));
        let mut found = BTreeMap::new();
        for row in query.fetch_all(self.pool()).await? {
            let credentials = self.open_credentials(&row).map_err(|error| Unreadable {
                version: row.try_get("credentials_version").unwrap_or_default(),
                reason: format!("{error:#}"),
            });
            let sha256: Option<String> = row.try_get("plugin_sha256")?;
            let hosts: Option<String> = row.try_get("approved_hosts")?;
            let approved = match (sha256, hosts) {
                (Some(sha256), Some(hosts)) => Some(ApprovedPlugin { sha256, hosts: serde_json::from_str(&hosts)? }),
                _ => None,
            };
            found.insert(row.try_get("id")?, GroupAccess { credentials, approved });
        }
        Ok(found)
    }

    /// Record what the operator approved for the group's plugin. False if
    /// there is no such group.
    pub async fn approve_plugin(&self, group_id: i64, approved: &ApprovedPlugin) -> Result<bool> {
        let updated = sqlx::query("UPDATE groups SET plugin_sha256 = $2, approved_hosts = $3 WHERE id = $1")
            .bind(group_id)
            .bind(&approved.sha256)
            .bind(serde_json::to_string(&approved.hosts)?)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(updated == 1)
    }

    /// Replace a group's credentials after a refresh, if they are still at
    /// version `seen` (`None` when someone reconnected or refreshed meanwhile).
    /// Refresh token and access token are written together, before either is used.
    pub async fn store_refreshed_credentials(
        &self,
        id: i64,
        seen: i64,
        credentials: &Credentials,
    ) -> Result<Option<Credentials>> {
        // The provider may have spent the old refresh token: this write must
        // outlast a power loss, and waits its turn with the queue's writers.
        let mut tx = self.begin_durable().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE groups SET credentials = $2, credentials_version = credentials_version + 1
             WHERE id = $1 AND credentials_version = $3 RETURNING credentials_version",
        )
        .bind(id)
        .bind(self.seal_credentials(credentials)?)
        .bind(seen)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(version.map(|version| Credentials { fields: credentials.fields.clone(), version }))
    }

    /// The provider refused the credentials at version `seen` (a refresh
    /// token, an expired bank agreement) for `reason`: mark the group and pause its active integrations until it is
    /// reconnected. Returns the integrations this paused, or `None` when the
    /// credentials changed meanwhile (a reconnect): then nothing is marked.
    pub async fn mark_group_needs_reconnect(
        &self,
        id: i64,
        seen: i64,
        reason: &str,
    ) -> Result<Option<Vec<Integration>>> {
        let mut tx = self.begin().await?;
        let marked =
            sqlx::query("UPDATE groups SET status = $2, status_reason = $4 WHERE id = $1 AND credentials_version = $3")
                .bind(id)
                .bind(GroupStatus::NeedsReconnect.as_str())
                .bind(seen)
                .bind(reason)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if marked == 0 {
            return Ok(None);
        }
        let paused = integrations::pause_group(&mut tx, id, PauseReason::NeedsReconnect, self.now()).await?;
        let ids: Vec<i64> = paused.iter().map(|i| i.id).collect();
        jobs::withdraw_scheduled(&mut tx, self.backend(), &ids, jobs::Withdrawal::Paused, self.now()).await?;
        tx.commit().await?;
        Ok(Some(paused))
    }

    fn seal_credentials(&self, credentials: &Credentials) -> Result<String> {
        Ok(self.secrets.seal(serde_json::to_string(&credentials.fields)?.as_bytes()))
    }

    fn open_credentials(&self, row: &AnyRow) -> Result<Credentials> {
        let id: i64 = row.try_get("id")?;
        let sealed: &str = row.try_get("credentials")?;
        let json = self.secrets.open(sealed).with_context(|| format!("the credentials of group {id}"))?;
        Ok(Credentials { fields: serde_json::from_slice(&json)?, version: row.try_get("credentials_version")? })
    }
}
