//! `GET /api/updates`: every instance's status, and `/api/updates/stream`,
//! the same rows as server-sent events whenever they change.

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::extract::QueryParams;
use crate::operations::updates::{self, UpdateRow, UpdatesFilter};
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::IntoParams;

/// How often the stream looks for changes. Runs may be executed by other
/// processes sharing the database, so it reads the database, not local events.
const STREAM_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UpdatesQuery {
    /// `all` (default), `integrations` or `tasks`.
    #[serde(default)]
    #[param(inline)]
    filter: UpdatesFilter,
}

#[utoipa::path(get, path = "/api/updates", tag = "updates", params(UpdatesQuery),
    responses((status = 200, body = Vec<UpdateRow>), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<UpdatesQuery>,
) -> ApiResult<Json<Vec<UpdateRow>>> {
    Ok(Json(updates::rows(&api.host, query.filter).await?))
}

#[utoipa::path(get, path = "/api/updates/stream", tag = "updates", params(UpdatesQuery),
    responses((status = 200, description = "text/event-stream of `updates` events, each the JSON rows of GET /api/updates; sent at once and on every change", content_type = "text/event-stream")))]
pub async fn stream(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<UpdatesQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let filter = query.filter;
    let events = futures_util::stream::unfold((api, None::<Vec<UpdateRow>>), move |(mut api, last)| async move {
        // The first event goes out at once; then one per change, until the
        // server shuts down (graceful shutdown waits for open responses).
        let mut wait = last.is_some();
        loop {
            if *api.stopping.borrow() {
                return None;
            }
            if wait {
                tokio::select! {
                    _ = tokio::time::sleep(STREAM_POLL) => {}
                    _ = api.stopping.changed() => return None,
                }
            }
            wait = true;
            let rows = match updates::rows(&api.host, filter).await {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "reading updates for a stream failed");
                    continue;
                }
            };
            if last.as_ref() != Some(&rows) {
                let event = Event::default().event("updates").json_data(&rows).expect("rows serialise");
                return Some((Ok(event), (api, Some(rows))));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
