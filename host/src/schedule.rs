//! When an integration runs: every N seconds, at cron times in a time zone, or
//! only when asked.
//!
//! Cron expressions are parsed and matched by croner (4.0.3+). The rules for
//! daylight-saving changes are Vixie cron's: an entry at fixed times
//! (neither its minute nor its hour field a wildcard, so `30 2 * * *`, `0
//! 6,18 * * *` or `0 9-17 * * *`) runs at the first valid instant after a gap
//! that skips its wall time, and once at a wall time that happens twice;
//! wildcard entries (`*/15 * * * *`, `0 */2 * * *`) keep their real-time
//! cadence (no runs in the missing hour, both passes of the repeated hour).
//! croner applies the fixed-time rules only to a single minute and hour, so
//! fixed entries are walked here in wall-clock time. The tests below pin that
//! behaviour for America/New_York, Europe/London and Australia/Lord_Howe.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An integration's schedule, stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    Interval { seconds: u32 },
    Cron { expressions: Vec<String>, timezone: String },
    Manual,
}

/// A schedule that was refused, naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScheduleError {
    pub field: String,
    pub message: String,
}

fn error(field: impl Into<String>, message: impl Into<String>) -> ScheduleError {
    ScheduleError { field: field.into(), message: message.into() }
}

pub const MIN_INTERVAL_SECONDS: u32 = 60;
pub const MAX_INTERVAL_SECONDS: u32 = 366 * 24 * 3600;

/// The interval presets offered to operators.
pub const INTERVAL_PRESETS: [(&str, u32); 7] =
    [("5m", 300), ("15m", 900), ("30m", 1800), ("1h", 3600), ("6h", 21_600), ("daily", 86_400), ("weekly", 604_800)];

pub const DEFAULT_INTERVAL_SECONDS: u32 = 3600;

const CRON_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

impl Schedule {
    pub fn interval(seconds: u32) -> Result<Schedule, ScheduleError> {
        if !(MIN_INTERVAL_SECONDS..=MAX_INTERVAL_SECONDS).contains(&seconds) {
            return Err(error(
                "interval",
                format!("{seconds} seconds is outside {MIN_INTERVAL_SECONDS}..={MAX_INTERVAL_SECONDS}"),
            ));
        }
        Ok(Schedule::Interval { seconds })
    }

    /// Parse `15m`, `1h`, `90s`, `2d`, `daily`, `weekly` or a number of seconds.
    pub fn parse_interval(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim().to_ascii_lowercase();
        if let Some((_, seconds)) = INTERVAL_PRESETS.iter().find(|(name, _)| *name == text) {
            return Schedule::interval(*seconds);
        }
        let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
        let multiplier = match unit {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => {
                return Err(error(
                    "interval",
                    format!("{text:?} is not a duration; use e.g. 15m, 1h, 6h, daily, weekly"),
                ));
            }
        };
        let seconds = number.parse::<u32>().ok().and_then(|n| n.checked_mul(multiplier)).ok_or_else(|| {
            error("interval", format!("{text:?} is not a duration; use e.g. 15m, 1h, 6h, daily, weekly"))
        })?;
        Schedule::interval(seconds)
    }

    pub fn cron(expressions: Vec<String>, timezone: &str) -> Result<Schedule, ScheduleError> {
        let schedule = Schedule::Cron { expressions, timezone: timezone.to_string() };
        schedule.compile()?;
        Ok(schedule)
    }

    /// Check the schedule and prepare it for computing run times.
    pub fn compile(&self) -> Result<CompiledSchedule, ScheduleError> {
        Ok(match self {
            Schedule::Interval { seconds } => {
                Schedule::interval(*seconds)?;
                CompiledSchedule::Interval(chrono::Duration::seconds((*seconds).into()))
            }
            Schedule::Manual => CompiledSchedule::Manual,
            Schedule::Cron { expressions, timezone } => {
                let tz: Tz = timezone.parse().map_err(|_| {
                    error("timezone", format!("{timezone:?} is not an IANA time zone name (e.g. Europe/London)"))
                })?;
                if expressions.is_empty() {
                    return Err(error("cron", "at least one expression is needed"));
                }
                let crons = expressions
                    .iter()
                    .enumerate()
                    .map(|(i, e)| parse_cron(e).map_err(|m| error(format!("cron[{i}] {e:?}"), m)))
                    .collect::<Result<_, _>>()?;
                CompiledSchedule::Cron(crons, tz)
            }
        })
    }

    /// "every 15 minutes", "06:00 and 18:00 Europe/London", "manual only".
    pub fn summary(&self) -> String {
        match self {
            Schedule::Manual => "manual only".into(),
            Schedule::Interval { seconds } => interval_summary(*seconds),
            Schedule::Cron { expressions, timezone } => {
                let daily_times: Option<Vec<Vec<String>>> = expressions.iter().map(|e| daily_times(e)).collect();
                match daily_times {
                    Some(times) => {
                        let mut times: Vec<String> = times.into_iter().flatten().collect();
                        times.sort();
                        format!("{} {timezone}", join_and(&times))
                    }
                    None => format!("cron {} {timezone}", expressions.join("; ")),
                }
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Strict 5-field crontab (plus `@daily`-style macros), naming the bad field.
fn parse_cron(expression: &str) -> Result<Cron, String> {
    let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if !expression.trim_start().starts_with('@') && fields.len() != 5 {
        return Err(format!("expected 5 fields (minute hour day-of-month month day-of-week), found {}", fields.len()));
    }
    parser.parse(expression).map_err(|e| {
        // Find the field at fault by parsing it alone among wildcards.
        let culprit = (0..fields.len().min(5)).find(|&i| {
            let mut probe = ["*"; 5];
            probe[i] = fields[i];
            parser.parse(&probe.join(" ")).is_err()
        });
        match culprit {
            Some(i) => format!("{} field {:?} is invalid ({e})", CRON_FIELDS[i], fields[i]),
            None => e.to_string(),
        }
    })
}

/// Ready-to-evaluate form of a [`Schedule`].
#[derive(Debug, Clone)]
pub enum CompiledSchedule {
    Interval(chrono::Duration),
    Cron(Vec<Cron>, Tz),
    Manual,
}

impl CompiledSchedule {
    /// When the next run is due. `last_start` is when the previous run started
    /// (interval schedules count from it); `now` is the current time. Missed
    /// runs coalesce: the answer is never more than one run in the past.
    pub fn next_due(&self, last_start: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            CompiledSchedule::Manual => None,
            CompiledSchedule::Interval(every) => Some(last_start.map_or(now, |start| start + *every)),
            CompiledSchedule::Cron(..) => self.next_after(last_start.unwrap_or(now)),
        }
    }

    /// The first run instant strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            CompiledSchedule::Manual => None,
            CompiledSchedule::Interval(every) => Some(after + *every),
            CompiledSchedule::Cron(crons, tz) => crons.iter().filter_map(|cron| next_run(cron, *tz, after)).min(),
        }
    }

    /// The next `count` run instants after `after`, for previews.
    pub fn preview(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        std::iter::successors(self.next_after(after), |t| self.next_after(*t)).take(count).collect()
    }

    pub fn timezone(&self) -> Option<Tz> {
        match self {
            CompiledSchedule::Cron(_, tz) => Some(*tz),
            _ => None,
        }
    }
}

/// The first run of `cron` in `tz` strictly after `after`.
fn next_run(cron: &Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if cron.pattern.minutes.from_wildcard || cron.pattern.hours.from_wildcard {
        // Real-time cadence: croner's own rules.
        let next = cron.find_next_occurrence(&after.with_timezone(&tz), false).ok()?;
        return Some(next.with_timezone(&Utc));
    }
    // Fixed times: walk the wall clock (croner in UTC, which never changes
    // its clocks), and place each wall time in the zone. A time the clocks
    // pass twice runs at its first pass; a time they skip, when they jump.
    let mut wall = after.with_timezone(&tz).naive_local().and_utc();
    // Only the wall times of a repeated or skipped hour can fall at or
    // before `after`: a few dozen at most.
    for _ in 0..10_000 {
        wall = cron.find_next_occurrence(&wall, false).ok()?;
        let at = match tz.from_local_datetime(&wall.naive_utc()) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at.with_timezone(&Utc),
            LocalResult::None => end_of_gap(tz, wall.naive_utc())?,
        };
        if at > after {
            return Some(at);
        }
    }
    None
}

/// The instant the clocks jump over `wall`, a wall time that does not exist
/// in `tz`: one minute after the last wall minute before the gap (the zone
/// database's changes fall on whole minutes, as cron's times do).
fn end_of_gap(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    (1..=24 * 60).find_map(|back| {
        let before = tz.from_local_datetime(&(wall - TimeDelta::minutes(back))).latest()?;
        Some(before.with_timezone(&Utc) + TimeDelta::minutes(1))
    })
}

fn interval_summary(seconds: u32) -> String {
    match seconds {
        86_400 => "daily".into(),
        604_800 => "weekly".into(),
        3600 => "every hour".into(),
        s if s % 86_400 == 0 => format!("every {} days", s / 86_400),
        s if s % 3600 == 0 => format!("every {} hours", s / 3600),
        60 => "every minute".into(),
        s if s % 60 == 0 => format!("every {} minutes", s / 60),
        s => format!("every {s} seconds"),
    }
}

/// For an expression that fires at fixed times every day (`0 6,18 * * *`),
/// those times as "HH:MM".
fn daily_times(expression: &str) -> Option<Vec<String>> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let [minute, hour, "*", "*", "*"] = fields.as_slice() else {
        return match expression.trim() {
            "@daily" | "@midnight" => Some(vec!["00:00".into()]),
            _ => None,
        };
    };
    let numbers = |field: &str| -> Option<Vec<u32>> { field.split(',').map(|n| n.parse().ok()).collect() };
    let (minutes, hours) = (numbers(minute)?, numbers(hour)?);
    Some(hours.iter().flat_map(|h| minutes.iter().map(move |m| format!("{h:02}:{m:02}"))).collect())
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn runs(expression: &str, tz: &str, from: &str, count: usize) -> Vec<String> {
        let schedule = Schedule::cron(vec![expression.into()], tz).unwrap().compile().unwrap();
        let tz: Tz = tz.parse().unwrap();
        schedule
            .preview(utc(from), count)
            .into_iter()
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
            .collect()
    }

    #[test]
    fn fixed_time_in_the_spring_gap_runs_right_after_it_the_same_day() {
        // 2026-03-08: New York clocks go 02:00 EST -> 03:00 EDT.
        assert_eq!(
            runs("30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", 3),
            ["2026-03-07 02:30 EST", "2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT"]
        );
        // 2026-03-29: London goes 01:00 GMT -> 02:00 BST.
        assert_eq!(
            runs("15 1 * * *", "Europe/London", "2026-03-28T00:00:00Z", 3),
            ["2026-03-28 01:15 GMT", "2026-03-29 02:00 BST", "2026-03-30 01:15 BST"]
        );
        // 2026-10-04: Lord Howe goes 02:00 -> 02:30 (a 30-minute shift).
        assert_eq!(
            runs("10 2 * * *", "Australia/Lord_Howe", "2026-10-02T12:00:00Z", 3),
            ["2026-10-03 02:10 +1030", "2026-10-04 02:30 +11", "2026-10-05 02:10 +11"]
        );
    }

    #[test]
    fn listed_and_ranged_fixed_times_follow_the_same_rules() {
        // Spring forward (New York, 2026-03-08): the 02:30 of a list runs when
        // the clocks jump; the list's other time is untouched.
        assert_eq!(
            runs("30 2,14 * * *", "America/New_York", "2026-03-07T12:00:00Z", 4),
            ["2026-03-07 14:30 EST", "2026-03-08 03:00 EDT", "2026-03-08 14:30 EDT", "2026-03-09 02:30 EDT"]
        );
        // Fall back (2026-11-01): 01:30 happens twice and runs once.
        assert_eq!(
            runs("30 1,13 * * *", "America/New_York", "2026-10-31T12:00:00Z", 4),
            ["2026-10-31 13:30 EDT", "2026-11-01 01:30 EDT", "2026-11-01 13:30 EST", "2026-11-02 01:30 EST"]
        );
        // Two skipped times run once, at the jump; a range runs once an hour
        // through the repeated hour (London: 2026-03-29 and 2026-10-25).
        assert_eq!(
            runs("0,30 1 * * *", "Europe/London", "2026-03-28T12:00:00Z", 3),
            ["2026-03-29 02:00 BST", "2026-03-30 01:00 BST", "2026-03-30 01:30 BST"]
        );
        assert_eq!(
            runs("0 0-3 * * *", "Europe/London", "2026-10-24T22:30:00Z", 5),
            [
                "2026-10-25 00:00 BST",
                "2026-10-25 01:00 BST",
                "2026-10-25 02:00 GMT",
                "2026-10-25 03:00 GMT",
                "2026-10-26 00:00 GMT"
            ]
        );
        // A stepped range is fixed in Vixie cron too (it has no wildcard).
        assert_eq!(
            runs("0-59/20 2 * * *", "America/New_York", "2026-03-08T06:00:00Z", 2),
            ["2026-03-08 03:00 EDT", "2026-03-09 02:00 EDT"]
        );
    }

    #[test]
    fn fixed_time_in_the_autumn_overlap_runs_once() {
        // 2026-11-01: New York repeats 01:00-02:00.
        assert_eq!(
            runs("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 3),
            ["2026-11-01 01:30 EDT", "2026-11-02 01:30 EST", "2026-11-03 01:30 EST"]
        );
        // 2026-10-25: London repeats 01:00-02:00.
        assert_eq!(
            runs("30 1 * * *", "Europe/London", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25 01:30 BST", "2026-10-26 01:30 GMT"]
        );
        // 2026-04-05: Lord Howe repeats 01:30-02:00.
        assert_eq!(
            runs("45 1 * * *", "Australia/Lord_Howe", "2026-04-03T12:00:00Z", 3),
            ["2026-04-04 01:45 +11", "2026-04-05 01:45 +11", "2026-04-06 01:45 +1030"]
        );
    }

    /// Real minutes between consecutive runs.
    fn gaps(expression: &str, tz: &str, from: &str, count: usize) -> Vec<i64> {
        let schedule = Schedule::cron(vec![expression.into()], tz).unwrap().compile().unwrap();
        let times = schedule.preview(utc(from), count);
        times.windows(2).map(|w| (w[1] - w[0]).num_minutes()).collect()
    }

    #[test]
    fn stepped_entries_keep_real_time_cadence_through_both_transitions() {
        for (tz, spring, autumn) in [
            ("America/New_York", "2026-03-08T06:00:00Z", "2026-11-01T04:30:00Z"),
            ("Europe/London", "2026-03-29T00:00:00Z", "2026-10-24T23:30:00Z"),
            ("Australia/Lord_Howe", "2026-10-03T14:30:00Z", "2026-04-04T14:00:00Z"),
        ] {
            // Through the repeated hour: every 15 real minutes, no pause, no burst.
            let autumn_gaps = gaps("*/15 * * * *", tz, autumn, 12);
            assert!(autumn_gaps.iter().all(|g| *g == 15), "{tz} autumn: {autumn_gaps:?}");
            // Through the missing hour: still every 15 real minutes (wall clock jumps).
            let spring_gaps = gaps("*/15 * * * *", tz, spring, 12);
            assert!(spring_gaps.iter().all(|g| *g == 15), "{tz} spring: {spring_gaps:?}");
        }
        // A stepped hour field has no runs in the missing hour: 00:00, 02:00 are
        // wall times; 02:00 does not exist in New York on 2026-03-08.
        assert_eq!(
            runs("0 */2 * * *", "America/New_York", "2026-03-08T04:00:00Z", 3),
            ["2026-03-08 00:00 EST", "2026-03-08 04:00 EDT", "2026-03-08 06:00 EDT"]
        );
    }

    #[test]
    fn several_expressions_merge_in_time_order() {
        let schedule = Schedule::cron(vec!["0 18 * * *".into(), "0 6 * * *".into()], "Europe/London").unwrap();
        assert_eq!(schedule.summary(), "06:00 and 18:00 Europe/London");
        let next = schedule.compile().unwrap().preview(utc("2026-07-01T00:00:00Z"), 3);
        let shown: Vec<String> = next.iter().map(|t| t.to_rfc3339()).collect();
        assert_eq!(shown, ["2026-07-01T05:00:00+00:00", "2026-07-01T17:00:00+00:00", "2026-07-02T05:00:00+00:00"]);
    }

    #[test]
    fn bad_input_names_the_field_and_value() {
        let err = Schedule::cron(vec!["0 25 * * *".into()], "Europe/London").unwrap_err();
        assert_eq!(err.field, "cron[0] \"0 25 * * *\"");
        assert!(err.message.starts_with("hour field \"25\" is invalid"), "{err}");
        let err = Schedule::cron(vec!["0 6 * *".into()], "Europe/London").unwrap_err();
        assert!(err.message.contains("expected 5 fields"), "{err}");
        let err = Schedule::cron(vec!["0 6 * * MON-FRX".into()], "UTC").unwrap_err();
        assert!(err.message.starts_with("day-of-week field"), "{err}");
        let err = Schedule::cron(vec!["0 6 * * *".into()], "Europe/Londn").unwrap_err();
        assert_eq!(err.field, "timezone");
        assert!(err.message.contains("\"Europe/Londn\""));
        assert_eq!(Schedule::parse_interval("10s").unwrap_err().field, "interval");
        assert!(Schedule::parse_interval("fortnightly").is_err());
    }

    #[test]
    fn names_macros_and_presets_parse() {
        assert!(Schedule::cron(vec!["@daily".into()], "UTC").is_ok());
        assert!(Schedule::cron(vec!["0 9 * JAN-MAR MON-FRI".into()], "UTC").is_ok());
        assert!(Schedule::cron(vec!["*/10 8-18 1,15 * *".into()], "UTC").is_ok());
        assert_eq!(Schedule::parse_interval("15m").unwrap(), Schedule::Interval { seconds: 900 });
        assert_eq!(Schedule::parse_interval("daily").unwrap().summary(), "daily");
        assert_eq!(Schedule::parse_interval("6h").unwrap().summary(), "every 6 hours");
        assert_eq!(Schedule::parse_interval("90").unwrap().summary(), "every 90 seconds");
        assert_eq!(Schedule::Manual.summary(), "manual only");
    }

    #[test]
    fn missed_runs_coalesce_into_one() {
        let hourly = Schedule::Interval { seconds: 3600 }.compile().unwrap();
        let now = utc("2026-01-01T12:00:00Z");
        // Down for a day: the next run is the one missed run, not 24 of them.
        let due = hourly.next_due(Some(utc("2025-12-31T11:00:00Z")), now).unwrap();
        assert!(due <= now);
        assert_eq!(hourly.next_due(Some(now), now).unwrap(), utc("2026-01-01T13:00:00Z"));
        let cron = Schedule::cron(vec!["0 * * * *".into()], "UTC").unwrap().compile().unwrap();
        assert_eq!(cron.next_due(Some(utc("2025-12-31T11:00:00Z")), now).unwrap(), utc("2025-12-31T12:00:00Z"));
        assert_eq!(cron.next_due(Some(now), now).unwrap(), utc("2026-01-01T13:00:00Z"));
    }
}
