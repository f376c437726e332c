//! `GET /api/updates`: a page of integrations and tasks with their status,
//! and `/api/updates/stream`, which sends that page and then only what
//! changes in it, with the console's summary whenever it changes.

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::extract::QueryParams;
use crate::operations::console::{self, ConsoleSummary};
use crate::operations::updates::{self, UpdateRow, UpdatesFilter, UpdatesPage};
use crate::status::UpdateStatusKind;
use crate::store::integrations::IntegrationFilter;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use utoipa::{IntoParams, ToSchema};

/// How often the stream looks for changes. Runs may be executed by other
/// processes sharing the database, so it reads the database, not local events.
const STREAM_POLL: Duration = Duration::from_millis(500);

/// A page whose read is slow (a rare status among many rows) is read at most
/// this fraction of the time, so an open tab cannot keep the server busy.
const STREAM_BUSY_SHARE: u32 = 5;
/// How often a stream checks that its token is still accepted: a revoked
/// token's stream ends within this (plus a poll).
const STREAM_TOKEN_CHECK: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UpdatesQuery {
    /// `all` (default), `integrations` or `tasks`.
    #[serde(default)]
    #[param(inline)]
    filter: UpdatesFilter,
    /// Only rows with this status.
    #[param(inline)]
    status: Option<UpdateStatusKind>,
    /// Only this plugin's, e.g. `monzo`.
    plugin: Option<String>,
    /// Only this group's.
    group: Option<i64>,
    /// Only those whose name contains this, in any case.
    name: Option<String>,
    /// Rows per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<i64>,
}

/// What one request asks for: the rows wanted, from where, how many.
struct PageRequest {
    query: updates::UpdatesQuery,
    after: Option<i64>,
    limit: i64,
}

impl UpdatesQuery {
    fn into_request(self) -> ApiResult<PageRequest> {
        let integrations = IntegrationFilter {
            plugin_id: self.plugin,
            group_id: self.group,
            name_contains: super::search_text(self.name),
            ..IntegrationFilter::default()
        };
        Ok(PageRequest {
            query: updates::UpdatesQuery { kind: self.filter, status: self.status, integrations },
            after: self.cursor,
            limit: super::page_limit(self.limit, 100, 500)?,
        })
    }
}

impl PageRequest {
    async fn read(&self, api: &ApiState) -> anyhow::Result<UpdatesPage> {
        updates::page(&api.host, &self.query, self.after, self.limit).await
    }
}

#[utoipa::path(get, path = "/api/updates", tag = "updates", params(UpdatesQuery),
    responses((status = 200, body = UpdatesPage), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<UpdatesQuery>,
) -> ApiResult<Json<UpdatesPage>> {
    Ok(Json(query.into_request()?.read(&api).await?))
}

/// What changed on a streamed page since the previous event.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdatesChanges {
    /// Rows that are new on the page or differ from when last sent.
    pub changed: Vec<UpdateRow>,
    /// Ids of rows no longer on the page (deleted, or no longer matching).
    pub removed: Vec<i64>,
    /// The page's `next_cursor` now.
    pub next_cursor: Option<i64>,
}

/// The page a stream last sent, by id.
struct Sent {
    rows: BTreeMap<i64, UpdateRow>,
    next_cursor: Option<i64>,
}

impl Sent {
    fn of(page: &UpdatesPage) -> Sent {
        Sent { rows: page.rows.iter().map(|row| (row.id, row.clone())).collect(), next_cursor: page.next_cursor }
    }

    /// What differs in `page`; `None` when nothing does.
    fn changes(&self, page: &UpdatesPage) -> Option<UpdatesChanges> {
        let changed: Vec<UpdateRow> =
            page.rows.iter().filter(|row| self.rows.get(&row.id) != Some(*row)).cloned().collect();
        let removed: Vec<i64> =
            self.rows.keys().copied().filter(|id| !page.rows.iter().any(|row| row.id == *id)).collect();
        let unchanged = changed.is_empty() && removed.is_empty() && self.next_cursor == page.next_cursor;
        (!unchanged).then_some(UpdatesChanges { changed, removed, next_cursor: page.next_cursor })
    }
}

/// What a stream has sent so far.
struct Streamed {
    page: Option<Sent>,
    console: Option<ConsoleSummary>,
}

#[utoipa::path(get, path = "/api/updates/stream", tag = "updates", params(UpdatesQuery),
    responses((status = 200, description = "text/event-stream: first a `page` event, the JSON of GET /api/updates with the same query, and a `console` event, the JSON of GET /api/console; then a `changes` event (UpdatesChanges: changed rows, removed ids, next_cursor) whenever that page changes, and a `console` event whenever the summary does", content_type = "text/event-stream"),
        (status = 422, body = ErrorBody)))]
pub async fn stream(
    State(api): State<ApiState>,
    headers: HeaderMap,
    QueryParams(query): QueryParams<UpdatesQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let request = query.into_request()?;
    // Accepted when the stream opened; checked again while it lasts.
    let token =
        Access { token: super::auth::bearer(&headers).unwrap_or_default().to_string(), checked: Instant::now() };
    let start = (api, request, Streamed { page: None, console: None }, Duration::ZERO, token);
    let unfolded = |(mut api, request, mut streamed, mut read_took, mut access): (
        ApiState,
        PageRequest,
        Streamed,
        Duration,
        Access,
    )| async move {
        // The page goes out at once; then its changes, until the server
        // shuts down (graceful shutdown waits for open responses) or the
        // token is revoked.
        let mut wait = streamed.page.is_some();
        loop {
            if *api.stopping.borrow() || !access.still_accepted(&api).await {
                return None;
            }
            if wait {
                tokio::select! {
                    _ = tokio::time::sleep(STREAM_POLL.max(read_took * STREAM_BUSY_SHARE)) => {}
                    _ = api.stopping.changed() => return None,
                }
            }
            wait = true;
            let reading = std::time::Instant::now();
            let read = tokio::try_join!(request.read(&api), console::summary(&api.host));
            read_took = reading.elapsed();
            let (page, summary) = match read {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "reading updates for a stream failed");
                    continue;
                }
            };
            let mut events = Vec::new();
            match &streamed.page {
                None => events.push(Event::default().event("page").json_data(&page)),
                Some(sent) => {
                    events.extend(sent.changes(&page).map(|c| Event::default().event("changes").json_data(&c)))
                }
            }
            if streamed.console.as_ref() != Some(&summary) {
                events.push(Event::default().event("console").json_data(&summary));
            }
            if events.is_empty() {
                continue;
            }
            let events: Vec<_> = events.into_iter().map(|event| Ok(event.expect("rows serialise"))).collect();
            streamed = Streamed { page: Some(Sent::of(&page)), console: Some(summary) };
            return Some((futures_util::stream::iter(events), (api, request, streamed, read_took, access)));
        }
    };
    let events = futures_util::stream::unfold(start, unfolded);
    Ok(Sse::new(events.flatten()).keep_alive(KeepAlive::default()))
}

/// The token a stream was opened with, and when it was last found accepted.
struct Access {
    token: String,
    checked: Instant,
}

impl Access {
    /// False once the token is no longer accepted (revoked). A failed check
    /// (the database down) ends nothing: the stream's reads fail meanwhile.
    async fn still_accepted(&mut self, api: &ApiState) -> bool {
        if self.checked.elapsed() < STREAM_TOKEN_CHECK {
            return true;
        }
        match api.tokens.accepts(api.host.store(), &self.token).await {
            Ok(accepted) => {
                self.checked = Instant::now();
                accepted
            }
            Err(_) => true,
        }
    }
}
