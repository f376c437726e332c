//! `records`: read-only queries over the records of the running
//! integration's group and the groups its operator granted it
//! (`record_grants`), for tasks (instance kind `task`: a daily digest, a
//! summary). Only during a task's `fetch`; an integration that talks to an
//! upstream gets a refusal. Pages are bounded and resume from an opaque
//! cursor, so a task never holds a group's history at once.

use super::CallScope;
use crate::domain::records::{EventRecord, ObjectRecord};
use crate::store::records::RecordFilter;
use crate::store::{Store, next_page};

/// Records one page may hold at most.
pub const MAX_PAGE: u32 = 500;

#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    pub kind: Option<String>,
    /// Occurred at or after (ms).
    pub since: Option<i64>,
    /// Occurred before (ms).
    pub until: Option<i64>,
    /// The cursor the previous page ended with.
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<EventRecord>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectQuery {
    pub kind: Option<String>,
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectPage {
    pub objects: Vec<ObjectRecord>,
    pub next: Option<String>,
}

/// What a page is read with: the store, the group whose records the call
/// may read, and the rows to ask for (one more than `limit` tells whether
/// another page follows). Refused for anything but a task, or a `limit`
/// outside 1 to [`MAX_PAGE`].
fn page_of(scope: &mut CallScope, limit: u32) -> wasmtime::Result<Result<(Store, i64, i64), String>> {
    let fetch = scope.fetch_scope("records")?;
    let Some(group) = fetch.records_group else {
        return Ok(Err("only a task (an instance type of kind task) may read its group's records".into()));
    };
    if !(1..=MAX_PAGE).contains(&limit) {
        return Ok(Err(format!("limit must be 1 to {MAX_PAGE}, got {limit}")));
    }
    Ok(Ok((fetch.store.clone(), group, i64::from(limit) + 1)))
}

pub async fn events(scope: &mut CallScope, query: EventQuery) -> wasmtime::Result<Result<EventPage, String>> {
    let (store, group, limit) = match page_of(scope, query.limit)? {
        Ok(page) => page,
        Err(why) => return Ok(Err(why)),
    };
    let after = match query.after.as_deref().map(event_cursor).transpose() {
        Ok(after) => after,
        Err(why) => return Ok(Err(why)),
    };
    let filter = RecordFilter {
        integration_id: None,
        group_id: None,
        reader_group: Some(group),
        kind: query.kind.as_deref(),
        since: query.since,
        until: query.until,
        // One row more than the page tells whether another follows.
        limit,
        newest_first: false,
    };
    let mut rows =
        store.events_page(&filter, after).await.map_err(|e| wasmtime::format_err!("reading records: {e:#}"))?;
    let next = next_page(&mut rows, limit).map(|last| format!("{}:{}", last.event.occurred_at, last.id));
    let events = (rows.into_iter())
        .map(|r| EventRecord {
            external_id: r.event.external_id,
            kind: r.event.kind,
            occurred_at: r.event.occurred_at,
            actor: r.event.actor,
            target: r.event.target,
            value: r.event.value,
            unit: r.event.unit,
            data: r.event.data.to_string(),
        })
        .collect();
    Ok(Ok(EventPage { events, next }))
}

pub async fn objects(scope: &mut CallScope, query: ObjectQuery) -> wasmtime::Result<Result<ObjectPage, String>> {
    let (store, group, limit) = match page_of(scope, query.limit)? {
        Ok(page) => page,
        Err(why) => return Ok(Err(why)),
    };
    let after = match query.after.as_deref().map(|c| c.parse::<i64>().map_err(|_| bad_cursor(c))).transpose() {
        Ok(after) => after,
        Err(why) => return Ok(Err(why)),
    };
    let filter = RecordFilter {
        integration_id: None,
        group_id: None,
        reader_group: Some(group),
        kind: query.kind.as_deref(),
        since: None,
        until: None,
        limit,
        newest_first: false,
    };
    let mut rows =
        store.objects_page(&filter, after).await.map_err(|e| wasmtime::format_err!("reading records: {e:#}"))?;
    let next = next_page(&mut rows, limit).map(|last| last.id.to_string());
    let objects = (rows.into_iter())
        .map(|r| ObjectRecord { external_id: r.external_id, kind: r.kind, name: r.name, data: r.data.to_string() })
        .collect();
    Ok(Ok(ObjectPage { objects, next }))
}

/// An events cursor: `<occurred_at>:<id>`.
fn event_cursor(cursor: &str) -> Result<(i64, i64), String> {
    let (at, id) = cursor.split_once(':').ok_or_else(|| bad_cursor(cursor))?;
    Ok((at.parse().map_err(|_| bad_cursor(cursor))?, id.parse().map_err(|_| bad_cursor(cursor))?))
}

fn bad_cursor(cursor: &str) -> String {
    let shown: String = cursor.chars().take(64).collect();
    format!("after: {shown:?} is not a cursor this host gave")
}
