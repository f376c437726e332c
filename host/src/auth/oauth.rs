//! OAuth 2.0 (RFC 6749) as a client: the authorization URL, and the token
//! endpoint for a code (with PKCE, RFC 7636, where the provider supports it)
//! and for a refresh. The provider's endpoints come from the plugin's
//! manifest; its client id and secret from the operator.

use crate::domain::manifest::OAuth2Endpoints;
use crate::outbound::{UpstreamOverrides, internal_address};
use crate::settings::OAuthClient;
use crate::store::groups::Credentials;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// What a token endpoint granted.
#[derive(Deserialize)]
pub struct TokenGrant {
    pub access_token: String,
    /// Absent when the provider keeps the old refresh token valid.
    pub refresh_token: Option<String>,
    /// Seconds the access token lives; some providers send it as a string.
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: Option<i64>,
}

fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(deserializer)? {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

impl TokenGrant {
    /// The group's credentials after this grant: `previous` (a webhook secret,
    /// say, stays) with the new tokens, keeping the previous refresh token
    /// when the provider did not send a new one.
    pub fn into_credentials(self, previous: Option<&Credentials>, now: i64) -> Credentials {
        let mut credentials = previous.cloned().unwrap_or_default();
        credentials.set("access_token", Some(self.access_token));
        if let Some(refresh) = self.refresh_token {
            credentials.set("refresh_token", Some(refresh));
        }
        credentials.set("expires_at", self.expires_in.map(|seconds| (now + seconds * 1000).to_string()));
        credentials
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The code or refresh token is spent, revoked or unknown: only a new
    /// authorization helps.
    #[error("the provider refused the grant (invalid_grant): {0}")]
    InvalidGrant(String),
    #[error("{0}")]
    Failed(String),
}

/// 32 random bytes, URL-safe: `state` values and PKCE verifiers.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 PKCE challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Where to send the operator's browser to approve access.
pub fn authorization_url(
    endpoints: &OAuth2Endpoints,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    code_challenge: Option<&str>,
) -> Result<Url, String> {
    let mut url = Url::parse(&endpoints.authorize_url)
        .map_err(|e| format!("the plugin's authorize URL {:?} is not a URL: {e}", endpoints.authorize_url))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        if !endpoints.scopes.is_empty() {
            query.append_pair("scope", &endpoints.scopes.join(" "));
        }
        if let Some(challenge) = code_challenge {
            query.append_pair("code_challenge", challenge).append_pair("code_challenge_method", "S256");
        }
    }
    Ok(url)
}

/// Requests to providers' token endpoints.
pub struct TokenEndpoint {
    pub client: reqwest::Client,
    /// The sanctioned way to point a provider at a test server.
    pub overrides: Arc<UpstreamOverrides>,
}

/// A token request is part of a run or a callback; it must not hang either.
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl TokenEndpoint {
    pub async fn exchange_code(
        &self,
        endpoints: &OAuth2Endpoints,
        client: &OAuthClient,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenGrant, TokenError> {
        let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier));
        }
        self.request(endpoints, client, form).await
    }

    pub async fn refresh(
        &self,
        endpoints: &OAuth2Endpoints,
        client: &OAuthClient,
        refresh_token: &str,
    ) -> Result<TokenGrant, TokenError> {
        self.request(endpoints, client, vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    async fn request(
        &self,
        endpoints: &OAuth2Endpoints,
        client: &OAuthClient,
        mut form: Vec<(&str, &str)>,
    ) -> Result<TokenGrant, TokenError> {
        form.extend([("client_id", client.client_id.as_str()), ("client_secret", client.client_secret.expose())]);
        let (url, status, body) = self.post(&endpoints.token_url, |request| request.form(&form)).await?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                TokenError::Failed(format!("the token response from {url} is not an OAuth token response: {e}"))
            });
        }
        Err(token_error(status.as_u16(), &body, &url))
    }

    /// POST to `token_url` with the body `with_body` sets: the URL, and the
    /// answer's status and body.
    pub(super) async fn post(
        &self,
        token_url: &str,
        with_body: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(Url, reqwest::StatusCode, bytes::Bytes), TokenError> {
        let (url, target) = self.target(token_url)?;
        let request = self.client.post(target).header("accept", "application/json").timeout(TOKEN_REQUEST_TIMEOUT);
        let response = with_body(request)
            .send()
            .await
            .map_err(|e| TokenError::Failed(format!("token request to {url} failed: {}", e.without_url())))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| TokenError::Failed(format!("reading the token response from {url}: {}", e.without_url())))?;
        Ok((url, status, body))
    }

    /// The token URL, and where to send its request: the test server an
    /// override names, else the URL itself if it is public https (secrets go
    /// there).
    pub(super) fn target(&self, token_url: &str) -> Result<(Url, Url), TokenError> {
        let url = Url::parse(token_url)
            .map_err(|e| TokenError::Failed(format!("the token URL {token_url:?} is not a URL: {e}")))?;
        let target = match self.overrides.rewrite(&url) {
            Some(target) => target,
            None if url.scheme() != "https" => {
                return Err(TokenError::Failed(format!("the token URL {url} is not https")));
            }
            None => match internal_address(&url) {
                Some(reason) => return Err(TokenError::Failed(format!("the token URL {url} is {reason}"))),
                None => url.clone(),
            },
        };
        Ok((url, target))
    }
}

/// An error response from a token endpoint: RFC 6749's `error` and
/// `error_description`, or Monzo's `code` and `message`.
fn token_error(status: u16, body: &[u8], url: &Url) -> TokenError {
    #[derive(Deserialize, Default)]
    struct ErrorBody {
        error: Option<String>,
        error_description: Option<String>,
        code: Option<String>,
        message: Option<String>,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error.or(parsed.code).unwrap_or_default();
    let description = parsed.error_description.or(parsed.message).unwrap_or_default();
    let message = format!("{url} answered {status} {code}: {description}");
    if code == "invalid_grant" || code.starts_with("unauthorized.bad_refresh_token") {
        TokenError::InvalidGrant(message)
    } else {
        TokenError::Failed(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn the_authorization_url_carries_state_scopes_and_challenge() {
        let endpoints = OAuth2Endpoints {
            authorize_url: "https://auth.example.com/authorize?prompt=consent".into(),
            token_url: "https://auth.example.com/token".into(),
            scopes: vec!["read".into(), "write".into()],
            refresh_token_rotates: true,
            pkce: true,
        };
        let url =
            authorization_url(&endpoints, "client-1", "http://127.0.0.1:8080/cb", "st4te", Some("ch4llenge")).unwrap();
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(query["prompt"], "consent", "the provider's own parameters stay");
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(query["redirect_uri"], "http://127.0.0.1:8080/cb");
        assert_eq!(query["state"], "st4te");
        assert_eq!(query["scope"], "read write");
        assert_eq!(query["code_challenge"], "ch4llenge");
        assert_eq!(query["code_challenge_method"], "S256");
    }

    #[test]
    fn a_grant_keeps_other_fields_and_the_old_refresh_token_unless_rotated() {
        let previous = Credentials::new(BTreeMap::from([
            ("refresh_token".to_string(), "r1".to_string()),
            ("webhook_secret".to_string(), "whsec".to_string()),
            ("expires_at".to_string(), "5".to_string()),
        ]));
        let grant: TokenGrant = serde_json::from_str(r#"{"access_token":"a2","expires_in":"3600"}"#).unwrap();
        let renewed = grant.into_credentials(Some(&previous), 1_000);
        assert_eq!(renewed.get("access_token"), Some("a2"));
        assert_eq!(renewed.get("refresh_token"), Some("r1"), "not rotated: the old one stays");
        assert_eq!(renewed.get("webhook_secret"), Some("whsec"));
        assert_eq!(renewed.expires_at(), Some(3_601_000));
        let rotated: TokenGrant = serde_json::from_str(r#"{"access_token":"a3","refresh_token":"r2"}"#).unwrap();
        let renewed = rotated.into_credentials(Some(&renewed), 1_000);
        assert_eq!((renewed.get("refresh_token"), renewed.expires_at()), (Some("r2"), None));
    }

    #[test]
    fn a_spent_refresh_token_is_an_invalid_grant_and_other_errors_are_not() {
        let url = Url::parse("https://auth.example.com/token").unwrap();
        let rfc = br#"{"error":"invalid_grant","error_description":"refresh token already used"}"#;
        assert!(matches!(token_error(400, rfc, &url), TokenError::InvalidGrant(m) if m.contains("already used")));
        let monzo = br#"{"code":"unauthorized.bad_refresh_token","message":"Refresh token has been used"}"#;
        assert!(matches!(token_error(401, monzo, &url), TokenError::InvalidGrant(_)));
        assert!(matches!(token_error(500, b"oops", &url), TokenError::Failed(_)));
        assert!(matches!(token_error(401, br#"{"error":"invalid_client"}"#, &url), TokenError::Failed(_)));
    }
}
