//! The OAuth side of the fake Monzo, as Monzo documents it: an authorization
//! code for a registered client and redirect URI, `POST /oauth2/token` for
//! `authorization_code` and `refresh_token` grants, access tokens that expire
//! and refresh tokens that are spent on use (a second refresh with the same
//! token is `invalid_grant`). PKCE is checked when the authorization asked
//! for it.

use crate::auth::oauth::pkce_challenge;
use anyhow::{Context, Result, bail};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use url::Url;

pub const CLIENT_ID: &str = "oauth2client_00009demo";
pub const CLIENT_SECRET: &str = "mnzconf.demo-client-secret";

struct IssuedCode {
    redirect_uri: String,
    challenge: Option<String>,
}

struct Tokens {
    /// The access token upstream accepts now; `None` once expired.
    access_token: Option<String>,
    /// The refresh token that works now; spent by a refresh.
    refresh_token: Option<String>,
    /// Lifetime of the access tokens it grants, in seconds.
    expires_in: i64,
    serial: u64,
    codes: HashMap<String, IssuedCode>,
    refresh_calls: usize,
    /// Every token it granted, for tests that look for leaks.
    issued: Vec<String>,
    /// Whether a refresh spends the refresh token and grants a new one
    /// (Monzo), or keeps it and answers without one (Google, often Spotify).
    rotates: bool,
}

pub struct FakeOAuth(Mutex<Tokens>);

impl FakeOAuth {
    pub fn new(access_token: &str) -> FakeOAuth {
        FakeOAuth(Mutex::new(Tokens {
            access_token: Some(access_token.to_string()),
            refresh_token: None,
            expires_in: 21_600, // Monzo's six hours
            serial: 0,
            codes: HashMap::new(),
            refresh_calls: 0,
            issued: vec![access_token.to_string()],
            rotates: true,
        }))
    }

    /// A provider whose refreshes keep the refresh token and grant none.
    pub fn keeping_refresh_tokens(self) -> FakeOAuth {
        self.tokens().rotates = false;
        self
    }

    /// A refresh token that works now, as a consent the operator copied
    /// would give (`inlet groups add --refresh-token`).
    pub fn grant_refresh_token(&self) -> String {
        let mut tokens = self.tokens();
        tokens.serial += 1;
        let refresh = format!("fake_refresh.{:06}", tokens.serial);
        tokens.issued.push(refresh.clone());
        tokens.refresh_token = Some(refresh.clone());
        refresh
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, Tokens> {
        self.0.lock().expect("fake OAuth lock")
    }

    /// Whether an `Authorization` header carries the current access token.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let tokens = self.tokens();
        tokens.access_token.as_ref().is_some_and(|t| authorization == Some(format!("Bearer {t}").as_str()))
    }

    pub fn access_token(&self) -> Option<String> {
        self.tokens().access_token.clone()
    }

    /// Refresh requests received, successful or not.
    pub fn refresh_calls(&self) -> usize {
        self.tokens().refresh_calls
    }

    /// Every access and refresh token granted so far.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.tokens().issued.clone()
    }

    /// Lifetime of access tokens granted from now on.
    pub fn set_token_lifetime(&self, seconds: i64) {
        self.tokens().expires_in = seconds;
    }

    /// The current access token stops working (it expired upstream).
    pub fn expire_access_token(&self) {
        self.tokens().access_token = None;
    }

    /// The refresh token stops working (the user revoked access).
    pub fn revoke_refresh_token(&self) {
        self.tokens().refresh_token = None;
    }

    /// The person approves access at `authorize_url`: returns the URL the
    /// provider sends their browser to (the redirect URI with code and state).
    pub fn approve(&self, authorize_url: &str) -> Result<Url> {
        let url = Url::parse(authorize_url)?;
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        if query.get("response_type").map(String::as_str) != Some("code") {
            bail!("response_type must be code");
        }
        if query.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
            bail!("unknown client_id {:?}", query.get("client_id"));
        }
        let state = query.get("state").context("no state")?;
        let redirect_uri = query.get("redirect_uri").context("no redirect_uri")?;
        let challenge = match (query.get("code_challenge"), query.get("code_challenge_method")) {
            (Some(challenge), Some(method)) if method == "S256" => Some(challenge.clone()),
            (Some(_), method) => bail!("unsupported code_challenge_method {method:?}"),
            (None, _) => None,
        };
        let mut tokens = self.tokens();
        tokens.serial += 1;
        let code = format!("authcode_{}", tokens.serial);
        tokens.codes.insert(code.clone(), IssuedCode { redirect_uri: redirect_uri.clone(), challenge });
        let mut back = Url::parse(redirect_uri)?;
        back.query_pairs_mut().append_pair("code", &code).append_pair("state", state);
        Ok(back)
    }

    /// Answer `POST /oauth2/token` with this form.
    pub fn token_response(&self, form: &HashMap<String, String>) -> (StatusCode, Value) {
        let field = |name: &str| form.get(name).map(String::as_str);
        let invalid = |status: StatusCode, error: &str, description: &str| {
            (status, json!({"error": error, "error_description": description}))
        };
        if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
            return invalid(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed");
        }
        let mut tokens = self.tokens();
        match field("grant_type") {
            Some("authorization_code") => {
                let Some(issued) = field("code").and_then(|code| tokens.codes.remove(code)) else {
                    return invalid(StatusCode::BAD_REQUEST, "invalid_grant", "Unknown or used authorization code");
                };
                if field("redirect_uri") != Some(issued.redirect_uri.as_str()) {
                    return invalid(StatusCode::BAD_REQUEST, "invalid_grant", "redirect_uri does not match");
                }
                if let Some(challenge) = issued.challenge
                    && field("code_verifier").map(pkce_challenge) != Some(challenge)
                {
                    return invalid(StatusCode::BAD_REQUEST, "invalid_grant", "code_verifier does not match");
                }
            }
            Some("refresh_token") => {
                tokens.refresh_calls += 1;
                if tokens.refresh_token.is_none() || field("refresh_token") != tokens.refresh_token.as_deref() {
                    return invalid(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token already used or revoked");
                }
            }
            other => {
                return invalid(StatusCode::BAD_REQUEST, "unsupported_grant_type", &format!("{other:?}"));
            }
        }
        tokens.serial += 1;
        let serial = tokens.serial;
        let access = format!("mnz_access.{serial:06}.fake");
        tokens.issued.push(access.clone());
        tokens.access_token = Some(access.clone());
        let mut body = json!({
            "access_token": access,
            "client_id": CLIENT_ID,
            "expires_in": tokens.expires_in,
            "token_type": "Bearer",
            "user_id": "user_00009demo",
        });
        let first_grant = field("grant_type") == Some("authorization_code");
        if tokens.rotates || first_grant {
            let refresh = format!("mnz_refresh.{serial:06}.fake");
            tokens.issued.push(refresh.clone());
            tokens.refresh_token = Some(refresh.clone());
            body["refresh_token"] = json!(refresh);
        }
        (StatusCode::OK, body)
    }
}
