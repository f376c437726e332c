//! The collections Oura lists by date (`start_date`, `end_date`, `next_token`):
//! daily sleep, activity and readiness, sleep periods, and workouts. Each
//! document has an `id` and the user's local `day`; each becomes an event.

use crate::days::{self, Day};
use crate::{API, Ask, Config, array, pages, string, time_of};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::snapshot::Snapshot;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A date-listed collection and the events it becomes.
pub struct Collection {
    /// Its path under `/v2/usercollection`, also the batch kind.
    pub path: &'static str,
    /// The kind of its events.
    pub kind: &'static str,
    /// The OAuth scope Oura requires for it.
    pub scope: &'static str,
}

pub const DAILY_SLEEP: Collection = Collection { path: "daily_sleep", kind: "daily_sleep", scope: "daily" };
pub const DAILY_ACTIVITY: Collection = Collection { path: "daily_activity", kind: "daily_activity", scope: "daily" };
pub const DAILY_READINESS: Collection = Collection { path: "daily_readiness", kind: "daily_readiness", scope: "daily" };
pub const SLEEP: Collection = Collection { path: "sleep", kind: "sleep", scope: "daily" };
pub const WORKOUTS: Collection = Collection { path: "workout", kind: "workout", scope: "workout" };

impl Collection {
    pub fn by_path(path: &str) -> Option<&'static Collection> {
        [&DAILY_SLEEP, &DAILY_ACTIVITY, &DAILY_READINESS, &SLEEP, &WORKOUTS].into_iter().find(|c| c.path == path)
    }
}

/// At most this many days per request.
const WINDOW_DAYS: i64 = 30;

/// The last day read completely, `YYYY-MM-DD`.
fn cursor() -> state::Key<String> {
    state::Key::new("cursor")
}

/// Read from the backfill's day, or from `refresh_days` before the cursor,
/// to tomorrow (Oura's `day` is the user's local date, which can be ahead
/// of UTC), window by window. The cursor moves to a window's last day once
/// the whole window is read, so a run that fails midway is read again.
pub fn fetch(collection: &Collection, config: &Config, mode: &FetchMode) -> Result<FetchSummary, PluginError> {
    let today = days::of(time::now());
    let last = days::add(today, 1);
    let from = match mode {
        FetchMode::Backfill(from) => days::of(*from),
        FetchMode::Incremental => match cursor().get()?.as_deref().and_then(days::parse) {
            Some(read) => days::add(read.min(today), -config.refresh_days()),
            None => config.first_day(today)?,
        },
    };
    let ask = Ask { path: collection.path, scope: collection.scope, since: config.since.as_deref() };
    let windows = days::windows(from, last, WINDOW_DAYS);
    let mut summary = FetchSummary::default();
    for (done, (start, end)) in windows.iter().enumerate() {
        summary.items_seen += read_window(collection, &ask, *start, *end)?;
        cursor().set(&end.to_string())?;
        checkpoint()?;
        log::progress(done as u64 + 1, Some(windows.len() as u64));
    }
    log::info(format!("{} {} documents from {from} to {last}", summary.items_seen, collection.path));
    Ok(summary)
}

/// Every document of the days `start` to `end`, emitted page by page; then,
/// each of those days read completely, the documents that are gone since the
/// last read of that day are tombstoned.
fn read_window(collection: &Collection, ask: &Ask, start: Day, end: Day) -> Result<u64, PluginError> {
    // Oura compares date-only bounds, as midnight UTC, with each document's
    // own time (`timestamp`, `bedtime_start`, `start_datetime`), in the
    // user's offset: a day's documents can lie up to a day either side of
    // it. Ask for more and keep the documents whose `day` is in the window.
    let first = http::get(format!("{API}/{}", collection.path))
        .authenticated()
        .query("start_date", days::add(start, -1).to_string())
        .query("end_date", days::add(end, 2).to_string());
    let mut seen: BTreeMap<Day, Vec<String>> = days::range(start, end).map(|day| (day, Vec::new())).collect();
    let mut count = 0;
    pages(first, ask, |data| {
        let mut kept = Vec::new();
        for document in data {
            let day = string(&document, "day")?;
            let Some(ids) = days::parse(&day).and_then(|day| seen.get_mut(&day)) else { continue };
            ids.push(string(&document, "id")?);
            kept.push(document);
        }
        count += kept.len() as u64;
        if !kept.is_empty() {
            emit_json(collection.path, &json!({ "data": kept }))?;
        }
        checkpoint()
    })?;
    for (day, ids) in seen {
        let mut snapshot = Snapshot::events(format!("{}.{day}", collection.path), collection.kind);
        snapshot.saw_all(ids);
        snapshot.complete()?;
    }
    Ok(count)
}

pub fn process(collection: &Collection, payload: &Value) -> Result<Records, PluginError> {
    let mut records = Records::default();
    for document in array(&payload["data"]) {
        let id = string(document, "id")?;
        match collection.kind {
            "sleep" => sleep_period(id, document, &mut records)?,
            "workout" => {
                let event = EventRecord::new(collection.kind, id, time_of(document, "start_datetime")?);
                let event = match document["calories"].as_f64() {
                    Some(calories) => event.value(calories, "kcal"),
                    None => event,
                };
                records.events.push(event.data(document)?);
            }
            // A day's summary: its score, contributors and the rest.
            _ => {
                let occurred_at = match document["timestamp"].as_str() {
                    Some(_) => time_of(document, "timestamp")?,
                    None => days::parse(&string(document, "day")?)
                        .map(days::midnight)
                        .ok_or_else(|| PluginError::Permanent(format!("document {id} has no valid day")))?,
                };
                let event = EventRecord::new(collection.kind, id, occurred_at);
                let event = match document["score"].as_f64() {
                    Some(score) => event.value(score, "points"),
                    None => event,
                };
                records.events.push(event.data(document)?);
            }
        }
    }
    Ok(records)
}

/// The time series a sleep period carries, each kept as a block.
const SERIES: [&str; 2] = ["heart_rate", "hrv"];

/// The blocks of a sleep period that is gone.
pub fn series_tombstones(id: &str) -> impl Iterator<Item = Tombstone> + '_ {
    SERIES.into_iter().map(move |series| Tombstone {
        class: RecordClass::Block,
        kind: series.into(),
        external_id: format!("{id}.{series}"),
    })
}

/// A night or a nap: an event from bedtime, its length the total sleep, its
/// heart-rate and HRV series in blocks. Oura marks a period the user deleted
/// with the type `deleted`.
fn sleep_period(id: String, document: &Value, records: &mut Records) -> Result<(), PluginError> {
    if document["type"] == "deleted" {
        records.deleted.push(Tombstone::event("sleep", id.clone()));
        records.deleted.extend(series_tombstones(&id));
        return Ok(());
    }
    let mut data = document.clone();
    for series in SERIES {
        let samples = data.as_object_mut().and_then(|fields| fields.remove(series)).unwrap_or(Value::Null);
        if samples.is_object() {
            records.blocks.push(BlockRecord::new(series, format!("{id}.{series}"), id.clone()).data(&samples)?);
        }
    }
    let event = EventRecord::new("sleep", id, time_of(document, "bedtime_start")?);
    let event = match document["total_sleep_duration"].as_f64() {
        Some(seconds) => event.value(seconds, "s"),
        None => event,
    };
    records.events.push(event.data(&data)?);
    Ok(())
}
