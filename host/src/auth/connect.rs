//! Connecting a group with the authorization-code flow. An operator mints a
//! start link (`start_link`: CLI or admin API); `begin`, reached through it,
//! records a single-use `state` (and a PKCE verifier) and returns the
//! provider's authorization URL; `finish` takes the callback's code and
//! state, swaps the code for tokens and stores them sealed in the group.

use super::OAuth;
use super::oauth::{TokenError, authorization_url, pkce_challenge, random_token};
use crate::store::groups::MAX_NAME_CHARS;
use crate::store::oauth_authorizations::PendingAuthorization;

/// How long an operator has to approve access at the provider.
pub const AUTHORIZATION_TTL_MS: i64 = 10 * 60 * 1000;

/// How long a start link works.
pub const START_LINK_TTL_MS: i64 = 60 * 60 * 1000;

/// First line of a start link's sealed ticket, so no other sealed value can pass for one.
const START_LINK_TAG: &str = "inlet-oauth-start-link:v1";

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The request cannot work as asked (unknown plugin, no client, bad state).
    #[error("{0}")]
    Refused(String),
    /// The provider or the database failed.
    #[error("{0}")]
    Failed(String),
}

/// What the browser that started a flow holds for its `state`: a digest, so
/// the cookie alone does not reveal the state.
pub fn browser_binding(state: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("inlet-oauth-browser:{state}")))
}

impl From<anyhow::Error> for ConnectError {
    fn from(error: anyhow::Error) -> Self {
        ConnectError::Failed(format!("{error:#}"))
    }
}

/// A group connected by a finished flow.
#[derive(Debug)]
pub struct ConnectedGroup {
    pub group_id: i64,
    pub plugin_id: String,
    pub group_name: String,
}

impl OAuth {
    /// A link that starts connecting group `group_name` of `plugin_id` in a
    /// browser, once, within [`START_LINK_TTL_MS`]. Its ticket is sealed with
    /// the host's secret key, so only an operator (CLI, admin API) can make
    /// one: nobody else can connect an account of theirs to this host, and a
    /// link that leaks after use is worthless. Returns the link and when it
    /// expires.
    pub fn start_link(&self, plugin_id: &str, group_name: &str, base_url: &str) -> Result<(String, i64), ConnectError> {
        self.provider(plugin_id).map_err(ConnectError::Refused)?;
        let group_name = group_name.trim();
        if group_name.is_empty() || group_name.chars().count() > MAX_NAME_CHARS || group_name.contains('\n') {
            return Err(ConnectError::Refused(format!(
                "group: give the account a name of 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        let expires_at = self.store.now() + START_LINK_TTL_MS;
        let nonce = random_token();
        let ticket =
            self.store.seal_text(&format!("{START_LINK_TAG}\n{plugin_id}\n{expires_at}\n{nonce}\n{group_name}"));
        let mut url = url::Url::parse(&format!("{}/oauth/{plugin_id}/start", base_url.trim_end_matches('/')))
            .map_err(|e| ConnectError::Refused(format!("public_url: {e}")))?;
        url.query_pairs_mut().append_pair("ticket", &ticket);
        Ok((url.to_string(), expires_at))
    }

    /// The group name a start link's ticket was made for, if it is genuine,
    /// for this plugin, not expired and not used: what its page shows. It
    /// uses nothing up.
    pub async fn check_start_link(&self, plugin_id: &str, ticket: &str) -> Result<String, ConnectError> {
        let link = self.open_start_link(plugin_id, ticket)?;
        if self.store.oauth_start_link_used(&link.nonce).await? {
            return Err(used_up());
        }
        Ok(link.group)
    }

    /// Use a start link's ticket: the group name it was made for, if it is
    /// genuine, for this plugin, not expired and not used before.
    pub async fn redeem_start_link(&self, plugin_id: &str, ticket: &str) -> Result<String, ConnectError> {
        let link = self.open_start_link(plugin_id, ticket)?;
        if !self.store.use_oauth_start_link(&link.nonce, link.expires_at).await? {
            return Err(used_up());
        }
        Ok(link.group)
    }

    fn open_start_link(&self, plugin_id: &str, ticket: &str) -> Result<OpenedStartLink, ConnectError> {
        let refused = || ConnectError::Refused("ticket: this start link is not valid; ask for a new one".into());
        let opened = self.store.open_sealed_text(ticket).map_err(|_| refused())?;
        let fields: Vec<&str> = opened.splitn(5, '\n').collect();
        let [START_LINK_TAG, plugin, expires_at, nonce, group] = fields[..] else {
            return Err(refused());
        };
        let expires_at: i64 = expires_at.parse().map_err(|_| refused())?;
        if plugin != plugin_id {
            return Err(refused());
        }
        if expires_at < self.store.now() {
            return Err(ConnectError::Refused("ticket: this start link expired; ask for a new one".into()));
        }
        Ok(OpenedStartLink { group: group.to_string(), nonce: nonce.to_string(), expires_at })
    }

    /// Start connecting group `group_name` of `plugin_id`; the provider will
    /// send the browser back to `redirect_uri`. Returns where to send it now,
    /// and the value that binds the flow to this browser (a cookie), which the
    /// callback must present with the state.
    pub async fn begin(
        &self,
        plugin_id: &str,
        group_name: &str,
        redirect_uri: &str,
    ) -> Result<(url::Url, String), ConnectError> {
        let (endpoints, client) = self.provider(plugin_id).map_err(ConnectError::Refused)?;
        let state = random_token();
        let code_verifier = endpoints.pkce.then(random_token);
        let challenge = code_verifier.as_deref().map(pkce_challenge);
        let url = authorization_url(&endpoints, &client.client_id, redirect_uri, &state, challenge.as_deref())
            .map_err(ConnectError::Failed)?;
        let binding = browser_binding(&state);
        let now = self.store.now();
        let pending = PendingAuthorization {
            state,
            plugin_id: plugin_id.to_string(),
            group_name: group_name.to_string(),
            redirect_uri: redirect_uri.to_string(),
            code_verifier,
            created_at: now,
        };
        self.store.insert_oauth_authorization(&pending, now - AUTHORIZATION_TTL_MS).await?;
        Ok((url, binding))
    }

    /// The provider's callback for `plugin_id` with `code` and `state`.
    pub async fn finish(&self, plugin_id: &str, code: &str, state: &str) -> Result<ConnectedGroup, ConnectError> {
        let now = self.store.now();
        let pending =
            self.store.take_oauth_authorization(state, now - AUTHORIZATION_TTL_MS).await?.ok_or_else(|| {
                ConnectError::Refused(
                    "state: this authorization is unknown or was already used; start connecting again".into(),
                )
            })?;
        if pending.plugin_id != plugin_id {
            return Err(ConnectError::Refused(format!(
                "state: this authorization was started for {}, not {plugin_id}",
                pending.plugin_id
            )));
        }
        if pending.created_at < now - AUTHORIZATION_TTL_MS {
            return Err(ConnectError::Refused(
                "state: this authorization expired (10 minutes); start connecting again".into(),
            ));
        }
        let (endpoints, client) = self.provider(plugin_id).map_err(ConnectError::Refused)?;
        let grant = self
            .token_endpoint
            .exchange_code(&endpoints, &client, code, &pending.redirect_uri, pending.code_verifier.as_deref())
            .await
            .map_err(|e| match e {
                TokenError::InvalidGrant(m) => {
                    ConnectError::Refused(format!("the provider refused the authorization code: {m}"))
                }
                TokenError::Failed(m) => ConnectError::Failed(m),
            })?;
        let now = self.store.now();
        let group_id = self
            .store
            .connect_group(
                plugin_id,
                &pending.group_name,
                |current| {
                    // A reconnect starts a new token chain; other fields (a webhook secret) stay.
                    let mut kept = current.cloned().unwrap_or_default();
                    kept.set("refresh_token", None);
                    grant.into_credentials(Some(&kept), now)
                },
                |integration| self.plugins.runs_on_schedule(integration),
            )
            .await?;
        // Connecting is the operator's consent to this plugin file's hosts.
        if let Some(plugin) = self.plugins.get(plugin_id) {
            self.store.approve_plugin(group_id, &plugin.approval()).await?;
        }
        tracing::info!(plugin = plugin_id, group = group_id, name = %pending.group_name, "group connected");
        Ok(ConnectedGroup { group_id, plugin_id: plugin_id.to_string(), group_name: pending.group_name })
    }
}

/// What a genuine start link's ticket holds.
struct OpenedStartLink {
    group: String,
    nonce: String,
    expires_at: i64,
}

fn used_up() -> ConnectError {
    ConnectError::Refused("ticket: this start link was already used; ask for a new one".into())
}
