//! The HTTP surface of `inlet serve`: health and the OAuth connect flow.

pub mod oauth;

use crate::Host;
use axum::Router;
use axum::routing::get;
use std::sync::Arc;
use url::Url;

#[derive(Clone)]
pub struct ApiState {
    pub host: Arc<Host>,
    /// Where browsers reach this host.
    pub public_url: Url,
}

impl ApiState {
    /// An absolute URL of this host for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.as_str().trim_end_matches('/'))
    }
}

/// Routes of a serving process.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/oauth/{plugin}/start", get(oauth::start))
        .route("/oauth/{plugin}/callback", get(oauth::callback))
        .with_state(state)
        .merge(health_router())
}

/// Routes of a worker-only process.
pub fn health_router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
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
