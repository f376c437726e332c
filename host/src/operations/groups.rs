//! Connect accounts that need no browser (API key, webhook secret, a token
//! pasted in), and remove them.

use super::{OperationError, OperationResult};
use crate::Host;
use crate::domain::group_status::GroupStatus;
use crate::domain::manifest::{AuthKind, HOST_PLUGIN_ID, InstanceKind, WebhookAuth};
use crate::runtime::registry::LoadedPlugin;
use crate::store::groups::{
    ApprovedPlugin, ConfirmedIntegrations, Credentials, Group, GroupDeletion, GroupFilter, MAX_NAME_CHARS,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A group to create. Credentials are write-only: no response ever shows them.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupInput {
    /// Plugin id, e.g. `apple-health`.
    pub plugin: String,
    /// A name to tell this account apart, e.g. "personal"; unique per plugin.
    pub name: String,
    pub api_key: Option<String>,
    /// Shared secret of the service's webhook deliveries (signature or header).
    pub webhook_secret: Option<String>,
    /// An OAuth access token obtained elsewhere (OAuth plugins usually connect in a browser).
    pub access_token: Option<String>,
    /// Its refresh token, so the host can renew the access token (needs `access_token`).
    pub refresh_token: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The secret pair the host exchanges for tokens (GoCardless).
    pub secret_id: Option<String>,
    pub secret_key: Option<String>,
    /// Groups whose records this group's tasks may read (a digest's sources).
    #[serde(default)]
    pub reads: Vec<i64>,
}

/// A group as the API shows it, without credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    pub id: i64,
    pub plugin_id: String,
    pub name: String,
    pub status: GroupStatus,
    /// Why it needs reconnecting, in the provider's words.
    pub status_reason: Option<String>,
    pub integrations: i64,
    pub created_at: i64,
    /// Where the service should post deliveries, for plugins that take webhooks.
    pub webhook_path: Option<String>,
}

impl GroupView {
    pub fn of(host: &Host, group: Group, integrations: i64) -> GroupView {
        let takes_webhooks = host.runner.plugins.get(&group.plugin_id).is_some_and(|p| p.manifest.webhook.is_some());
        GroupView {
            webhook_path: takes_webhooks.then(|| format!("/webhooks/{}/{}", group.plugin_id, group.id)),
            id: group.id,
            plugin_id: group.plugin_id,
            name: group.name,
            status: group.status,
            status_reason: group.status_reason,
            integrations,
            created_at: group.created_at,
        }
    }
}

/// Up to `limit` connected accounts matching `filter`, with ids above
/// `after`, by id; never the host's own group (it holds the host's tasks,
/// not an account).
pub async fn list(host: &Host, filter: GroupFilter, after: Option<i64>, limit: i64) -> OperationResult<Vec<Group>> {
    let filter = GroupFilter { without_host_group: true, ..filter };
    Ok(host.store().groups_page(&filter, after, limit).await?)
}

pub async fn create(host: &Host, input: NewGroupInput) -> OperationResult<Group> {
    let Some(plugin) = host.runner.plugins.get(&input.plugin) else {
        return Err(OperationError::invalid("plugin", format!("plugin {:?} is not loaded", input.plugin)));
    };
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(OperationError::invalid("name", format!("must be 1 to {MAX_NAME_CHARS} characters")));
    }
    let fields: BTreeMap<String, String> = [
        ("access_token", input.access_token),
        ("refresh_token", input.refresh_token),
        ("api_key", input.api_key),
        ("username", input.username),
        ("password", input.password),
        ("webhook_secret", input.webhook_secret),
        ("secret_id", input.secret_id),
        ("secret_key", input.secret_key),
    ]
    .into_iter()
    .filter_map(|(field, value)| Some((field.to_string(), value?)))
    .collect();
    if let Some((field, _)) = fields.iter().find(|(_, value)| value.trim().is_empty()) {
        return Err(OperationError::invalid(field.as_str(), "must not be empty"));
    }
    if fields.contains_key("refresh_token") && !fields.contains_key("access_token") {
        return Err(OperationError::invalid("refresh_token", "comes with the access_token it renews"));
    }
    if fields.contains_key("secret_id") != fields.contains_key("secret_key") {
        return Err(OperationError::invalid("secret_key", "secret_id and secret_key come together"));
    }
    check_reads(host, &plugin, &input.reads).await?;
    // Without the secret its header must carry, every delivery would be refused.
    if let Some(WebhookAuth::SharedSecretHeader(header)) = &plugin.manifest.webhook
        && !fields.contains_key("webhook_secret")
    {
        return Err(OperationError::invalid(
            "webhook_secret",
            format!("{} deliveries carry a shared secret in the {header} header: give webhook_secret", input.plugin),
        ));
    }
    if let AuthKind::Basic { label } = &plugin.manifest.auth
        && !fields.contains_key("username")
    {
        return Err(OperationError::invalid(
            "username",
            format!("{} signs in with a username and password ({label})", input.plugin),
        ));
    }
    if fields.is_empty() {
        match &plugin.manifest.auth {
            AuthKind::None | AuthKind::Basic { .. } => {}
            AuthKind::OAuth2(_) => {
                return Err(OperationError::invalid(
                    "access_token",
                    format!(
                        "{0} connects with OAuth in a browser instead: `inlet groups connect {0} --name {name}` or \
                         POST /api/oauth/{0}/links make the link",
                        input.plugin
                    ),
                ));
            }
            AuthKind::ApiKey { label, .. } => {
                return Err(OperationError::invalid("api_key", format!("{} needs an API key ({label})", input.plugin)));
            }
            AuthKind::SecretExchange(endpoints) => {
                return Err(OperationError::invalid(
                    "secret_id",
                    format!("{} needs a secret_id and secret_key ({})", input.plugin, endpoints.label),
                ));
            }
        }
    }
    if host.store().groups().await?.iter().any(|g| g.plugin_id == input.plugin && g.name == name) {
        return Err(OperationError::Conflict {
            code: "group-exists",
            message: format!("plugin {} already has a group named {name:?}", input.plugin),
        });
    }
    let id = host.store().insert_group_reading(&input.plugin, name, &Credentials::new(fields), &input.reads).await?;
    // Creating the group is the operator's consent to this plugin file's hosts.
    host.store().approve_plugin(id, &plugin.approval()).await?;
    host.store().group(id).await?.ok_or_else(|| OperationError::not_found("group", id))
}

/// Groups a new group may read the records of: only for a plugin with
/// tasks (nothing else reads records), each an existing group, once.
async fn check_reads(host: &Host, plugin: &LoadedPlugin, reads: &[i64]) -> OperationResult<()> {
    if reads.is_empty() {
        return Ok(());
    }
    if !plugin.manifest.instance_types.iter().any(|t| t.kind == InstanceKind::Task) {
        return Err(OperationError::invalid(
            "reads",
            format!("{} has no tasks; only a task reads other groups' records", plugin.id()),
        ));
    }
    let existing: Vec<i64> = host.store().groups().await?.iter().map(|g| g.id).collect();
    for (i, id) in reads.iter().enumerate() {
        if !existing.contains(id) {
            return Err(OperationError::invalid("reads", format!("there is no group {id}")));
        }
        if reads[..i].contains(id) {
            return Err(OperationError::invalid("reads", format!("group {id} is named twice")));
        }
    }
    Ok(())
}

/// Approve the group's plugin as loaded now: the hosts its current file
/// declares become reachable for the group's runs.
pub async fn approve(host: &Host, id: i64) -> OperationResult<ApprovedPlugin> {
    let group = host.store().group(id).await?.ok_or_else(|| OperationError::not_found("group", id))?;
    let plugin = host.runner.plugins.get(&group.plugin_id).ok_or_else(|| OperationError::Conflict {
        code: "plugin-missing",
        message: format!("plugin {:?} is not loaded; there is nothing to approve", group.plugin_id),
    })?;
    let approval = plugin.approval();
    host.store().approve_plugin(id, &approval).await?;
    tracing::info!(group = id, plugin = %group.plugin_id, sha256 = %approval.sha256, hosts = ?approval.hosts, "plugin approved for group");
    Ok(approval)
}

/// Delete a group. One with integrations is deleted (with them, their
/// history and records) only when `confirm` is set.
pub async fn delete(host: &Host, id: i64, confirmed: ConfirmedIntegrations) -> OperationResult<()> {
    if host.store().group(id).await?.is_some_and(|group| group.plugin_id == HOST_PLUGIN_ID) {
        return Err(OperationError::Conflict {
            code: "host-task",
            message: format!("group {id} holds the host's own tasks, which cannot be deleted"),
        });
    }
    match host.store().delete_group(id, confirmed).await? {
        GroupDeletion::Deleted => Ok(()),
        GroupDeletion::NotFound => Err(OperationError::not_found("group", id)),
        GroupDeletion::HasIntegrations(count) => Err(match confirmed {
            ConfirmedIntegrations::Count(shown) => OperationError::Conflict {
                code: "confirmation-stale",
                message: format!(
                    "group {id} has {count} integration(s) now, not the {shown} confirmed; nothing was deleted"
                ),
            },
            _ => OperationError::Conflict {
                code: "confirmation-required",
                message: format!(
                    "group {id} has {count} integration(s); deleting it deletes them with their history and \
                     records. Pass confirm=true to go ahead"
                ),
            },
        }),
    }
}
