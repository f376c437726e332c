//! The `channels` instance type: the workspace's public channels and the
//! private ones the app was added to, from `conversations.list`, archived
//! ones included. Slack lists what exists and never says what was deleted,
//! so every run reads the whole list, and a channel the previous complete
//! read had and this one does not is tombstoned, only after the last page.

use crate::{api, string};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::snapshot::Snapshot;
use serde_json::Value;

pub const BATCH: &str = "channels";
const KIND: &str = "channel";
/// Channels asked for per page: Slack's largest ("under 1000"); it may send fewer.
const PAGE_SIZE: &str = "999";

pub fn fetch() -> Result<FetchSummary, PluginError> {
    let first = api::method("conversations.list")
        .query("types", "public_channel,private_channel")
        .query("exclude_archived", "false")
        .query("limit", PAGE_SIZE);
    let mut seen = Snapshot::objects("channels", KIND);
    let mut summary = FetchSummary::default();
    api::each_page(first, None, |answer| {
        let channels = answer["channels"].as_array().cloned().unwrap_or_default();
        for channel in &channels {
            seen.saw(string(channel, "id")?);
        }
        summary.items_seen += channels.len() as u64;
        if !channels.is_empty() {
            emit_json(BATCH, &channels)?;
            checkpoint()?;
        }
        log::progress(summary.items_seen, None);
        Ok(())
    })?;
    let removed = seen.complete()?;
    log::info(format!("{} channels listed, {removed} gone since the last complete read", summary.items_seen));
    Ok(summary)
}

/// Each channel as Slack lists it, named by its name; `is_archived` says
/// whether it was archived.
pub fn process(channels: &Value) -> Result<Records, PluginError> {
    let mut records = Records::default();
    for channel in channels.as_array().into_iter().flatten() {
        let object = ObjectRecord::new(KIND, string(channel, "id")?);
        let object = match channel["name"].as_str() {
            Some(name) => object.name(name),
            None => object,
        };
        records.objects.push(object.data(channel)?);
    }
    Ok(records)
}
