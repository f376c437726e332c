//! Calendar days in the digest's time zone: which instants a day spans, and
//! which days a run digests.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Offset, SecondsFormat, TimeDelta, TimeZone};
use chrono_tz::Tz;
use inlet_plugin_sdk::Timestamp;

/// The day `at` falls on in `zone`.
pub fn of(at: Timestamp, zone: Tz) -> NaiveDate {
    DateTime::from_timestamp_millis(at).unwrap_or_default().with_timezone(&zone).date_naive()
}

/// `YYYY-MM-DD`, as the digests' external ids and the cursor write a day.
pub fn parse(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// The instant `day` begins in `zone`: its local midnight, or, where the
/// clocks jump forward at midnight, the instant of the jump (midnight at the
/// offset in force the day before).
fn start(day: NaiveDate, zone: Tz) -> Timestamp {
    let midnight = day.and_time(NaiveTime::MIN);
    if let Some(start) = zone.from_local_datetime(&midnight).earliest() {
        return start.timestamp_millis();
    }
    let offset_before = zone.offset_from_utc_datetime(&(midnight - TimeDelta::days(1))).fix();
    (midnight.and_utc() - TimeDelta::seconds(offset_before.local_minus_utc().into())).timestamp_millis()
}

/// One day in a time zone, and the instants it spans: 23 or 25 hours on the
/// days the clocks change.
pub struct Window {
    pub day: NaiveDate,
    pub zone: Tz,
    /// Its first instant.
    pub from: Timestamp,
    /// The next day's first instant.
    pub until: Timestamp,
}

impl Window {
    pub fn of(day: NaiveDate, zone: Tz) -> Window {
        let next = day.succ_opt().unwrap_or(day);
        Window { day, zone, from: start(day, zone), until: start(next, zone) }
    }

    /// `at` in RFC 3339 with the zone's offset then, e.g. `2026-09-01T00:00:00+01:00`.
    pub fn local_time(&self, at: Timestamp) -> String {
        let at = DateTime::from_timestamp_millis(at).unwrap_or_default().with_timezone(&self.zone);
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// The days one run digests, oldest first, and the first day it leaves for later.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub days: Vec<NaiveDate>,
    pub rest: Option<NaiveDate>,
}

/// The first day an incremental run digests: the day after the last one
/// digested, or, when that is later, the first of the `refresh` days before
/// yesterday, which are digested again for records that reached inlet late.
pub fn incremental_start(digested_through: Option<NaiveDate>, today: NaiveDate, refresh: u32) -> NaiveDate {
    let refreshed_from = today - Days::new(1 + u64::from(refresh));
    match digested_through.and_then(|last| last.succ_opt()) {
        Some(next) => next.min(refreshed_from),
        None => refreshed_from,
    }
}

/// From `first` through the day before `today`, at most `max` days. A day
/// is digested only once it is over, and every run digests at least
/// yesterday: a `first` after it means yesterday alone.
pub fn plan(first: NaiveDate, today: NaiveDate, max: usize) -> Plan {
    let yesterday = today - Days::new(1);
    let days: Vec<NaiveDate> = first.min(yesterday).iter_days().take_while(|day| *day <= yesterday).take(max).collect();
    let rest = days.last().and_then(|last| last.succ_opt()).filter(|next| *next <= yesterday);
    Plan { days, rest }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        parse(text).unwrap()
    }

    fn ms(rfc3339: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
    }

    #[test]
    fn a_day_spans_local_midnight_to_midnight_and_23_or_25_hours_when_the_clocks_change() {
        let london: Tz = "Europe/London".parse().unwrap();
        let summer = Window::of(day("2026-07-01"), london);
        assert_eq!((summer.from, summer.until), (ms("2026-06-30T23:00:00Z"), ms("2026-07-01T23:00:00Z")));
        assert_eq!(summer.local_time(summer.from), "2026-07-01T00:00:00+01:00");
        let spring_forward = Window::of(day("2026-03-29"), london);
        assert_eq!(spring_forward.until - spring_forward.from, 23 * 3_600_000);
        let fall_back = Window::of(day("2026-10-25"), london);
        assert_eq!(fall_back.until - fall_back.from, 25 * 3_600_000);
        assert_eq!(
            Window::of(day("2026-07-01"), Tz::UTC).local_time(ms("2026-07-01T00:00:00Z")),
            "2026-07-01T00:00:00Z"
        );
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_begins_when_the_clocks_jump() {
        // Havana moves its clocks from 00:00 to 01:00 in March.
        let havana: Tz = "America/Havana".parse().unwrap();
        let window = Window::of(day("2026-03-08"), havana);
        assert_eq!(window.from, ms("2026-03-08T05:00:00Z"), "00:00 at -05:00, which is 01:00 at -04:00");
        assert_eq!(window.until - window.from, 23 * 3_600_000);
    }

    #[test]
    fn the_day_of_an_instant_depends_on_the_zone() {
        let at = ms("2026-07-01T23:30:00Z");
        assert_eq!(of(at, Tz::UTC), day("2026-07-01"));
        assert_eq!(of(at, "Europe/London".parse().unwrap()), day("2026-07-02"));
    }

    #[test]
    fn an_incremental_run_starts_after_the_last_day_digested_or_refreshes_the_days_before_yesterday() {
        let today = day("2026-09-10");
        assert_eq!(
            incremental_start(Some(day("2026-09-09")), today, 2),
            day("2026-09-07"),
            "digested through yesterday"
        );
        assert_eq!(incremental_start(Some(day("2026-09-08")), today, 0), day("2026-09-09"), "no refresh: yesterday");
        assert_eq!(incremental_start(Some(day("2026-08-01")), today, 2), day("2026-08-02"), "catching up");
        assert_eq!(incremental_start(None, today, 2), day("2026-09-07"), "never digested");
        assert_eq!(incremental_start(Some(day("2026-09-20")), today, 1), day("2026-09-08"), "a clock set back");
    }

    #[test]
    fn a_run_digests_from_its_first_day_through_yesterday_in_bounded_steps() {
        let today = day("2026-09-10");
        let yesterday = vec![day("2026-09-09")];
        assert_eq!(plan(day("2026-09-09"), today, 31), Plan { days: yesterday.clone(), rest: None });
        assert_eq!(
            plan(day("2026-09-10"), today, 31),
            Plan { days: yesterday.clone(), rest: None },
            "today is not over"
        );
        assert_eq!(plan(day("2026-10-01"), today, 31), Plan { days: yesterday, rest: None });
        let week = plan(day("2026-09-03"), today, 31);
        assert_eq!((week.days.len(), week.days[0], week.rest), (7, day("2026-09-03"), None));
        let long = plan(day("2026-01-01"), today, 31);
        assert_eq!((long.days.len(), long.days[30], long.rest), (31, day("2026-01-31"), Some(day("2026-02-01"))));
    }
}
