//! The operator's OAuth clients (their registrations with providers), from
//! the environment or the config file.

use serde::Deserialize;
use std::collections::BTreeMap;

/// A value that must not be printed: `Debug` shows a placeholder.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The operator's registration with a provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: Secret,
}

/// OAuth clients by plugin id: `INLET_OAUTH_<PLUGIN>_CLIENT_ID` and
/// `..._CLIENT_SECRET` in the environment, else `[oauth.<plugin>]` in the
/// config file.
#[derive(Debug, Clone, Default)]
pub struct OAuthClients(BTreeMap<String, OAuthClient>);

impl OAuthClients {
    pub fn from_config(clients: BTreeMap<String, OAuthClient>) -> OAuthClients {
        OAuthClients(clients)
    }

    pub fn get(&self, plugin_id: &str) -> Option<OAuthClient> {
        let prefix = env_prefix(plugin_id);
        let from_env = |name: &str| std::env::var(format!("{prefix}_{name}")).ok().filter(|v| !v.is_empty());
        if let (Some(client_id), Some(secret)) = (from_env("CLIENT_ID"), from_env("CLIENT_SECRET")) {
            return Some(OAuthClient { client_id, client_secret: Secret(secret) });
        }
        self.0.get(plugin_id).cloned()
    }

    /// What to tell an operator who has not configured `plugin_id`'s client.
    pub fn missing(plugin_id: &str) -> String {
        let prefix = env_prefix(plugin_id);
        format!(
            "no OAuth client is configured for {plugin_id}: set {prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET, \
             or client_id and client_secret under [oauth.{plugin_id}] in inlet.toml"
        )
    }
}

/// `INLET_OAUTH_<PLUGIN>`, the prefix of a plugin's client variables.
fn env_prefix(plugin_id: &str) -> String {
    format!("INLET_OAUTH_{}", plugin_id.to_ascii_uppercase().replace('-', "_"))
}
