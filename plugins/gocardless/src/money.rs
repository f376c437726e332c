//! GoCardless's amounts (decimal strings) and dates (`YYYY-MM-DD`), as the
//! contract wants them: minor units of the currency, milliseconds.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use inlet_plugin_sdk::Timestamp;
use inlet_plugin_sdk::time;
use serde_json::Value;

/// ISO 4217 currencies without minor units, or with three digits of them;
/// every other has two.
const NO_MINOR_UNITS: [&str; 12] = ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "UGX", "VND", "XAF"];
const THREE_DIGIT_MINOR_UNITS: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// `{amount: "-12.50", currency: "EUR"}` as (-1250, "EUR"); `None` when the
/// amount is not a number.
pub fn minor_units(amount: &Value) -> Option<(f64, String)> {
    let currency = amount["currency"].as_str()?.to_ascii_uppercase();
    let decimal: f64 = amount["amount"].as_str()?.trim().parse().ok()?;
    let digits = match currency.as_str() {
        c if NO_MINOR_UNITS.contains(&c) => 0,
        c if THREE_DIGIT_MINOR_UNITS.contains(&c) => 3,
        _ => 2,
    };
    Some(((decimal * 10f64.powi(digits)).round(), currency))
}

/// Today in UTC.
pub fn today() -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(time::now()).unwrap_or_default().date_naive()
}

/// The UTC day of a time.
pub fn day_of(at: Timestamp) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(at).unwrap_or_default().date_naive()
}

pub fn add_days(day: NaiveDate, days: i64) -> NaiveDate {
    day.checked_add_signed(TimeDelta::days(days)).unwrap_or(day)
}

/// `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Midnight UTC at the start of `day`.
pub fn midnight(day: NaiveDate) -> Timestamp {
    day.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

/// The first of `fields` that holds a time: an RFC 3339 one (`...DateTime`)
/// as it is, a date (`...Date`) at midnight UTC.
pub fn first_time(item: &Value, fields: &[&str]) -> Option<Timestamp> {
    fields
        .iter()
        .filter_map(|field| item[*field].as_str())
        .find_map(|text| time::parse_rfc3339(text).ok().or_else(|| parse_day(text).map(midnight)))
}
