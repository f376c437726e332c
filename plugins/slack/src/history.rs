//! The `history` instance type: one channel's messages read from
//! `conversations.history`, for what the Events API never pushed (everything
//! before the app was installed, and whatever was posted while inlet could
//! not be reached). The records are those of `messages`, so the two agree.
//!
//! Slack pages a channel newest first, from now back to `oldest`. A read's
//! progress is kept in state after every page, so a run that stops midway
//! (Slack's rate limit, a deadline) is resumed by the next one where it
//! stopped; once a read reaches `oldest`, the newest message it saw is where
//! the next read stops.

use crate::api;
use crate::messages::{ts_micros, ts_of_millis};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::state::Key;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const BATCH: &str = "history";
/// Messages asked for per page: Slack's largest (it may send fewer).
const PAGE_SIZE: &str = "999";
/// How far back the first run reads: what a free workspace still shows.
pub const BACKFILL_DAYS: u32 = 90;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"channel": "C0123456789"}))]
pub struct Config {
    /// The channel's id: `C…` (`G…` for an old private channel, `D…` for a
    /// direct message). Slack shows it at the bottom of the channel's details.
    #[schemars(regex(pattern = r"^[CGD][A-Z0-9]{6,}$"))]
    channel: String,
}

/// A read of the channel from now back to `oldest`, as far as it got.
#[derive(Serialize, Deserialize)]
struct Read {
    /// Messages after this `ts` are read (Slack's `oldest`, which it excludes).
    oldest: String,
    /// Only messages before this one are left: the oldest read so far.
    latest: Option<String>,
    /// The newest message read: the next read stops there.
    newest: Option<String>,
}

pub fn fetch(config: &str, mode: &FetchMode) -> Result<FetchSummary, PluginError> {
    let channel = channel(config)?;
    let newest: Key<String> = Key::new(format!("history.{channel}.newest"));
    let unfinished: Key<Read> = Key::new(format!("history.{channel}.read"));
    let oldest = match mode {
        FetchMode::Backfill(from) => ts_of_millis(*from),
        FetchMode::Incremental => {
            newest.get()?.unwrap_or_else(|| ts_of_millis(time::now() - i64::from(BACKFILL_DAYS) * time::DAY_MS))
        }
    };
    // A read that stopped midway is resumed if it reaches back as far.
    let mut read = match unfinished.get()? {
        Some(read) if reaches(&read.oldest, &oldest) => read,
        _ => Read { oldest, latest: None, newest: None },
    };
    let mut first = api::method("conversations.history")
        .query("channel", &channel)
        .query("oldest", &read.oldest)
        .query("limit", PAGE_SIZE);
    if let Some(latest) = &read.latest {
        first = first.query("latest", latest);
    }

    let mut summary = FetchSummary::default();
    api::each_page(first, Some(&channel), |answer| {
        let messages = answer["messages"].as_array().cloned().unwrap_or_default();
        let mut stamps: Vec<&str> = messages.iter().filter_map(|m| m["ts"].as_str()).collect();
        stamps.sort_by_key(|ts| ts_micros(ts));
        if let (Some(oldest), Some(newest)) = (stamps.first(), stamps.last()) {
            read.latest = Some(oldest.to_string());
            if read.newest.as_deref().is_none_or(|kept| ts_micros(kept) < ts_micros(newest)) {
                read.newest = Some(newest.to_string());
            }
        }
        if !messages.is_empty() {
            summary.items_seen += messages.len() as u64;
            emit_json(BATCH, &json!({ "channel": channel, "messages": messages }))?;
        }
        unfinished.set(&read)?;
        checkpoint()?;
        log::progress(summary.items_seen, None);
        Ok(())
    })?;

    // The read reached `oldest`: the next one stops at its newest message. A
    // backfill reads older messages, and never moves the cursor back.
    if let Some(read_newest) = read.newest {
        let kept = newest.get()?.filter(|kept| ts_micros(kept) > ts_micros(&read_newest));
        newest.set(&kept.unwrap_or(read_newest))?;
    }
    unfinished.delete();
    checkpoint()?;
    log::info(format!("{} messages of {channel} read", summary.items_seen));
    Ok(summary)
}

/// Whether a read down to `read_oldest` covers one down to `oldest`.
fn reaches(read_oldest: &str, oldest: &str) -> bool {
    matches!((ts_micros(read_oldest), ts_micros(oldest)), (Some(read), Some(asked)) if read <= asked)
}

/// The configured channel, checked before it reaches a URL.
fn channel(config: &str) -> Result<String, PluginError> {
    let config: Config = parse_config(config).map_err(|error| match error {
        PluginError::InvalidConfig(message) => PluginError::InvalidConfig(format!("config.channel: {message}")),
        other => other,
    })?;
    let channel = config.channel;
    let valid = channel.len() >= 7
        && channel.starts_with(['C', 'G', 'D'])
        && channel.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    match valid {
        true => Ok(channel),
        false => Err(PluginError::InvalidConfig(format!(
            "config.channel: {channel:?} is not a Slack channel id (C…, G… or D…, as the channel's details show it)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_is_required_and_checked() {
        assert_eq!(channel(r#"{"channel": "C0123456789"}"#).unwrap(), "C0123456789");
        for bad in ["{}", r#"{"channel": "general"}"#, r#"{"channel": "C01/../x"}"#, r#"{"channel": 7}"#] {
            let Err(PluginError::InvalidConfig(message)) = channel(bad) else { panic!("{bad} passed") };
            assert!(message.starts_with("config.channel: "), "{message}");
        }
    }
}
