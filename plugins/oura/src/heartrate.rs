//! Heart-rate samples (`GET /v2/usercollection/heartrate?start_datetime&
//! end_datetime&next_token` → `{data: [{bpm, source, timestamp}], next_token}`),
//! read a UTC day at a time; each sample becomes a `heartrate` event.

use crate::days;
use crate::{API, Ask, Config, array, pages, string, time_of};
use chrono::{DateTime, SecondsFormat, Utc};
use inlet_plugin_sdk::prelude::*;
use serde_json::{Value, json};

/// The batch kind of heart-rate pages.
pub const BATCH: &str = "heartrate";

/// Read up to here, in milliseconds.
fn cursor() -> state::Key<i64> {
    state::Key::new("heartrate.cursor")
}

/// Read from the backfill's day, or from `refresh_days` before the cursor's
/// day (samples arrive when the ring syncs, hours or days late), up to now,
/// one UTC day per window; the cursor moves as each window is read.
pub fn fetch(config: &Config, mode: &FetchMode) -> Result<FetchSummary, PluginError> {
    let now = time::now();
    let from = match mode {
        FetchMode::Backfill(from) => days::of(*from),
        FetchMode::Incremental => match cursor().get()? {
            Some(read) => days::add(days::of(read.min(now)), -config.refresh_days()),
            None => config.first_day(days::of(now))?,
        },
    };
    let ask = Ask { path: "heartrate", scope: "heartrate", since: config.since.as_deref() };
    let mut start = days::midnight(from);
    let windows = ((now - start).max(0) / time::DAY_MS + 1) as u64;
    let mut summary = FetchSummary::default();
    for done in 1.. {
        // The last window ends now. One that would start after it (a `since`
        // in the future) is still asked for: Oura says what is wrong.
        let end = (start + time::DAY_MS).min(now);
        let first = http::get(format!("{API}/heartrate"))
            .authenticated()
            .query("start_datetime", time::to_rfc3339(start))
            .query("end_datetime", time::to_rfc3339(end));
        pages(first, &ask, |data| {
            // Windows are half-open: a sample on a boundary belongs to the later one.
            let kept: Vec<Value> =
                data.into_iter().filter(|sample| sample_time(sample).is_ok_and(|at| start <= at && at < end)).collect();
            summary.items_seen += kept.len() as u64;
            if !kept.is_empty() {
                emit_json(BATCH, &json!({ "data": kept }))?;
            }
            checkpoint()
        })?;
        cursor().set(&end)?;
        checkpoint()?;
        log::progress(done, Some(windows.max(done)));
        if end >= now {
            break;
        }
        start = end;
    }
    log::info(format!("{} heart-rate samples since {from}", summary.items_seen));
    Ok(summary)
}

fn sample_time(sample: &Value) -> Result<i64, PluginError> {
    time_of(sample, "timestamp")
}

/// Each sample, keyed by its time (in one canonical form, whatever offset
/// Oura writes it with) and source: `2026-09-01T07:05:00Z.awake`.
pub fn process(payload: &Value) -> Result<Records, PluginError> {
    let mut records = Records::default();
    for sample in array(&payload["data"]) {
        let at = sample_time(sample)?;
        let canonical =
            DateTime::<Utc>::from_timestamp_millis(at).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true);
        let external_id = format!("{canonical}.{}", string(sample, "source")?);
        let event = EventRecord::new("heartrate", external_id, at);
        let event = match sample["bpm"].as_f64() {
            Some(bpm) => event.value(bpm, "bpm"),
            None => event,
        };
        records.events.push(event.data(sample)?);
    }
    Ok(records)
}
