//! Probes and metrics, outside `/api` and without a token: `/healthz` (the
//! process answers), `/readyz` (database reachable, plugins loaded) and
//! `/metrics` (Prometheus text format).

use super::ApiState;
use crate::domain::queue::Queue;
use crate::metrics::{METRICS, QueueLabels};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// `ok`, or why the database cannot be reached.
    pub database: String,
    pub plugins_loaded: usize,
    pub plugin_failures: usize,
}

#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(api): State<ApiState>) -> (StatusCode, Json<Readiness>) {
    let database = match sqlx::query("SELECT 1").execute(api.host.store().pool()).await {
        Ok(_) => "ok".to_string(),
        Err(error) => {
            tracing::warn!(%error, "readiness: the database is not reachable");
            "unreachable".to_string()
        }
    };
    let plugins_loaded = api.host.runner.plugins.plugins().len();
    let ready = database == "ok" && plugins_loaded > 0;
    let readiness =
        Readiness { ready, database, plugins_loaded, plugin_failures: api.host.runner.plugins.failures().len() };
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(readiness))
}

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(State(api): State<ApiState>) -> impl IntoResponse {
    match api.host.store().queue_depths().await {
        Ok(depths) => {
            for queue in Queue::ALL {
                let waiting = depths.iter().find(|(q, _)| *q == queue).map_or(0, |(_, n)| *n);
                METRICS.queue_depth.get_or_create(&QueueLabels { queue: queue.as_str().into() }).set(waiting);
            }
        }
        Err(error) => tracing::warn!(error = %format!("{error:#}"), "metrics: reading queue depths failed"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], METRICS.encode())
}
