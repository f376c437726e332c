//! Daily digest: a task (no upstream) that reads the events of its own group
//! and of the groups the operator lets it read (`inlet groups add digest
//! --reads <group id>`), and records one `digest` event per calendar day:
//! counts and totals per kind, spending by category, workouts and their
//! length, plays and the top artists.
//!
//! `fetch` reads a day's events a page at a time into running totals
//! ([`digest::DayTotals`]) and emits the day's digest as a raw batch;
//! `process` turns it into the event `digest:<YYYY-MM-DD>`, so digesting a
//! day again updates its event (or leaves it unchanged), never duplicates it.

mod days;
mod digest;

use chrono::NaiveDate;
use chrono_tz::Tz;
use digest::DayTotals;
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::records;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeSet;

/// The largest page `records.query-events` serves.
const PAGE_SIZE: u32 = 500;
/// The most days one run digests, so a long backfill stays well inside the
/// fetch deadline; the rest waits for the next run.
const MAX_DAYS_PER_RUN: usize = 31;
/// How far back the first run reaches: a week of digests.
const FIRST_RUN_DAYS: u32 = 7;
/// How many days before yesterday a run digests again by default: records
/// reach inlet late (a card payment settles days after it is made, a phone
/// syncs its health data when it next has a connection).
const DEFAULT_REFRESH_DAYS: u32 = 2;
/// The most it may be: well under [`MAX_DAYS_PER_RUN`], so that a run
/// catching up on missed days still moves on.
const MAX_REFRESH_DAYS: u32 = 7;
/// The raw batches' kind, and the kind of event each becomes. Digests are
/// never digested: the group holds this task's own output, which would
/// otherwise count itself.
const DIGEST: &str = "digest";

struct DailyDigest;

/// The config of `daily`.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"timezone": "Europe/London", "kinds": ["transaction", "workout", "play"]}))]
struct Config {
    /// The IANA time zone whose calendar days are digested (default "UTC").
    timezone: Option<String>,
    /// Only events of these kinds, e.g. "transaction" (default: every kind).
    #[serde(default)]
    kinds: BTreeSet<String>,
    /// How many days before yesterday each run digests again, to count
    /// records that reach inlet late (default 2, at most 7; 0 digests each
    /// day once).
    #[schemars(range(max = 7))]
    refresh_days: Option<u32>,
}

impl Config {
    fn zone(&self) -> Result<Tz, PluginError> {
        let name = self.timezone.as_deref().unwrap_or("UTC");
        name.parse()
            .map_err(|_| PluginError::InvalidConfig(format!("config.timezone: {name:?} is not an IANA time zone")))
    }

    fn refresh_days(&self) -> Result<u32, PluginError> {
        match self.refresh_days.unwrap_or(DEFAULT_REFRESH_DAYS) {
            days @ 0..=MAX_REFRESH_DAYS => Ok(days),
            days => Err(PluginError::InvalidConfig(format!(
                "config.refresh_days: {days} is more than {MAX_REFRESH_DAYS}, the most a run digests again"
            ))),
        }
    }

    fn checked_kinds(&self) -> Result<&BTreeSet<String>, PluginError> {
        if self.kinds.contains(DIGEST) {
            return Err(PluginError::InvalidConfig("config.kinds: digests are not digested".into()));
        }
        Ok(&self.kinds)
    }
}

impl Plugin for DailyDigest {
    fn describe() -> Manifest {
        Manifest::new("digest", "Daily digest", env!("CARGO_PKG_VERSION"))
            .description("One event a day summing up the events of its group and of the groups it may read")
            .instance_type(
                InstanceType::new("daily", "Daily digest")
                    .description(
                        "Yesterday's events: counts and totals per kind, spending by category, workouts, plays \
                         and top artists",
                    )
                    .task()
                    .cron(&["0 7 * * *"], "Europe/London")
                    .config::<Config>()
                    .backfill_days(FIRST_RUN_DAYS),
            )
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        dispatch!(request.instance_type, { "daily" => daily(&request) })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        if batch.kind != DIGEST {
            return Err(PluginError::Permanent(format!("unknown batch kind {:?}", batch.kind)));
        }
        /// What a digest's event is keyed, timed and valued by; the whole
        /// digest is its data.
        #[derive(Deserialize)]
        struct Keys {
            day: String,
            from: String,
            events: u64,
        }
        let keys: Keys = serde_json::from_str(&batch.payload)?;
        let event = EventRecord::new(DIGEST, format!("digest:{}", keys.day), time::parse_rfc3339(&keys.from)?)
            .value(keys.events as f64, "events");
        Ok(Records { events: vec![EventRecord { data: batch.payload, ..event }], ..Records::default() })
    }
}

inlet_plugin_sdk::export_plugin!(DailyDigest);

/// Digest each day from a backfill's start, or from the day after the last
/// one digested (or the refresh days before yesterday, if earlier), through
/// yesterday. Each day is emitted and checkpointed with the cursor, so a run
/// stopped midway resumes after the last day stored.
fn daily(request: &FetchRequest) -> Result<FetchSummary, PluginError> {
    let config: Config = parse_config(&request.config)?;
    let zone = config.zone()?;
    let kinds = config.checked_kinds()?;
    let refresh_days = config.refresh_days()?;
    let cursor: state::Key<String> = state::Key::new("digested_through");
    let mut digested_through: Option<NaiveDate> = cursor.get()?.as_deref().and_then(days::parse);
    let today = days::of(time::now(), zone);
    let first = match &request.mode {
        FetchMode::Backfill(since) => days::of(*since, zone),
        FetchMode::Incremental => days::incremental_start(digested_through, today, refresh_days),
    };
    let plan = days::plan(first, today, MAX_DAYS_PER_RUN);
    let mut events_read = 0;
    for (done, day) in plan.days.iter().enumerate() {
        let digest = digest_day(&days::Window::of(*day, zone), kinds)?;
        events_read += digest.events;
        emit_json(DIGEST, &digest)?;
        // A backfill of older days leaves the cursor where it was.
        if Some(*day) > digested_through {
            digested_through = Some(*day);
            cursor.set(&day.to_string())?;
        }
        checkpoint()?;
        log::progress(done as u64 + 1, Some(plan.days.len() as u64));
    }
    if let Some(rest) = plan.rest {
        log::warn(format!(
            "a run digests at most {MAX_DAYS_PER_RUN} days: the days from {rest} on are left for the next run \
             (or a backfill from {rest})"
        ));
    }
    let (first, last) = (plan.days.first(), plan.days.last());
    let note = first.zip(last).map(|(first, last)| format!("digested {first} to {last} ({zone})"));
    Ok(FetchSummary { items_seen: events_read, note, ..FetchSummary::default() })
}

/// One day's digest, read a page at a time: one pass over every kind, or
/// one per kind asked for.
fn digest_day(window: &days::Window, kinds: &BTreeSet<String>) -> Result<digest::Digest, PluginError> {
    let mut totals = DayTotals::new(kinds);
    let passes: Vec<Option<String>> =
        if kinds.is_empty() { vec![None] } else { kinds.iter().cloned().map(Some).collect() };
    for kind in passes {
        let mut after = None;
        loop {
            let query = records::EventQuery {
                kind: kind.clone(),
                since: Some(window.from),
                until: Some(window.until),
                after,
                limit: PAGE_SIZE,
            };
            let page = records::query_events(&query).map_err(PluginError::Permanent)?;
            page.events.iter().filter(|event| event.kind != DIGEST).for_each(|event| totals.add(event));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(totals.finish(window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_declares_a_daily_task_at_seven_in_london_reaching_no_host() {
        let manifest = DailyDigest::describe();
        assert_eq!((manifest.id.as_str(), manifest.name.as_str()), ("digest", "Daily digest"));
        assert!(matches!(manifest.auth, AuthKind::None));
        let [daily] = &manifest.instance_types[..] else { panic!("one instance type") };
        assert_eq!(daily.id, "daily");
        assert!(matches!(daily.kind, InstanceKind::Task));
        assert!(daily.hosts.is_empty());
        let Schedule::Cron(cron) = &daily.default_schedule else { panic!("a cron schedule") };
        assert_eq!(
            (cron.expressions.as_slice(), cron.timezone.as_str()),
            (&["0 7 * * *".to_string()][..], "Europe/London")
        );
        let schema: serde_json::Value = serde_json::from_str(&daily.config_schema).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["examples"][0]["timezone"], "Europe/London");
        assert_eq!(schema["properties"]["kinds"]["uniqueItems"], true, "a kind named twice would count twice");
        assert_eq!(schema["properties"]["refresh_days"]["maximum"], MAX_REFRESH_DAYS);
    }

    #[test]
    fn the_config_names_a_time_zone_and_never_asks_for_digests() {
        let config = |json: &str| parse_config::<Config>(json).unwrap();
        assert_eq!(config("{}").zone().unwrap(), Tz::UTC);
        assert_eq!(config(r#"{"timezone": "Europe/London"}"#).zone().unwrap(), chrono_tz::Europe::London);
        let invalid = |result: Result<(), PluginError>| match result {
            Err(PluginError::InvalidConfig(message)) => message,
            _ => panic!("expected invalid config"),
        };
        assert!(invalid(config(r#"{"timezone": "Mars/Olympus"}"#).zone().map(|_| ())).starts_with("config.timezone"));
        assert!(invalid(config(r#"{"kinds": ["digest"]}"#).checked_kinds().map(|_| ())).starts_with("config.kinds"));
        assert!(parse_config::<Config>(r#"{"since": "2026-01-01"}"#).is_err(), "unknown fields are refused");
        assert_eq!(config("{}").refresh_days().unwrap(), DEFAULT_REFRESH_DAYS);
        assert_eq!(config(r#"{"refresh_days": 0}"#).refresh_days().unwrap(), 0);
        let too_many = invalid(config(r#"{"refresh_days": 8}"#).refresh_days().map(|_| ()));
        assert!(too_many.starts_with("config.refresh_days: 8 is more than 7"), "{too_many}");
    }

    #[test]
    fn a_digest_batch_becomes_the_event_of_its_day_with_the_digest_as_data() {
        let payload = json!({"day": "2026-07-01", "timezone": "Europe/London", "from": "2026-07-01T00:00:00+01:00",
                             "until": "2026-07-02T00:00:00+01:00", "events": 3, "kinds": {}})
        .to_string();
        let records = DailyDigest::process(RawBatch { kind: DIGEST.into(), payload: payload.clone() }).unwrap();
        let [event] = &records.events[..] else { panic!("one event") };
        assert_eq!((event.kind.as_str(), event.external_id.as_str()), ("digest", "digest:2026-07-01"));
        assert_eq!(event.occurred_at, 1_782_860_400_000, "2026-06-30T23:00:00Z");
        assert_eq!((event.value, event.unit.as_deref()), (Some(3.0), Some("events")));
        assert_eq!(event.data, payload);
    }
}
