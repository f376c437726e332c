//! `GET /api/events` and `GET /api/objects`: the synced data, filtered and
//! cursor-paginated (a cursor stays valid while new records arrive).

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::QueryParams;
use crate::store::records::{BlockRow, ChangePosition, EventRow, FeedCursor, ObjectRow, RecordFilter};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The order of a page of events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecordOrder {
    /// By when the events occurred (objects: as they were first stored).
    #[default]
    Time,
    /// The same, newest first.
    Newest,
    /// The change feed: in the order events were written (created, changed
    /// or deleted), each once at its latest change, deleted ones included.
    Change,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    integration: Option<i64>,
    kind: Option<String>,
    /// Blocks only: those of the event with this external id (with `integration`).
    event: Option<String>,
    /// Events that occurred (objects that changed) at or after this time, epoch ms.
    since: Option<i64>,
    /// ... and before this time, epoch ms.
    until: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `time` (default): events by when they occurred, objects as first
    /// stored; a cursor there does not see events that arrive later with an
    /// older time. `newest`: the same, newest first. Events only, `change`:
    /// the change feed, which a consumer follows to see every event created,
    /// changed or deleted since its cursor, whatever its time; with `since`
    /// and `until`, those any of whose times fell in the window, so that one
    /// moved out of it is listed with its new time.
    #[serde(default)]
    #[param(inline)]
    order: RecordOrder,
}

impl RecordQuery {
    /// The position `?cursor=` names, read by `parse`.
    fn cursor<T>(&self, parse: impl FnOnce(&str) -> Option<T>) -> ApiResult<Option<T>> {
        self.cursor
            .as_deref()
            .map(|cursor| parse(cursor).ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API gave out")))
            .transpose()
    }

    /// `event` names an event whose blocks to read; nothing else belongs to one.
    fn without_event(&self) -> ApiResult<()> {
        match self.event {
            Some(_) => Err(ApiError::invalid("event", "only blocks belong to an event (/api/blocks)")),
            None => Ok(()),
        }
    }

    /// Objects and blocks come in id order: only events have a change feed.
    fn in_id_order(&self) -> ApiResult<()> {
        match self.order {
            RecordOrder::Change => Err(ApiError::invalid(
                "order",
                "objects and blocks come in id order (`time` or `newest`); only events have a change order (`change`)",
            )),
            RecordOrder::Time | RecordOrder::Newest => Ok(()),
        }
    }

    fn filter(&self) -> ApiResult<RecordFilter<'_>> {
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since >= until
        {
            return Err(ApiError::invalid("until", format!("must be after since ({since}), got {until}")));
        }
        Ok(RecordFilter {
            integration_id: self.integration,
            group_id: None,
            reader_group: None,
            kind: self.kind.as_deref(),
            since: self.since,
            until: self.until,
            // One row more than a page tells whether another page follows.
            limit: super::page_limit(self.limit, 100, 1000)? + 1,
            newest_first: self.order == RecordOrder::Newest,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// In the order asked for.
    pub events: Vec<EventRow>,
    /// Where the next page starts. In time order it is absent on the last
    /// page; the change feed has no last page and always gives one: an
    /// empty page there means nothing changed yet.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectPage {
    pub objects: Vec<ObjectRow>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockPage {
    pub blocks: Vec<BlockRow>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/events", tag = "data", params(RecordQuery),
    responses((status = 200, body = EventPage), (status = 422, body = ErrorBody),
        (status = 410, description = "`order=change` with a cursor from before a deleted event pruned since \
            it was given out: read the feed again from its start, without a cursor", body = ErrorBody)))]
pub async fn events(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<RecordQuery>,
) -> ApiResult<Json<EventPage>> {
    query.without_event()?;
    let filter = query.filter()?;
    let store = api.host.store();
    if query.order == RecordOrder::Change {
        // "c<transaction>.<change>.<prunes>.<started at>": where the previous
        // page left its reader (see `FeedCursor`). Cursors given out before
        // prunes were counted are "c<transaction>.<change>".
        let after = query.cursor(|cursor| {
            let parts: Option<Vec<i64>> = cursor.strip_prefix('c')?.split('.').map(|part| part.parse().ok()).collect();
            match parts?[..] {
                [xact, seq] => Some(FeedCursor::at(ChangePosition { xact, seq })),
                [xact, seq, prunes, started_xact, started_seq] => Some(FeedCursor {
                    position: ChangePosition { xact, seq },
                    prunes,
                    started_at: ChangePosition { xact: started_xact, seq: started_seq },
                }),
                _ => None,
            }
        })?;
        let page = store.event_changes_page(&filter, after).await?.map_err(|expired| {
            let message = format!(
                "deleted events after this cursor were pruned since it was given out (through change c{}.{}; \
                 `deleted_events_max_age_days` says how long they are kept): read the feed again from its \
                 start, without a cursor",
                expired.pruned_through.xact, expired.pruned_through.seq
            );
            ApiError::new(StatusCode::GONE, "cursor-expired", message)
        })?;
        // A feed has no last page: the cursor is where to ask again later.
        let next = page.next;
        let (position, started_at) = (next.position, next.started_at);
        let next_cursor =
            Some(format!("c{}.{}.{}.{}.{}", position.xact, position.seq, next.prunes, started_at.xact, started_at.seq));
        let events = page.changes.into_iter().map(|(event, _)| event).collect();
        return Ok(Json(EventPage { events, next_cursor }));
    }
    // "<occurred_at>.<id>": the last event of the previous page.
    let after = query.cursor(|cursor| {
        let (time, id) = cursor.split_once('.')?;
        Some((time.parse().ok()?, id.parse().ok()?))
    })?;
    let mut events = store.events_page(&filter, after).await?;
    let next_cursor = crate::store::next_page(&mut events, filter.limit)
        .map(|last| format!("{}.{}", last.event.occurred_at, last.id));
    Ok(Json(EventPage { events, next_cursor }))
}

#[utoipa::path(get, path = "/api/objects", tag = "data", params(RecordQuery),
    responses((status = 200, body = ObjectPage), (status = 422, body = ErrorBody)))]
pub async fn objects(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<RecordQuery>,
) -> ApiResult<Json<ObjectPage>> {
    query.without_event()?;
    query.in_id_order()?;
    let filter = query.filter()?;
    // "<id>": the last object of the previous page.
    let after = query.cursor(|cursor| cursor.parse().ok())?;
    let mut objects = api.host.store().objects_page(&filter, after).await?;
    let next_cursor = crate::store::next_page(&mut objects, filter.limit).map(|last| last.id.to_string());
    Ok(Json(ObjectPage { objects, next_cursor }))
}

#[utoipa::path(get, path = "/api/blocks", tag = "data", params(RecordQuery),
    responses((status = 200, body = BlockPage), (status = 422, body = ErrorBody)))]
pub async fn blocks(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<RecordQuery>,
) -> ApiResult<Json<BlockPage>> {
    query.in_id_order()?;
    if query.event.is_some() && query.integration.is_none() {
        return Err(ApiError::invalid("integration", "an event's id names it within its integration: give both"));
    }
    let filter = query.filter()?;
    // "<id>": the last block of the previous page.
    let after = query.cursor(|cursor| cursor.parse().ok())?;
    let mut blocks = api.host.store().blocks_page(&filter, query.event.as_deref(), after).await?;
    let next_cursor = crate::store::next_page(&mut blocks, filter.limit).map(|last| last.id.to_string());
    Ok(Json(BlockPage { blocks, next_cursor }))
}
