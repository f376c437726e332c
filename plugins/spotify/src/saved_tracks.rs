//! `saved-tracks`: one `saved-track` object per track in Your Library, from
//! `GET /v1/me/tracks` (newest saved first, `offset`/`limit` pages). Every
//! run reads the whole library; a track missing from two complete reads in
//! a row (one removed during a read shifts the pages after it) was removed
//! from it and is tombstoned.

use crate::{PAGE_SIZE, each_page, get, items, track_data, track_id};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::snapshot::Snapshot;
use serde::Deserialize;
use serde_json::{Value, json};

pub const BATCH: &str = "saved-tracks";

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({}), example = json!({"market": "GB"}))]
pub struct Config {
    /// An ISO 3166-1 alpha-2 country code (or `from_token`, the account's
    /// country): tracks are then relinked to the versions playable there,
    /// with `is_playable` instead of the list of markets.
    market: Option<String>,
}

pub fn fetch(config: &Config) -> Result<FetchSummary, PluginError> {
    let mut first = get("/me/tracks").query("offset", "0").query("limit", PAGE_SIZE.to_string());
    if let Some(market) = &config.market {
        first = first.query("market", market);
    }
    // Spotify answers 400 to a market it does not know.
    let refine = |response: &http::Response| {
        let market = config.market.as_ref().filter(|_| response.status == 400)?;
        let message = crate::error_message(response);
        Some(PluginError::InvalidConfig(format!("config.market: Spotify refused {market:?} ({message})")))
    };
    let mut seen = Snapshot::objects("saved-tracks", "saved-track").paged_by_position();
    let mut summary = FetchSummary::default();
    each_page(first, refine, |page| {
        seen.saw_all(items(page).filter_map(|item| track_id(&item["track"])));
        summary.items_seen += items(page).count() as u64;
        emit_json(BATCH, page)?;
        checkpoint()?;
        log::progress(summary.items_seen, page["total"].as_u64());
        Ok(())
    })?;
    let removed = seen.complete()?;
    log::info(format!("{} saved tracks, {removed} removed (missed by two complete reads)", summary.items_seen));
    Ok(summary)
}

pub fn process(page: &Value) -> Result<Records, PluginError> {
    let mut records = Records::default();
    for item in items(page) {
        let track = &item["track"];
        let Some(id) = track_id(track) else { continue };
        let mut object = ObjectRecord::new("saved-track", id);
        if let Some(name) = track["name"].as_str() {
            object = object.name(name);
        }
        records.objects.push(object.data(&json!({"added_at": item["added_at"], "track": track_data(track)}))?);
    }
    Ok(records)
}
