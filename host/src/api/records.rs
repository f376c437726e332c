//! `GET /api/events` and `GET /api/objects`: the synced data, filtered and
//! cursor-paginated (a cursor stays valid while new records arrive).

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::QueryParams;
use crate::store::records::{EventRow, ObjectRow, RecordFilter};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    integration: Option<i64>,
    kind: Option<String>,
    /// Events that occurred (objects that changed) at or after this time, epoch ms.
    since: Option<i64>,
    /// ... and before this time, epoch ms.
    until: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

impl RecordQuery {
    /// The position `?cursor=` names, read by `parse`.
    fn cursor<T>(&self, parse: impl FnOnce(&str) -> Option<T>) -> ApiResult<Option<T>> {
        self.cursor
            .as_deref()
            .map(|cursor| parse(cursor).ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API gave out")))
            .transpose()
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
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// In time order.
    pub events: Vec<EventRow>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectPage {
    pub objects: Vec<ObjectRow>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/events", tag = "data", params(RecordQuery),
    responses((status = 200, body = EventPage), (status = 422, body = ErrorBody)))]
pub async fn events(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<RecordQuery>,
) -> ApiResult<Json<EventPage>> {
    let filter = query.filter()?;
    // "<occurred_at>.<id>": the last event of the previous page.
    let after = query.cursor(|cursor| {
        let (time, id) = cursor.split_once('.')?;
        Some((time.parse().ok()?, id.parse().ok()?))
    })?;
    let mut events = api.host.store().events_page(&filter, after).await?;
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
    let filter = query.filter()?;
    // "<id>": the last object of the previous page.
    let after = query.cursor(|cursor| cursor.parse().ok())?;
    let mut objects = api.host.store().objects_page(&filter, after).await?;
    let next_cursor = crate::store::next_page(&mut objects, filter.limit).map(|last| last.id.to_string());
    Ok(Json(ObjectPage { objects, next_cursor }))
}
