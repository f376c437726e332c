//! Builders for the manifest and its instance types, with the defaults most
//! plugins want, so `describe` names only what is particular to a service.
//!
//! ```
//! use inlet_plugin_sdk::prelude::*;
//! use serde::Deserialize;
//!
//! /// What an integration of the `items` instance type is configured with.
//! #[derive(Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! #[schemars(example = serde_json::json!({"folder": "inbox"}))]
//! struct Config {
//!     /// Only this folder.
//!     folder: Option<String>,
//! }
//!
//! let manifest = Manifest::new("example", "Example", "1.0.0")
//!     .description("Items from example.com")
//!     .auth(AuthKind::api_key("API token", KeyPlacement::Bearer))
//!     .instance_type(
//!         InstanceType::new("items", "Items")
//!             .every(15 * 60)
//!             .host("api.example.com")
//!             .config::<Config>(),
//!     );
//! assert_eq!(manifest.instance_types[0].default_backfill_days, 30);
//! assert!(manifest.instance_types[0].config_schema.contains("\"examples\""));
//! ```

use crate::{
    ApiKeyAuth, AuthKind, CronSchedule, InstanceKind, InstanceType, KeyPlacement, Manifest, Quota, RateLimit, Schedule,
    SecretExchangeAuth, WebhookAuth,
};

/// The schema of an instance type without config: an empty object.
const NO_CONFIG: &str = r#"{"type":"object","additionalProperties":false,"examples":[{}]}"#;

impl Manifest {
    /// A plugin that needs no credentials, takes no webhooks and declares no
    /// limits; add instance types with [`Manifest::instance_type`].
    pub fn new(id: impl Into<String>, name: impl Into<String>, version: impl Into<String>) -> Manifest {
        Manifest {
            id: id.into(),
            name: name.into(),
            version: version.into(),
            description: String::new(),
            auth: AuthKind::None,
            webhook: None,
            rate_limit: None,
            quotas: Vec::new(),
            needs_raw_credentials: false,
            instance_types: Vec::new(),
        }
    }

    pub fn description(self, description: impl Into<String>) -> Manifest {
        Manifest { description: description.into(), ..self }
    }

    pub fn auth(self, auth: AuthKind) -> Manifest {
        Manifest { auth, ..self }
    }

    pub fn webhook(self, webhook: WebhookAuth) -> Manifest {
        Manifest { webhook: Some(webhook), ..self }
    }

    /// At most `requests` per `per_seconds`, per group; the host spaces them.
    pub fn rate_limit(self, requests: u32, per_seconds: u32) -> Manifest {
        Manifest { rate_limit: Some(RateLimit { requests, per_seconds }), ..self }
    }

    pub fn quota(mut self, quota: Quota) -> Manifest {
        self.quotas.push(quota);
        self
    }

    pub fn instance_type(mut self, instance_type: InstanceType) -> Manifest {
        self.instance_types.push(instance_type);
        self
    }
}

impl AuthKind {
    /// An API key the operator pastes; `label` tells them which one.
    pub fn api_key(label: impl Into<String>, placement: KeyPlacement) -> AuthKind {
        AuthKind::ApiKey(ApiKeyAuth { label: label.into(), placement })
    }

    /// A secret id and key the host exchanges for access tokens at
    /// `new_token_url` and renews at `refresh_url` (GoCardless's scheme);
    /// banks are connected through `bank_connect_url`, if given.
    pub fn secret_exchange(
        label: impl Into<String>,
        new_token_url: impl Into<String>,
        refresh_url: impl Into<String>,
        bank_connect_url: Option<&str>,
    ) -> AuthKind {
        AuthKind::SecretExchange(SecretExchangeAuth {
            label: label.into(),
            new_token_url: new_token_url.into(),
            refresh_url: refresh_url.into(),
            bank_connect_url: bank_connect_url.map(str::to_string),
        })
    }
}

impl InstanceType {
    /// An integration polled hourly with no config, reaching no host yet,
    /// whose first run reaches 30 days back.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> InstanceType {
        InstanceType {
            id: id.into(),
            name: name.into(),
            description: String::new(),
            kind: InstanceKind::Integration,
            default_schedule: Schedule::Interval(3600),
            hosts: Vec::new(),
            config_schema: NO_CONFIG.to_string(),
            default_backfill_days: 30,
        }
    }

    pub fn description(self, description: impl Into<String>) -> InstanceType {
        InstanceType { description: description.into(), ..self }
    }

    /// Scheduled work with no upstream (a digest over the group's records).
    pub fn task(self) -> InstanceType {
        InstanceType { kind: InstanceKind::Task, ..self }
    }

    /// Run every `seconds` by default.
    pub fn every(self, seconds: u32) -> InstanceType {
        InstanceType { default_schedule: Schedule::Interval(seconds), ..self }
    }

    /// Run at these 5-field cron times in an IANA time zone by default.
    pub fn cron(self, expressions: &[&str], timezone: impl Into<String>) -> InstanceType {
        let expressions = expressions.iter().map(|e| e.to_string()).collect();
        InstanceType {
            default_schedule: Schedule::Cron(CronSchedule { expressions, timezone: timezone.into() }),
            ..self
        }
    }

    /// Run only when an operator or a webhook asks.
    pub fn manual(self) -> InstanceType {
        InstanceType { default_schedule: Schedule::Manual, ..self }
    }

    /// A host this instance type calls: `api.example.com` or `*.example.com`.
    pub fn host(mut self, host: impl Into<String>) -> InstanceType {
        self.hosts.push(host.into());
        self
    }

    /// The config schema, derived from the config type (draft 2020-12). Put
    /// an example on the type (`#[schemars(example = ...)]`): `inlet plugin
    /// test` checks that the schema accepts it.
    pub fn config<C: schemars::JsonSchema>(self) -> InstanceType {
        let schema = schemars::schema_for!(C);
        InstanceType { config_schema: serde_json::to_string(&schema).unwrap_or_default(), ..self }
    }

    /// How far back the first run reaches when the config names no `since`.
    pub fn backfill_days(self, days: u32) -> InstanceType {
        InstanceType { default_backfill_days: days, ..self }
    }
}
