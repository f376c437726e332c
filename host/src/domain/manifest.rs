//! What a plugin says about itself when it loads: its id, how its groups
//! authenticate, the instance types it offers and the hosts they reach.

use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};

/// The host's own plugin id: its housekeeping tasks belong to it, and no
/// plugin file may take it.
pub const HOST_PLUGIN_ID: &str = "inlet";

#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Stable identifier, lowercase with dashes, e.g. "monzo".
    pub id: String,
    pub name: String,
    /// Semantic version of the plugin.
    pub version: String,
    pub description: String,
    pub auth: AuthKind,
    pub webhook: Option<WebhookAuth>,
    /// Ceiling on the plugin's requests, per group.
    pub rate_limit: Option<RateLimit>,
    /// The provider's quotas, kept per group (contract 0.2.0 on).
    pub quotas: Vec<Quota>,
    /// The plugin must read a credential itself; an operator has to approve that.
    pub needs_raw_credentials: bool,
    pub instance_types: Vec<InstanceType>,
}

/// How a group (a connected account) authenticates upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthKind {
    None,
    /// The operator pastes an API key; the label says which one. The host
    /// puts it where `placement` says; `None` for a contract 0.1.0 plugin,
    /// whose requests each name a placement.
    ApiKey {
        label: String,
        placement: Option<KeyPlacement>,
    },
    /// The operator enters a username and password, sent as HTTP basic auth.
    Basic {
        label: String,
    },
    OAuth2(OAuth2Endpoints),
    /// A secret id and key the host exchanges for short-lived access tokens.
    SecretExchange(SecretExchangeEndpoints),
}

/// Where a secret pair becomes tokens (GoCardless Bank Account Data's scheme).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretExchangeEndpoints {
    pub label: String,
    /// `{"secret_id", "secret_key"}` → `{"access", "access_expires", "refresh", "refresh_expires"}`.
    pub new_token_url: String,
    /// `{"refresh"}` → `{"access", "access_expires"}`.
    pub refresh_url: String,
    /// Where the host connects banks (`institutions/`, `agreements/enduser/`, `requisitions/`).
    pub bank_connect_url: Option<String>,
}

/// Where the host puts a group's API key on an authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPlacement {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// In this header, verbatim.
    Header(String),
    /// In this query parameter.
    Query(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2Endpoints {
    pub authorize_url: String,
    pub token_url: String,
    pub scopes: Vec<String>,
    /// Every refresh spends the old refresh token (Monzo): refreshes must be single-flight.
    pub refresh_token_rotates: bool,
    pub pkce: bool,
}

/// How push deliveries are authenticated.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookAuth {
    /// The plugin checks a signature through `signature.verify`.
    Signature,
    /// The sender puts the group's shared secret in this header verbatim.
    SharedSecretHeader(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstanceKind {
    /// Pulls or receives data from an upstream service.
    Integration,
    /// Scheduled work with no upstream service (a daily digest).
    Task,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceType {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: InstanceKind,
    pub default_schedule: Schedule,
    /// Hosts it calls: `api.example.com` or `*.example.com`.
    pub hosts: Vec<String>,
    /// JSON Schema (draft 2020-12) of its config.
    pub config_schema: String,
    /// How far back the first run reaches when config does not say, in days.
    pub default_backfill_days: u32,
}

/// A provider's quota: at most `requests` per `period` for the requests whose
/// URL matches `url` (`*` one path segment, counted apart; a final `**` any
/// rest), per group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Quota {
    pub id: String,
    pub url: String,
    pub requests: u32,
    pub period: QuotaPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    Minute,
    Hour,
    Day,
}

impl QuotaPeriod {
    pub fn millis(self) -> i64 {
        match self {
            QuotaPeriod::Minute => 60_000,
            QuotaPeriod::Hour => 3_600_000,
            QuotaPeriod::Day => 86_400_000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Minute => "minute",
            QuotaPeriod::Hour => "hour",
            QuotaPeriod::Day => "day",
        }
    }
}

/// At most `requests` per `per_seconds`, per group: a manifest declares one,
/// an operator may set or override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub per_seconds: u32,
}

impl RateLimit {
    /// Time between two requests.
    pub fn spacing(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.per_seconds.into()) / self.requests.max(1)
    }

    pub fn validate(self, field: &str) -> anyhow::Result<RateLimit> {
        anyhow::ensure!(
            self.requests >= 1 && self.per_seconds >= 1,
            "{field}: requests and per_seconds must both be at least 1 (got {} per {} s)",
            self.requests,
            self.per_seconds
        );
        Ok(self)
    }
}
