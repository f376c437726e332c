//! Conversions between upstream RFC 3339 strings and the contract's
//! millisecond timestamps.

use crate::{PluginError, Timestamp};
use chrono::{DateTime, SecondsFormat, Utc};

pub fn parse_rfc3339(value: &str) -> Result<Timestamp, PluginError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|e| PluginError::Permanent(format!("bad timestamp {value:?}: {e}")))
}

pub fn to_rfc3339(timestamp: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp_millis(timestamp)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn now() -> Timestamp {
    Utc::now().timestamp_millis()
}

pub const DAY_MS: Timestamp = 24 * 60 * 60 * 1000;
