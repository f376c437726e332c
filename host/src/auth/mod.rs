//! Groups' tokens: OAuth's obtained through the authorization-code flow
//! ([`connect`]), secret pairs exchanged for tokens ([`secret_exchange`]),
//! both kept fresh by a single-flight refresh ([`refresh`]). They are sealed
//! at rest by [`crate::secrets`].

pub mod bank_connect;
pub mod connect;
pub mod oauth;
pub mod refresh;
pub mod secret_exchange;

use crate::domain::manifest::{AuthKind, OAuth2Endpoints, SecretExchangeEndpoints};
use crate::notify::Notifier;
use crate::outbound::url_host_matches;
use crate::runtime::registry::PluginRegistry;
use crate::settings::PluginSettings;
use crate::settings::{OAuthClient, OAuthClients};
use crate::store::Store;
use oauth::TokenEndpoint;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The host's OAuth side: connecting groups and refreshing their tokens.
pub struct OAuth {
    pub store: Store,
    pub plugins: Arc<PluginRegistry>,
    pub clients: OAuthClients,
    pub token_endpoint: TokenEndpoint,
    pub notifier: Arc<Notifier>,
    /// Names this process in refresh leases.
    pub owner: String,
    /// What the operator decided per plugin (the hosts it approved).
    pub plugin_settings: BTreeMap<String, PluginSettings>,
    /// One refresh per group at a time within this process; the lease in the
    /// database makes it one across processes.
    refreshing: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

impl OAuth {
    pub fn new(
        store: Store,
        plugins: Arc<PluginRegistry>,
        clients: OAuthClients,
        token_endpoint: TokenEndpoint,
        notifier: Arc<Notifier>,
        owner: String,
        plugin_settings: BTreeMap<String, PluginSettings>,
    ) -> OAuth {
        OAuth {
            store,
            plugins,
            clients,
            token_endpoint,
            notifier,
            owner,
            plugin_settings,
            refreshing: Mutex::default(),
        }
    }

    /// The provider and client for `plugin_id`, or why OAuth is unavailable.
    fn provider(&self, plugin_id: &str) -> Result<(OAuth2Endpoints, OAuthClient), String> {
        match self.token_source(plugin_id)? {
            TokenSource::OAuth2(endpoints, client) => Ok((endpoints, client)),
            TokenSource::SecretExchange(_) => Err(format!("plugin {plugin_id:?} does not use OAuth")),
        }
    }

    /// Where `plugin_id`'s groups get new access tokens, or why they cannot.
    fn token_source(&self, plugin_id: &str) -> Result<TokenSource, String> {
        let plugin = self.plugins.get(plugin_id).ok_or_else(|| format!("plugin {plugin_id:?} is not loaded"))?;
        let source = match &plugin.manifest.auth {
            AuthKind::OAuth2(endpoints) => TokenSource::OAuth2(
                endpoints.clone(),
                self.clients.get(plugin_id).ok_or_else(|| OAuthClients::missing(plugin_id))?,
            ),
            AuthKind::SecretExchange(endpoints) => TokenSource::SecretExchange(endpoints.clone()),
            _ => return Err(format!("plugin {plugin_id:?} has no tokens to renew")),
        };
        // Secrets and refresh tokens go to the token URLs: only to a host the
        // plugin declared for its requests and the operator approved, so a
        // manifest cannot send them elsewhere.
        let approved = PluginSettings::approved_hosts(self.plugin_settings.get(plugin_id), &plugin.hosts());
        if let Some(url) = source.urls().into_iter().find(|url| !url_host_matches(url, &approved)) {
            return Err(format!(
                "plugin {plugin_id:?}: its token URL {url} is not on its approved hosts ({})",
                approved.join(", ")
            ));
        }
        Ok(source)
    }
}

/// Where a group's access tokens come from.
enum TokenSource {
    /// A refresh token spent at the provider's token URL with the operator's client.
    OAuth2(OAuth2Endpoints, OAuthClient),
    /// The group's secret pair, exchanged (or its refresh token renewed).
    SecretExchange(SecretExchangeEndpoints),
}

impl TokenSource {
    /// The URLs that receive the group's secrets.
    fn urls(&self) -> Vec<&str> {
        match self {
            TokenSource::OAuth2(endpoints, _) => vec![&endpoints.token_url],
            TokenSource::SecretExchange(endpoints) => vec![&endpoints.new_token_url, &endpoints.refresh_url],
        }
    }
}
