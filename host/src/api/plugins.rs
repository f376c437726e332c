//! `GET /api/plugins`: what is loaded, from which file, allowed to reach what.

use super::ApiState;
use super::error::ApiResult;
use crate::domain::manifest::{AuthKind, InstanceKind, Quota, WebhookAuth};
use crate::runtime::registry::LoadedPlugin;
use crate::schedule::Schedule;
use crate::sync::SyncRunner;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<PluginView>,
    /// Files in the plugins folder that did not load, with the reason.
    pub failures: Vec<PluginFailure>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PluginFailure {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PluginView {
    pub id: String,
    pub name: String,
    pub version: String,
    /// The `inlet:plugin` contract version it was built against, e.g. `0.1.0`.
    pub contract: String,
    pub description: String,
    pub file: String,
    /// SHA-256 of the .wasm file.
    pub sha256: String,
    /// `none`, `api-key`, `basic` or `oauth2`.
    pub auth: String,
    /// How webhook deliveries are verified: `signature`, or the header carrying the shared secret.
    pub webhook: Option<String>,
    pub needs_raw_credentials: bool,
    /// Request budgets the upstream imposes, kept per group.
    pub quotas: Vec<Quota>,
    pub instance_types: Vec<InstanceTypeView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceTypeView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: InstanceKind,
    pub default_schedule: Schedule,
    /// Hosts the manifest declares.
    pub hosts: Vec<String>,
    /// The declared hosts the operator approved (all unless narrowed in the config).
    pub approved_hosts: Vec<String>,
    /// JSON Schema of the config.
    #[schema(value_type = Object)]
    pub config_schema: serde_json::Value,
    pub default_backfill_days: u32,
}

impl PluginView {
    fn of(plugin: &LoadedPlugin, runner: &SyncRunner) -> PluginView {
        let manifest = &plugin.manifest;
        PluginView {
            id: manifest.id.clone(),
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            contract: plugin.contract().as_str().into(),
            description: manifest.description.clone(),
            file: plugin.path.display().to_string(),
            sha256: plugin.sha256.clone(),
            auth: match manifest.auth {
                AuthKind::None => "none",
                AuthKind::ApiKey { .. } => "api-key",
                AuthKind::Basic { .. } => "basic",
                AuthKind::OAuth2(_) => "oauth2",
                AuthKind::SecretExchange(_) => "secret-exchange",
            }
            .into(),
            webhook: manifest.webhook.as_ref().map(|auth| match auth {
                WebhookAuth::Signature => "signature".to_string(),
                WebhookAuth::SharedSecretHeader(header) => format!("shared-secret-header {header}"),
            }),
            needs_raw_credentials: manifest.needs_raw_credentials,
            quotas: manifest.quotas.clone(),
            instance_types: manifest
                .instance_types
                .iter()
                .map(|t| InstanceTypeView {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    description: t.description.clone(),
                    kind: t.kind,
                    default_schedule: t.default_schedule.clone(),
                    approved_hosts: runner.allowed_hosts(plugin.id(), &t.hosts),
                    hosts: t.hosts.clone(),
                    config_schema: serde_json::from_str(&t.config_schema).unwrap_or_default(),
                    default_backfill_days: t.default_backfill_days,
                })
                .collect(),
        }
    }
}

#[utoipa::path(get, path = "/api/plugins", tag = "plugins", responses((status = 200, body = PluginList)))]
pub async fn list(State(api): State<ApiState>) -> ApiResult<Json<PluginList>> {
    let runner = &api.host.runner;
    let mut plugins: Vec<PluginView> = runner.plugins.plugins().iter().map(|p| PluginView::of(p, runner)).collect();
    plugins.sort_by(|a, b| a.id.cmp(&b.id));
    let failures = runner
        .plugins
        .failures()
        .into_iter()
        .map(|f| PluginFailure { file: f.path.display().to_string(), reason: f.reason })
        .collect();
    Ok(Json(PluginList { plugins, failures }))
}
