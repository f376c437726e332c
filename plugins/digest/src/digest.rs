//! Running totals over one day's events, a page at a time, and the digest
//! they add up to: the data of that day's `digest` event.

use crate::days::Window;
use inlet_plugin_sdk::EventRecord;
use inlet_plugin_sdk::time;
use serde::Serialize;
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// How many artists a day's plays name.
const TOP_ARTISTS: usize = 5;
/// The spending category of a transaction that names none.
const UNCATEGORISED: &str = "uncategorised";

/// One day's digest, as its event's data.
#[derive(Serialize)]
pub struct Digest {
    /// `YYYY-MM-DD` in `timezone`.
    pub day: String,
    pub timezone: String,
    /// The day's first instant, RFC 3339 with the zone's offset.
    pub from: String,
    /// The next day's first instant.
    pub until: String,
    /// Events counted, of every kind.
    pub events: u64,
    pub kinds: BTreeMap<String, KindTotals>,
    /// Per currency, from the day's transactions.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub spending: BTreeMap<String, Spending>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workouts: Option<Workouts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plays: Option<Plays>,
}

/// How many events of one kind, and the sum of their values.
#[derive(Serialize, Default)]
pub struct KindTotals {
    pub count: u64,
    /// Per unit (`""` for values without one); values of different units
    /// never add up.
    pub totals: BTreeMap<String, f64>,
}

/// Money moved by the day's transactions, in the unit they are stored in
/// (Monzo: minor units, pence).
#[derive(Serialize, Default)]
pub struct Spending {
    /// Paid out (a positive sum of the negative amounts).
    pub spent: f64,
    /// Paid in: top-ups, refunds, income.
    pub received: f64,
    /// What was spent, by the transaction's category.
    pub by_category: BTreeMap<String, f64>,
}

#[derive(Serialize, Default)]
pub struct Workouts {
    pub count: u64,
    /// The workouts whose length is known, added up.
    pub duration_seconds: f64,
}

#[derive(Serialize)]
pub struct Plays {
    pub count: u64,
    /// The most played, most first (ties in name order).
    pub top_artists: Vec<ArtistPlays>,
}

#[derive(Serialize)]
pub struct ArtistPlays {
    pub name: String,
    pub plays: u64,
}

/// What one day's events add up to so far. Holds sums only, never the
/// events themselves.
#[derive(Default)]
pub struct DayTotals {
    events: u64,
    kinds: BTreeMap<String, KindTotals>,
    spending: BTreeMap<String, Spending>,
    workouts: Workouts,
    plays: u64,
    plays_by_artist: BTreeMap<String, u64>,
}

impl DayTotals {
    /// Totals that name each of `kinds` even when none of its events happen:
    /// a digest filtered to transactions says "0 transactions".
    pub fn new(kinds: &BTreeSet<String>) -> DayTotals {
        let kinds = kinds.iter().map(|kind| (kind.clone(), KindTotals::default())).collect();
        DayTotals { kinds, ..DayTotals::default() }
    }

    pub fn add(&mut self, event: &EventRecord) {
        self.events += 1;
        let kind = self.kinds.entry(event.kind.clone()).or_default();
        kind.count += 1;
        if let Some(value) = event.value {
            *kind.totals.entry(event.unit.clone().unwrap_or_default()).or_default() += value;
        }
        // The host stores only valid JSON; anything else reads as no data.
        let data = || serde_json::from_str::<Value>(&event.data).unwrap_or_default();
        match event.kind.as_str() {
            "transaction" => self.add_transaction(event, &data()),
            "workout" => {
                self.workouts.count += 1;
                self.workouts.duration_seconds += workout_seconds(event, &data()).unwrap_or_default();
            }
            "play" => self.add_play(&data()),
            _ => {}
        }
    }

    /// Monzo's convention: a negative amount left the account, a positive
    /// one came in. A declined payment (`decline_reason`) moved no money.
    fn add_transaction(&mut self, event: &EventRecord, data: &Value) {
        let Some(amount) = event.value else { return };
        if data["decline_reason"].is_string() {
            return;
        }
        let spending = self.spending.entry(event.unit.clone().unwrap_or_default()).or_default();
        if amount < 0.0 {
            spending.spent -= amount;
            let category = data["category"].as_str().unwrap_or(UNCATEGORISED);
            *spending.by_category.entry(category.to_string()).or_default() -= amount;
        } else {
            spending.received += amount;
        }
    }

    /// A play counts for each of its track's artists (Spotify's `track.artists`).
    fn add_play(&mut self, data: &Value) {
        self.plays += 1;
        for artist in data["track"]["artists"].as_array().into_iter().flatten() {
            if let Some(name) = artist["name"].as_str() {
                *self.plays_by_artist.entry(name.to_string()).or_default() += 1;
            }
        }
    }

    pub fn finish(self, window: &Window) -> Digest {
        let mut top_artists: Vec<ArtistPlays> =
            self.plays_by_artist.into_iter().map(|(name, plays)| ArtistPlays { name, plays }).collect();
        // Stable, so artists with as many plays stay in name order.
        top_artists.sort_by_key(|artist| Reverse(artist.plays));
        top_artists.truncate(TOP_ARTISTS);
        Digest {
            day: window.day.to_string(),
            timezone: window.zone.name().to_string(),
            from: window.local_time(window.from),
            until: window.local_time(window.until),
            events: self.events,
            kinds: self.kinds,
            spending: self.spending,
            workouts: (self.workouts.count > 0).then_some(self.workouts),
            plays: (self.plays > 0).then_some(Plays { count: self.plays, top_artists }),
        }
    }
}

/// A workout's length: its value where that is in seconds (Hevy), else
/// from its start and end in the data (Oura values a workout by calories).
fn workout_seconds(event: &EventRecord, data: &Value) -> Option<f64> {
    if event.unit.as_deref() == Some("s") {
        return event.value;
    }
    let at = |field: &str| data[field].as_str().and_then(|text| time::parse_rfc3339(text).ok());
    let start = at("start_datetime").or_else(|| at("start_time"))?;
    let end = at("end_datetime").or_else(|| at("end_time"))?;
    Some((end - start) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::days;
    use serde_json::json;

    fn event(kind: &str, value: Option<(f64, &str)>, data: Value) -> EventRecord {
        EventRecord {
            external_id: "e".into(),
            kind: kind.into(),
            occurred_at: 0,
            actor: None,
            target: None,
            value: value.map(|(v, _)| v),
            unit: value.map(|(_, u)| u.to_string()),
            data: data.to_string(),
        }
    }

    fn digest_of(kinds: &[&str], events: &[EventRecord]) -> Value {
        let kinds = kinds.iter().map(|kind| kind.to_string()).collect();
        let mut totals = DayTotals::new(&kinds);
        events.iter().for_each(|event| totals.add(event));
        let window = days::Window::of(days::parse("2026-09-01").unwrap(), chrono_tz::Tz::UTC);
        serde_json::to_value(totals.finish(&window)).unwrap()
    }

    #[test]
    fn transactions_add_up_to_spending_by_category_and_money_received() {
        let digest = digest_of(
            &[],
            &[
                event("transaction", Some((-350.0, "GBP")), json!({"category": "eating_out"})),
                event("transaction", Some((-1000.0, "GBP")), json!({"category": "groceries"})),
                event("transaction", Some((-150.0, "GBP")), json!({"category": "eating_out"})),
                event(
                    "transaction",
                    Some((-999.0, "GBP")),
                    json!({"category": "eating_out", "decline_reason": "INSUFFICIENT_FUNDS"}),
                ),
                event("transaction", Some((2500.0, "GBP")), json!({"category": "income"})),
                event("transaction", Some((-20.0, "EUR")), json!({})),
            ],
        );
        assert_eq!(digest["events"], 6);
        assert_eq!(digest["kinds"]["transaction"], json!({"count": 6, "totals": {"GBP": 1.0, "EUR": -20.0}}));
        assert_eq!(
            digest["spending"],
            json!({
                "GBP": {"spent": 1500.0, "received": 2500.0, "by_category": {"eating_out": 500.0, "groceries": 1000.0}},
                "EUR": {"spent": 20.0, "received": 0.0, "by_category": {"uncategorised": 20.0}},
            })
        );
        assert!(digest.get("workouts").is_none() && digest.get("plays").is_none());
    }

    #[test]
    fn workouts_add_up_their_length_and_plays_name_the_top_artists() {
        let artists = |names: &[&str]| json!({"track": {"artists": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()}});
        let digest = digest_of(
            &[],
            &[
                event("workout", Some((3600.0, "s")), json!({})),
                event(
                    "workout",
                    Some((420.0, "kcal")),
                    json!({"start_datetime": "2026-09-01T07:00:00+01:00", "end_datetime": "2026-09-01T07:30:00+01:00"}),
                ),
                event("workout", None, json!({})),
                event("play", Some((200_000.0, "ms")), artists(&["Björk"])),
                event("play", Some((180_000.0, "ms")), artists(&["Air", "Björk"])),
                event("play", None, artists(&["Air"])),
                event("play", None, artists(&["Can"])),
            ],
        );
        assert_eq!(digest["workouts"], json!({"count": 3, "duration_seconds": 5400.0}));
        assert_eq!(digest["kinds"]["workout"]["totals"], json!({"s": 3600.0, "kcal": 420.0}));
        assert_eq!(digest["plays"]["count"], 4);
        assert_eq!(
            digest["plays"]["top_artists"],
            json!([{"name": "Air", "plays": 2}, {"name": "Björk", "plays": 2}, {"name": "Can", "plays": 1}])
        );
        assert_eq!(digest["kinds"]["play"], json!({"count": 4, "totals": {"ms": 380_000.0}}));
    }

    #[test]
    fn an_empty_day_says_zero_for_every_kind_asked_for() {
        let digest = digest_of(&["transaction"], &[]);
        assert_eq!(
            digest,
            json!({
                "day": "2026-09-01",
                "timezone": "UTC",
                "from": "2026-09-01T00:00:00Z",
                "until": "2026-09-02T00:00:00Z",
                "events": 0,
                "kinds": {"transaction": {"count": 0, "totals": {}}},
            })
        );
    }
}
