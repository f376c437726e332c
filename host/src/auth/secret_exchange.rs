//! Access tokens from a secret pair (GoCardless Bank Account Data): the
//! group's `secret_id` and `secret_key` are exchanged for an access token
//! and a longer-lived refresh token; the refresh token renews the access
//! token until it lapses, then the pair is exchanged again. The plugin sees
//! none of them: the host puts the access token on its requests.

use super::oauth::{TokenEndpoint, TokenError};
use super::refresh::REFRESH_MARGIN_MS;
use crate::domain::manifest::SecretExchangeEndpoints;
use crate::store::groups::Credentials;
use serde::Deserialize;
use serde_json::json;

/// `token/new/` and `token/refresh/` answers; lifetimes in seconds.
#[derive(Deserialize)]
struct SecretGrant {
    access: String,
    access_expires: i64,
    /// Only from `token/new/`.
    refresh: Option<String>,
    refresh_expires: Option<i64>,
}

impl TokenEndpoint {
    /// `current` with a new access token: renewed with its refresh token
    /// while that lives, else from the secret pair. A refused pair is
    /// [`TokenError::InvalidGrant`]: only new secrets help.
    pub async fn exchange_secret(
        &self,
        endpoints: &SecretExchangeEndpoints,
        current: &Credentials,
        now: i64,
    ) -> Result<Credentials, TokenError> {
        let refresh_lives = current
            .get("refresh_expires_at")
            .and_then(|at| at.parse::<i64>().ok())
            .is_some_and(|at| at - REFRESH_MARGIN_MS > now);
        if let Some(refresh) = current.get("refresh_token").filter(|_| refresh_lives) {
            match self.post_secret(&endpoints.refresh_url, json!({ "refresh": refresh })).await {
                Ok(grant) => return Ok(grant.into_credentials(current, now)),
                // A revoked refresh token is no loss while the pair works.
                Err(TokenError::InvalidGrant(message)) => {
                    tracing::info!(reason = %message, "the refresh token was refused; exchanging the secret pair again");
                }
                Err(failed) => return Err(failed),
            }
        }
        let (Some(secret_id), Some(secret_key)) = (current.get("secret_id"), current.get("secret_key")) else {
            return Err(TokenError::InvalidGrant("the group has no secret id and key to exchange".into()));
        };
        let pair = json!({ "secret_id": secret_id, "secret_key": secret_key });
        Ok(self.post_secret(&endpoints.new_token_url, pair).await?.into_credentials(current, now))
    }

    async fn post_secret(&self, token_url: &str, body: serde_json::Value) -> Result<SecretGrant, TokenError> {
        let (url, status, body) = self.post(token_url, |request| request.json(&body)).await?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| TokenError::Failed(format!("the token response from {url} is not a token: {e}")));
        }
        // `{"summary", "detail", "status_code"}`; 401 and 403 refuse the secret itself.
        #[derive(Deserialize, Default)]
        struct ErrorBody {
            summary: Option<String>,
            detail: Option<String>,
        }
        let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let message = format!(
            "{url} answered {}: {} {}",
            status.as_u16(),
            parsed.summary.unwrap_or_default(),
            parsed.detail.unwrap_or_default()
        );
        Err(match status.as_u16() {
            401 | 403 => TokenError::InvalidGrant(message.trim_end().to_string()),
            _ => TokenError::Failed(message.trim_end().to_string()),
        })
    }
}

impl SecretGrant {
    fn into_credentials(self, previous: &Credentials, now: i64) -> Credentials {
        let mut credentials = previous.clone();
        credentials.set("access_token", Some(self.access));
        credentials.set("expires_at", Some((now + self.access_expires * 1000).to_string()));
        if let Some(refresh) = self.refresh {
            credentials.set("refresh_token", Some(refresh));
            credentials.set("refresh_expires_at", self.refresh_expires.map(|s| (now + s * 1000).to_string()));
        }
        credentials
    }
}
