//! `recently-played`: one `play` event per play, from
//! `GET /v1/me/player/recently-played`. Spotify keeps only the last 50 plays
//! and serves them newest first; `after` (Unix ms, exclusive) asks for the
//! plays since the newest one already stored, kept in state.

use crate::{PAGE_SIZE, get, items, string, track_data, track_id};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::state::Key;
use serde_json::{Value, json};

pub const BATCH: &str = "plays";

/// `played_at` of the newest play stored, in Unix ms: the next `after`.
fn cursor() -> Key<i64> {
    Key::new("recently-played.after")
}

/// At most a few pages: the API holds 50 plays, one full page.
const MAX_PAGES: usize = 10;

pub fn fetch(mode: &FetchMode) -> Result<FetchSummary, PluginError> {
    let stored = cursor().get()?;
    // A backfill (and a first run) reads every play Spotify still has: no
    // more than 50, whatever the start asked for.
    let mut after = match mode {
        FetchMode::Backfill(_) => None,
        FetchMode::Incremental => stored,
    };
    let mut summary = FetchSummary::default();
    for page_number in 0..MAX_PAGES {
        let mut request = get("/me/player/recently-played").query("limit", PAGE_SIZE.to_string());
        if let Some(after) = after {
            request = request.query("after", after.to_string());
        }
        let page: Value = request.send_json()?;
        let played: Vec<i64> = items(&page).map(played_at).collect::<Result<_, _>>()?;
        let (Some(&newest), Some(&oldest)) = (played.iter().max(), played.iter().min()) else { break };
        summary.items_seen += played.len() as u64;
        // A full page since the cursor may mean plays fell out of the 50
        // Spotify keeps before this run could read them: say so.
        let incremental = matches!(mode, FetchMode::Incremental) && stored.is_some();
        if page_number == 0 && incremental && played.len() >= PAGE_SIZE {
            let note = format!(
                "{} plays since the last run, the most Spotify keeps: plays before {} may be lost; sync more often",
                played.len(),
                time::to_rfc3339(oldest)
            );
            log::warn(&note);
            summary.note = Some(note);
        }
        emit_json(BATCH, &page)?;
        // A backfill reads plays before the cursor: it never moves back.
        let kept = cursor().get()?.map_or(newest, |kept| kept.max(newest));
        cursor().set(&kept)?;
        checkpoint()?;
        // A short page is all there is after `after`; after a full one,
        // ask again from its newest play.
        if played.len() < PAGE_SIZE || after.is_some_and(|after| newest <= after) {
            break;
        }
        after = Some(newest);
    }
    log::info(format!("{} new plays", summary.items_seen));
    Ok(summary)
}

fn played_at(item: &Value) -> Result<i64, PluginError> {
    time::parse_rfc3339(&string(item, "played_at")?)
}

pub fn process(page: &Value) -> Result<Records, PluginError> {
    let mut records = Records::default();
    for item in items(page) {
        let track = &item["track"];
        let Some(id) = track_id(track) else { continue };
        let played_at = played_at(item)?;
        // A track is played many times: the play is the track at a time.
        let mut event = EventRecord::new("play", format!("{id}@{played_at}"), played_at).target(id).data(&json!({
            "played_at": item["played_at"],
            "context": item["context"],
            "track": track_data(track),
        }))?;
        if let Some(duration) = track["duration_ms"].as_f64() {
            event = event.value(duration, "ms");
        }
        records.events.push(event);
    }
    Ok(records)
}
