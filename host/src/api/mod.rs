//! The HTTP surface of `inlet serve`: the admin API under `/api` (bearer
//! token), webhook ingress, the OAuth connect flow, the Updates page, and
//! health, readiness and metrics. The OpenAPI document at
//! `/api/openapi.json` is generated from the route handlers themselves.

pub mod auth;
pub mod console;
pub mod error;
pub mod extract;
pub mod groups;
pub mod health;
pub mod integrations;
pub mod jobs;
pub mod oauth;
pub mod openapi;
pub mod plugins;
pub mod records;
pub mod runs;
pub mod schedules;
pub mod server;
pub mod tokens;
pub mod ui;
pub mod updates;
pub mod webhooks;

use crate::Host;
use auth::AdminTokens;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{any, get};
use axum::{Json, Router};
use error::ApiError;
use std::sync::Arc;
use url::Url;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Clone)]
pub struct ApiState {
    pub host: Arc<Host>,
    /// Where browsers reach this host.
    pub public_url: Url,
    pub tokens: AdminTokens,
    /// Turns true when the server is shutting down.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Webhook deliveries being received at once, at most.
    pub webhook_slots: Arc<webhooks::WebhookSlots>,
    /// Refused deliveries, for logging them sparingly.
    pub refusals: Arc<webhooks::Refusals>,
}

impl ApiState {
    pub fn new(
        host: Arc<Host>,
        public_url: Url,
        tokens: AdminTokens,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> ApiState {
        let webhook_slots = Arc::new(webhooks::WebhookSlots::new(host.settings.webhook_concurrency));
        ApiState { host, public_url, tokens, stopping, webhook_slots, refusals: Arc::default() }
    }

    /// An absolute URL of this host for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.as_str().trim_end_matches('/'))
    }
}

/// Routes of a serving process.
pub fn router(state: ApiState) -> Router {
    let (api, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(plugins::list))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::delete))
        .routes(routes!(groups::approve))
        .routes(routes!(groups::connect_bank))
        .routes(routes!(groups::institutions))
        .routes(routes!(oauth::start_link))
        .routes(routes!(integrations::list, integrations::create))
        .routes(routes!(integrations::get, integrations::replace, integrations::delete))
        .routes(routes!(integrations::sync_settings))
        .routes(routes!(integrations::sync))
        .routes(routes!(integrations::reprocess))
        .routes(routes!(integrations::pause))
        .routes(routes!(integrations::resume))
        .routes(routes!(integrations::sync_history))
        .routes(routes!(runs::logs))
        .routes(routes!(schedules::preview))
        .routes(routes!(updates::list))
        .routes(routes!(updates::stream))
        .routes(routes!(console::summary))
        .routes(routes!(jobs::failed, jobs::flush))
        .routes(routes!(jobs::retry))
        .routes(routes!(jobs::retry_all))
        .routes(routes!(jobs::failed_batches))
        .routes(routes!(jobs::retry_batch))
        .routes(routes!(jobs::retry_all_batches))
        .routes(routes!(records::events))
        .routes(routes!(records::objects))
        .routes(routes!(records::blocks))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .split_for_parts();
    let (public, public_document) = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(webhooks::receive))
        .split_for_parts();
    let (metrics, metrics_document) = OpenApiRouter::new().routes(routes!(health::metrics)).split_for_parts();
    let mut document = document;
    let mut public_paths: Vec<String> = public_document.paths.paths.keys().cloned().collect();
    let metrics = match state.host.settings.metrics_require_token {
        true => metrics.route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token)),
        false => {
            public_paths.extend(metrics_document.paths.paths.keys().cloned());
            metrics
        }
    };
    document.merge(public_document);
    document.merge(metrics_document);
    openapi::complete(&mut document, &public_paths);
    let document = Arc::new(document);
    let webhook_limit = state.host.settings.webhook_max_bytes;
    let api = api
        .route("/api/openapi.json", get(move || async move { Json(document.as_ref().clone()) }))
        .route("/api", any(no_such_route))
        .route("/api/{*rest}", any(no_such_route))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    // Webhook bodies are read by the handler, after the sender's checks.
    api.merge(public.layer(DefaultBodyLimit::max(webhook_limit)))
        .merge(metrics)
        .merge(ui::router())
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this route does not take that method; see /api/openapi.json",
            )
        })
        .route("/oauth/{plugin}/start", get(oauth::start).post(oauth::go_to_provider))
        .route("/oauth/{plugin}/callback", get(oauth::callback))
        .route("/connect/bank/{group}/callback", get(oauth::bank_callback))
        .with_state(state)
}

async fn no_such_route() -> ApiError {
    ApiError::not_found("no such API route; see /api/openapi.json")
}

/// A page size from `?limit=`: `default` when absent, else 1 to `max`.
fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid("limit", format!("must be 1 to {max}, got {n}"))),
    }
}

/// A `?name=` search: `None` when absent or blank.
fn search_text(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

/// Routes of a worker-only process.
pub fn health_router() -> Router {
    Router::new().route("/healthz", get(health::healthz))
}

/// A minimal HTML page for a person at a browser.
fn page(title: &str, message: &str) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!doctype html><meta charset=utf-8><title>{0} · inlet</title><h1>{0}</h1><p>{1}</p>",
        escape_html(title),
        escape_html(message)
    ))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
