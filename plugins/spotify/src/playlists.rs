//! `playlists`: one `playlist` object per playlist the account owns or
//! follows, from `GET /v1/me/playlists` (`offset`/`limit` pages). Each keeps
//! its `snapshot_id`, the version of its contents: a playlist whose tracks
//! changed is an update. A playlist missing from two complete reads in a row
//! (one removed during a read shifts the pages after it) was deleted or
//! unfollowed and is tombstoned.

use crate::{PAGE_SIZE, each_page, get, items, string};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::snapshot::Snapshot;
use serde_json::Value;

pub const BATCH: &str = "playlists";

pub fn fetch() -> Result<FetchSummary, PluginError> {
    let first = get("/me/playlists").query("offset", "0").query("limit", PAGE_SIZE.to_string());
    let mut seen = Snapshot::objects("playlists", "playlist").paged_by_position();
    let mut summary = FetchSummary::default();
    each_page(
        first,
        |_| None,
        |page| {
            seen.saw_all(items(page).filter_map(|playlist| playlist["id"].as_str().map(str::to_string)));
            summary.items_seen += items(page).count() as u64;
            emit_json(BATCH, page)?;
            checkpoint()?;
            log::progress(summary.items_seen, page["total"].as_u64());
            Ok(())
        },
    )?;
    let removed = seen.complete()?;
    log::info(format!("{} playlists, {removed} gone (missed by two complete reads)", summary.items_seen));
    Ok(summary)
}

pub fn process(page: &Value) -> Result<Records, PluginError> {
    let mut records = Records::default();
    // Spotify lists a playlist it cannot serve any more as null.
    for playlist in items(page).filter(|p| p.is_object()) {
        let mut object = ObjectRecord::new("playlist", string(playlist, "id")?);
        if let Some(name) = playlist["name"].as_str() {
            object = object.name(name);
        }
        records.objects.push(object.data(playlist)?);
    }
    Ok(records)
}
