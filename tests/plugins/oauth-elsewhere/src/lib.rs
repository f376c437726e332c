//! Test plugin: an OAuth plugin whose token URL is on a host other than its
//! API's (Spotify's `accounts.spotify.com`, Google's `oauth2.googleapis.com`),
//! so the suite can check that tokens go only to a token host the operator
//! approved. Its API is the fake Monzo's.

use inlet_plugin_sdk::prelude::*;

struct OAuthElsewhere;

impl Plugin for OAuthElsewhere {
    fn describe() -> Manifest {
        Manifest {
            id: "oauth-elsewhere".into(),
            name: "OAuth elsewhere".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reads the fake Monzo's accounts with a token from tokens.test".into(),
            auth: AuthKind::Oauth2(Oauth2Auth {
                authorize_url: "https://auth.monzo.com/".into(),
                token_url: "https://tokens.test/oauth2/token".into(),
                scopes: vec![],
                refresh_token_rotates: true,
                pkce: false,
            }),
            webhook: None,
            rate_limit: None,
            quotas: Vec::new(),
            needs_raw_credentials: false,
            instance_types: vec![InstanceType {
                id: "accounts".into(),
                name: "Accounts".into(),
                description: "requests /accounts with the group's token".into(),
                kind: InstanceKind::Integration,
                default_schedule: Schedule::Manual,
                hosts: vec!["api.monzo.com".into(), "tokens.test".into()],
                config_schema: "{}".into(),
                default_backfill_days: 0,
            }],
        }
    }

    fn fetch(_request: FetchRequest) -> Result<FetchSummary, PluginError> {
        let _: serde_json::Value = http::get("https://api.monzo.com/accounts").authenticated().send_json()?;
        Ok(FetchSummary { items_seen: 1, ..Default::default() })
    }

    fn process(_batch: RawBatch) -> Result<Records, PluginError> {
        Ok(Records::default())
    }
}

inlet_plugin_sdk::export_plugin!(OAuthElsewhere);
