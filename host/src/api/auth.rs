//! The admin API's bearer tokens. The first `inlet serve` on a database
//! prints a generated token once and stores only its SHA-256;
//! `INLET_ADMIN_TOKEN` adds one chosen by the operator.

use super::ApiState;
use super::error::ApiError;
use crate::operations::tokens::{self, digest};
use crate::store::Store;
use anyhow::Result;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// Tokens this process accepts besides those stored.
#[derive(Clone, Default)]
pub struct AdminTokens {
    /// SHA-256 (hex) of `INLET_ADMIN_TOKEN`.
    configured: Option<String>,
}

/// A configured token shorter than this is refused: it could be guessed.
const MIN_TOKEN_CHARS: usize = 16;

impl AdminTokens {
    pub fn new(configured: Option<&str>) -> Result<AdminTokens> {
        let configured = configured.map(str::trim).filter(|t| !t.is_empty());
        if let Some(token) = configured
            && token.chars().count() < MIN_TOKEN_CHARS
        {
            anyhow::bail!("INLET_ADMIN_TOKEN must be at least {MIN_TOKEN_CHARS} characters");
        }
        Ok(AdminTokens { configured: configured.map(digest) })
    }

    /// Whether `INLET_ADMIN_TOKEN` is accepted too.
    pub fn has_configured(&self) -> bool {
        self.configured.is_some()
    }

    /// A new token when the database has none and none is configured, to be
    /// shown once; its digest is stored.
    pub async fn create_first(&self, store: &Store) -> Result<Option<String>> {
        if self.configured.is_some() || store.api_token_count().await? > 0 {
            return Ok(None);
        }
        Ok(Some(tokens::mint(store, "first start").await?.1))
    }

    pub async fn accepts(&self, store: &Store, token: &str) -> Result<bool> {
        let presented = digest(token);
        if let Some(configured) = &self.configured
            && bool::from(configured.as_bytes().ct_eq(presented.as_bytes()))
        {
            return Ok(true);
        }
        store.use_api_token(&presented).await
    }
}

/// The token an `Authorization: Bearer <token>` header presents.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// Middleware: 401 unless the request carries `Authorization: Bearer <token>`
/// with a token this host accepts.
pub async fn require_token(State(api): State<ApiState>, request: Request, next: Next) -> Response {
    let presented = bearer(request.headers());
    let accepted = match presented {
        Some(token) => match api.tokens.accepts(api.host.store(), token).await {
            Ok(accepted) => accepted,
            Err(error) => return ApiError::from(error).into_response(),
        },
        None => false,
    };
    if !accepted {
        let message = match presented {
            None => "send the admin token as Authorization: Bearer <token>",
            Some(_) => "the token is not valid",
        };
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(request).await
}
