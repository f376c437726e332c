//! OAuth groups' credentials: obtained through the authorization-code flow
//! ([`connect`]) and kept fresh by a single-flight refresh ([`refresh`]).
//! They are sealed at rest by [`crate::secrets`].

pub mod connect;
pub mod oauth;
pub mod refresh;

use crate::domain::manifest::{AuthKind, OAuth2Endpoints};
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
        let plugin = self.plugins.get(plugin_id).ok_or_else(|| format!("plugin {plugin_id:?} is not loaded"))?;
        let AuthKind::OAuth2(endpoints) = &plugin.manifest.auth else {
            return Err(format!("plugin {plugin_id:?} does not use OAuth"));
        };
        // The client secret and refresh tokens go to the token URL: only to a
        // host the plugin declared for its requests and the operator approved,
        // so a manifest cannot send them elsewhere.
        let approved = PluginSettings::approved_hosts(self.plugin_settings.get(plugin_id), &plugin.hosts());
        if !url_host_matches(&endpoints.token_url, &approved) {
            return Err(format!(
                "plugin {plugin_id:?}: its token URL {} is not on its approved hosts ({})",
                endpoints.token_url,
                approved.join(", ")
            ));
        }
        let client = self.clients.get(plugin_id).ok_or_else(|| OAuthClients::missing(plugin_id))?;
        Ok((endpoints.clone(), client))
    }
}
