//! Calendar days (UTC) and the windows a run reads them in.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use inlet_plugin_sdk::Timestamp;

pub type Day = NaiveDate;

/// The UTC day of a time.
pub fn of(at: Timestamp) -> Day {
    DateTime::<Utc>::from_timestamp_millis(at).unwrap_or_default().date_naive()
}

/// Midnight UTC at the start of `day`.
pub fn midnight(day: Day) -> Timestamp {
    day.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

pub fn add(day: Day, days: i64) -> Day {
    day.checked_add_signed(TimeDelta::days(days)).unwrap_or(day)
}

/// `YYYY-MM-DD`, as Oura writes a document's `day`.
pub fn parse(text: &str) -> Option<Day> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// `from` to `to` (both included) in windows of at most `size` days. There
/// is always one window, even when `from` is after `to`: the upstream then
/// says what is wrong with the dates.
pub fn windows(from: Day, to: Day, size: i64) -> Vec<(Day, Day)> {
    let mut windows = Vec::new();
    let mut start = from;
    loop {
        let end = add(start, size - 1).min(to);
        windows.push((start, end));
        if end >= to {
            return windows;
        }
        start = add(end, 1);
    }
}

/// Every day from `from` to `to`, both included.
pub fn range(from: Day, to: Day) -> impl Iterator<Item = Day> {
    from.iter_days().take_while(move |day| *day <= to)
}
