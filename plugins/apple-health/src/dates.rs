//! Health Auto Export writes dates as `yyyy-MM-dd HH:mm:ss Z`
//! ("2024-02-05 07:30:00 +0000"), and aggregated sleep as a bare `yyyy-MM-dd`.
//! RFC 3339 is accepted too, for senders that reshape the export.

use chrono::{DateTime, NaiveDate, NaiveTime};
use inlet_plugin_sdk::Timestamp;

/// Milliseconds since the epoch. A bare date counts as that day's midnight
/// UTC: the app gives no offset for it, and a fixed rule keeps dedupe keys stable.
/// The error names `field` and the value.
pub fn parse(field: &str, value: &str) -> Result<Timestamp, String> {
    DateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S %z")
        .or_else(|_| DateTime::parse_from_rfc3339(value))
        .map(|time| time.timestamp_millis())
        .or_else(|_| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map(|day| day.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
        })
        .map_err(|_| format!("{field} {value:?} is not a date (expected yyyy-MM-dd HH:mm:ss Z or RFC 3339)"))
}
