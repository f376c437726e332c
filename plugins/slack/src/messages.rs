//! Messages as records, the same whether Slack pushed them (the Events API,
//! `messages`) or the plugin read them (`conversations.history`, `history`):
//! one event of kind `message` per message, keyed `<channel>:<ts>` (a `ts` is
//! unique within its channel, and an edit keeps it), so the two sources of
//! one message agree on its id and its data.

use crate::string;
use inlet_plugin_sdk::prelude::*;
use serde_json::{Map, Value, json};

/// The batch kind of one pushed event.
pub const EVENT_BATCH: &str = "event";
pub const KIND: &str = "message";

/// The fields of a message worth keeping, in both sources. Those only one
/// source has (`event_ts` and `channel_type` in events, `reactions` in the
/// history) are left out, so a message read both ways has one shape.
const KEPT_FIELDS: [&str; 12] = [
    "ts",
    "user",
    "bot_id",
    "username",
    "text",
    "subtype",
    "thread_ts",
    "parent_user_id",
    "edited",
    "files",
    "attachments",
    "blocks",
];

/// What one pushed `message` event does to the stored messages.
enum Change<'a> {
    /// A message was posted (or is shown again, edited): store it.
    Posted { channel: &'a str, message: &'a Value },
    /// `message_deleted`: the message `<channel>:<ts>` is gone.
    Deleted { channel: &'a str, ts: &'a str },
    /// Another hidden subtype (`message_replied`...): nothing to store.
    Ignored,
}

/// Read a `message` event (<https://docs.slack.dev/reference/events/message>).
/// An edit (`message_changed`) carries the edited message whole in `message`.
fn change(event: &Value) -> Result<Change<'_>, PluginError> {
    let channel = string(event, "channel")?;
    Ok(match event["subtype"].as_str() {
        Some("message_changed") => Change::Posted { channel, message: &event["message"] },
        Some("message_deleted") => Change::Deleted { channel, ts: string(event, "deleted_ts")? },
        _ if event["hidden"] == Value::Bool(true) => Change::Ignored,
        _ => Change::Posted { channel, message: event },
    })
}

/// The records of one pushed event.
pub fn process_event(event: &Value) -> Result<Records, PluginError> {
    let mut records = Records::default();
    match change(event)? {
        Change::Posted { channel, message } => records.events.push(record(channel, message)?),
        Change::Deleted { channel, ts } => records.deleted.push(Tombstone::event(KIND, external_id(channel, ts))),
        Change::Ignored => {}
    }
    Ok(records)
}

/// The records of a page of `conversations.history`: `{"channel", "messages"}`.
pub fn process_history(page: &Value) -> Result<Records, PluginError> {
    let channel = string(page, "channel")?;
    let mut records = Records::default();
    for message in page["messages"].as_array().into_iter().flatten() {
        records.events.push(record(channel, message)?);
    }
    Ok(records)
}

/// One message as an event: at its `ts`, by its author (a user's id, or a
/// bot's for a bot message), in its channel (the id `channels` objects are
/// keyed by).
fn record(channel: &str, message: &Value) -> Result<EventRecord, PluginError> {
    let ts = string(message, "ts")?;
    let mut data: Map<String, Value> =
        KEPT_FIELDS.iter().filter_map(|field| Some((field.to_string(), message.get(*field)?.clone()))).collect();
    data.insert("channel".into(), json!(channel));
    let mut event = EventRecord::new(KIND, external_id(channel, ts), ts_millis(ts)?).target(channel).data(&data)?;
    event.actor = message["user"].as_str().or_else(|| message["bot_id"].as_str()).map(str::to_string);
    Ok(event)
}

fn external_id(channel: &str, ts: &str) -> String {
    format!("{channel}:{ts}")
}

/// A Slack `ts` ("1712345678.000200": seconds, then a six-digit sequence
/// that keeps messages of one second apart) in milliseconds.
pub fn ts_millis(ts: &str) -> Result<i64, PluginError> {
    ts_micros(ts).map(|micros| micros / 1000).ok_or_else(|| PluginError::Permanent(format!("bad Slack ts {ts:?}")))
}

/// A `ts` in microseconds, to compare two (`None` when it is not one).
pub fn ts_micros(ts: &str) -> Option<i64> {
    let (seconds, fraction) = ts.split_once('.').unwrap_or((ts, ""));
    let valid = |digits: &str, most: usize| digits.len() <= most && digits.bytes().all(|b| b.is_ascii_digit());
    if seconds.is_empty() || !valid(seconds, 12) || !valid(fraction, 6) {
        return None;
    }
    let fraction: i64 = format!("{fraction:0<6}").parse().ok()?;
    Some(seconds.parse::<i64>().ok()? * 1_000_000 + fraction)
}

/// Milliseconds as a `ts` for `oldest` (`1712345678.123000`).
pub fn ts_of_millis(millis: i64) -> String {
    format!("{}.{:06}", millis.div_euclid(1000), millis.rem_euclid(1000) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted() -> Value {
        json!({
            "type": "message", "channel": "C0GENERAL1", "user": "U0ALICE001", "text": "Morning!",
            "ts": "1712345678.000200", "event_ts": "1712345678.000200", "channel_type": "channel",
        })
    }

    #[test]
    fn a_message_is_keyed_by_channel_and_ts_whichever_way_it_came() {
        let pushed = process_event(&posted()).unwrap().events.remove(0);
        assert_eq!((pushed.kind.as_str(), pushed.external_id.as_str()), ("message", "C0GENERAL1:1712345678.000200"));
        assert_eq!((pushed.actor.as_deref(), pushed.target.as_deref()), (Some("U0ALICE001"), Some("C0GENERAL1")));
        assert_eq!(pushed.occurred_at, 1_712_345_678_000);
        let read = json!({"channel": "C0GENERAL1", "messages": [
            {"type": "message", "user": "U0ALICE001", "text": "Morning!", "ts": "1712345678.000200"},
        ]});
        let read = process_history(&read).unwrap().events.remove(0);
        assert_eq!((read.external_id, read.data), (pushed.external_id, pushed.data), "the same record both ways");
    }

    #[test]
    fn an_edit_updates_the_message_and_a_deletion_tombstones_it() {
        let edit = json!({
            "type": "message", "subtype": "message_changed", "hidden": true, "channel": "C0GENERAL1",
            "ts": "1712345700.000100",
            "message": {"type": "message", "user": "U0ALICE001", "text": "Good morning!", "ts": "1712345678.000200",
                        "edited": {"user": "U0ALICE001", "ts": "1712345700.000000"}},
        });
        let edited = process_event(&edit).unwrap().events.remove(0);
        assert_eq!(edited.external_id, "C0GENERAL1:1712345678.000200");
        assert!(edited.data.contains("Good morning!") && edited.data.contains("edited"), "{}", edited.data);
        let delete = json!({
            "type": "message", "subtype": "message_deleted", "hidden": true, "channel": "C0GENERAL1",
            "ts": "1712345800.000100", "deleted_ts": "1712345678.000200",
        });
        let deleted = process_event(&delete).unwrap().deleted.remove(0);
        assert_eq!((deleted.kind.as_str(), deleted.external_id.as_str()), ("message", "C0GENERAL1:1712345678.000200"));
        let replied = json!({"type": "message", "subtype": "message_replied", "hidden": true, "channel": "C0GENERAL1"});
        assert!(matches!(change(&replied), Ok(Change::Ignored)));
    }

    #[test]
    fn ts_values_convert_both_ways() {
        assert_eq!(ts_micros("1712345678.000200"), Some(1_712_345_678_000_200));
        assert_eq!(ts_micros("1712345678"), Some(1_712_345_678_000_000));
        assert_eq!(ts_micros("1712345678.5"), Some(1_712_345_678_500_000));
        for bad in ["", ".5", "17x.000001", "1712345678.0000001", "-1.000000"] {
            assert_eq!(ts_micros(bad), None, "{bad:?}");
        }
        assert_eq!(ts_of_millis(1_712_345_678_123), "1712345678.123000");
        assert_eq!(ts_millis("1712345678.123999").unwrap(), 1_712_345_678_123);
    }
}
