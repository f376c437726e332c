//! Oura end to end: the real `inlet` binary and the Oura plugin against the
//! fake Oura API v2 (`inlet::demo::fake_oura`). Day-based listings read
//! their last days again on every run: nothing new changes nothing, a
//! recomputed score is an update and a new day a new record. A listing that
//! fails midway deletes nothing and moves no cursor; Oura's refusals are
//! typed errors. Then a cassette for each instance type, with the standard
//! checks.

use crate::support::{Inlet, bundled_plugin};
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use inlet::demo::RecordedRequest;
use inlet::demo::fake_oura::{FakeOura, OuraData};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const INSTANCE_TYPES: [&str; 6] =
    ["daily-sleep", "daily-activity", "daily-readiness", "sleep", "heartrate", "workouts"];

/// The fake, an installation with the Oura plugin, and a group connected
/// with the fake's access token (no refresh token).
struct Oura {
    fake: FakeOura,
    inlet: Inlet,
    group: String,
}

impl Oura {
    async fn start() -> Oura {
        let fake = FakeOura::start(OuraData::sample(Utc::now().timestamp_millis())).await.unwrap();
        let inlet = Inlet::with_plugins(&[bundled_plugin("oura")]).env("INLET_UPSTREAM_OVERRIDE", &overrides(&fake));
        let token = fake.access_token();
        let group = inlet.json(&["groups", "add", "oura", "--name", "ring", "--access-token", &token, "--json"]).await;
        Oura { fake, inlet, group: group["id"].to_string() }
    }

    async fn add(&self, instance_type: &str, config: &str) -> String {
        let group = self.group.as_str();
        let args = ["integrations", "add", "oura", instance_type, "--group", group, "--config", config, "--json"];
        self.inlet.json(&args).await["id"].to_string()
    }

    /// `inlet sync <id> --json`, requiring success.
    async fn sync(&self, id: &str) -> Value {
        crate::sync_ending(&self.inlet, id, "success").await
    }

    /// A run that must fail, as `inlet sync --json` prints it.
    async fn failed_sync(&self, id: &str) -> Value {
        crate::sync_ending(&self.inlet, id, "failed").await
    }

    async fn records(&self, id: &str) -> Value {
        self.inlet.json(&["records", id]).await
    }

    async fn events(&self, id: &str) -> Vec<Value> {
        self.records(id).await["events"].as_array().unwrap().clone()
    }

    /// The requests for one collection since the last call (the others are forgotten too).
    fn requests(&self, collection: &str) -> Vec<RecordedRequest> {
        let path = format!("/v2/usercollection/{collection}");
        self.fake.take_requests().into_iter().filter(|r| r.path == path).collect()
    }
}

fn overrides(fake: &FakeOura) -> String {
    format!("api.ouraring.com={}", fake.base_url())
}

/// Created, updated and deleted.
fn counts(run: &Value) -> (i64, i64, i64) {
    let records = &run["records"];
    let count = |name: &str| records[name].as_i64().unwrap_or_else(|| panic!("no {name} count: {run:#}"));
    (count("created"), count("updated"), count("deleted"))
}

fn shift(day: NaiveDate, days: i64) -> NaiveDate {
    day + Duration::days(days)
}

/// `check` holds for today (UTC) as it was before or after a run: a run
/// may straddle midnight.
fn on_either_day(before: NaiveDate, check: impl Fn(NaiveDate) -> bool) -> bool {
    check(before) || check(Utc::now().date_naive())
}

fn ids(documents: &[Value]) -> Vec<String> {
    documents.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn oura_reads_recent_days_again_and_types_its_refusals() {
    let o = Oura::start().await;
    assert_eq!(o.fake.update(|d| d.days()).len(), 7, "a week of sample days");

    // Daily sleep: a week of scores, one event a day keyed by Oura's id.
    let daily = o.add("daily-sleep", "{}").await;
    let first = o.sync(&daily).await;
    assert_eq!(counts(&first), (7, 0, 0), "{first:#}");
    let documents = o.fake.update(|d| d.documents("daily_sleep").to_vec());
    let events = o.events(&daily).await;
    let stored: Vec<(&str, Option<f64>)> =
        events.iter().map(|e| (e["external_id"].as_str().unwrap(), e["value"].as_f64())).collect();
    let upstream: Vec<(&str, Option<f64>)> =
        documents.iter().map(|d| (d["id"].as_str().unwrap(), d["score"].as_f64())).collect();
    assert_eq!(stored, upstream, "in time order, valued by their score");
    assert_eq!((events[0]["kind"].as_str(), events[0]["unit"].as_str()), (Some("daily_sleep"), Some("points")));
    assert_eq!(events[0]["data"]["contributors"], documents[0]["contributors"]);

    // The next run reads again the three days before its cursor (tomorrow,
    // for users ahead of UTC), with a day's margin each side for Oura's
    // timestamp filter, and finds nothing new.
    o.fake.take_requests();
    let before = Utc::now().date_naive();
    let second = o.sync(&daily).await;
    assert_eq!(counts(&second), (0, 0, 0), "{second:#}");
    let requests = o.requests("daily_sleep");
    assert_eq!(requests.len(), 1, "one window of one page");
    let asked = [requests[0].param("start_date"), requests[0].param("end_date")].map(|d| d.unwrap().to_string());
    let window = |today| [shift(today, -4), shift(today, 3)].map(|d| d.to_string());
    assert!(on_either_day(before, |today| asked == window(today)), "{asked:?}");

    // Oura recomputes a score inside that window, and the ring syncs a new
    // day: one update, one new record, no duplicate.
    let recomputed = o.fake.update(|d| d.days())[5];
    o.fake.update(|d| {
        d.set_score("daily_sleep", recomputed, 42);
        d.add_day(Utc::now().date_naive());
    });
    let third = o.sync(&daily).await;
    assert_eq!(counts(&third), (1, 1, 0), "{third:#}");
    let events = o.events(&daily).await;
    let distinct: BTreeSet<&str> = events.iter().map(|e| e["external_id"].as_str().unwrap()).collect();
    assert_eq!((events.len(), distinct.len()), (8, 8), "{events:#?}");
    let changed = events.iter().find(|e| e["data"]["day"] == recomputed.to_string()).unwrap();
    assert_eq!(changed["value"], 42.0);

    // Sleep periods: a first run that fails on its second page keeps what it
    // stored but moves no cursor, so the next run reads the same days again.
    let sleep = o.add("sleep", r#"{"refresh_days": 7}"#).await;
    o.fake.update(|d| d.fail_next_page(500));
    o.fake.take_requests();
    let failed = o.failed_sync(&sleep).await;
    assert_eq!(failed["error_class"], "transient", "{failed:#}");
    let failed_requests = o.requests("sleep");
    assert_eq!(failed_requests.len(), 2, "the first page, then the second, which failed");
    let retried = o.sync(&sleep).await;
    let retried_requests = o.requests("sleep");
    assert_eq!(
        retried_requests[0].param("start_date"),
        failed_requests[0].param("start_date"),
        "the days the failed run did not finish are read again"
    );
    let periods = o.fake.update(|d| d.documents("sleep").to_vec());
    let records = o.records(&sleep).await;
    let (events, blocks) = (records["events"].as_array().unwrap(), records["blocks"].as_array().unwrap());
    assert_eq!((events.len(), blocks.len()), (periods.len(), 2 * periods.len()), "{retried:#}");
    let mut stored: Vec<&str> = events.iter().map(|e| e["external_id"].as_str().unwrap()).collect();
    let mut upstream = ids(&periods);
    stored.sort();
    upstream.sort();
    assert_eq!(stored, upstream);

    // A night: an event from bedtime, its length the total sleep, its
    // heart-rate and HRV series in blocks of their own.
    let night = periods.iter().find(|p| p["type"] == "long_sleep").unwrap();
    let id = night["id"].as_str().unwrap();
    let event = events.iter().find(|e| e["external_id"] == id).unwrap();
    assert_eq!((event["kind"].as_str(), event["unit"].as_str()), (Some("sleep"), Some("s")));
    assert_eq!(event["value"].as_f64(), night["total_sleep_duration"].as_f64());
    let bedtime = DateTime::parse_from_rfc3339(night["bedtime_start"].as_str().unwrap()).unwrap();
    assert_eq!(event["occurred_at"], bedtime.timestamp_millis());
    assert!(event["data"].get("heart_rate").is_none() && event["data"]["day"] == night["day"], "{event}");
    for series in ["heart_rate", "hrv"] {
        let external_id = format!("{id}.{series}");
        let block = blocks.iter().find(|b| b["external_id"] == external_id.as_str()).unwrap();
        assert_eq!((block["kind"].as_str(), block["event_id"].as_str()), (Some(series), Some(id)));
        assert_eq!(block["data"], night[series], "{{interval, items, timestamp}}");
    }

    // The user deletes a nap. A run that fails midway deletes nothing; the
    // next complete read of that day removes the nap and its two series.
    let nap = periods.iter().find(|p| p["type"] == "sleep").unwrap()["id"].as_str().unwrap().to_string();
    o.fake.update(|d| {
        d.remove("sleep", &nap);
        d.fail_next_page(500);
    });
    let failed = o.failed_sync(&sleep).await;
    assert_eq!((failed["error_class"].as_str(), failed["records"]["deleted"].as_i64()), (Some("transient"), Some(0)));
    assert!(o.events(&sleep).await.iter().any(|e| e["external_id"] == nap.as_str()), "a failed run deletes nothing");
    let complete = o.sync(&sleep).await;
    assert_eq!(counts(&complete), (0, 0, 3), "the nap and its two series: {complete:#}");
    assert!(!o.events(&sleep).await.iter().any(|e| e["external_id"] == nap.as_str()));

    // Heart rate: each sample an event keyed by its time and source.
    let heart = o.add("heartrate", "{}").await;
    let samples = o.fake.update(|d| d.heartrate.clone());
    let first = o.sync(&heart).await;
    assert_eq!(counts(&first), (samples.len() as i64, 0, 0), "{first:#}");
    let sample = &samples[samples.len() / 2];
    let at = DateTime::parse_from_rfc3339(sample["timestamp"].as_str().unwrap()).unwrap();
    let external_id = format!(
        "{}.{}",
        at.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Secs, true),
        sample["source"].as_str().unwrap()
    );
    let events = o.events(&heart).await;
    let event = events.iter().find(|e| e["external_id"] == external_id.as_str()).unwrap();
    assert_eq!(
        (event["kind"].as_str(), event["value"].as_f64(), event["unit"].as_str()),
        (Some("heartrate"), sample["bpm"].as_f64(), Some("bpm"))
    );

    // The next run starts three days before the day it stopped on and finds
    // nothing new; a sample the ring delivers late is new the run after.
    o.fake.take_requests();
    let before = Utc::now().date_naive();
    let second = o.sync(&heart).await;
    assert_eq!(counts(&second), (0, 0, 0), "{second:#}");
    let requests = o.requests("heartrate");
    let from = requests[0].param("start_datetime").unwrap();
    assert!(on_either_day(before, |today| from == format!("{}T00:00:00.000Z", shift(today, -3))), "{from}");
    // Between two of the fake's samples, which are 15 minutes apart.
    let late = (Utc::now().timestamp() - 5 * 3600) / 900 * 900 + 450;
    o.fake.update(|d| d.add_heart_rate(late));
    let third = o.sync(&heart).await;
    assert_eq!(counts(&third), (1, 0, 0), "{third:#}");

    // Oura's refusals. A 429 waits as told.
    o.fake.respond_next(429, &[("retry-after", "30")], json!({"detail": "Too Many Requests"}));
    let limited = o.failed_sync(&daily).await;
    assert_eq!(limited["error_class"], "rate-limited", "{limited:#}");

    // Dates Oura refuses come from the config's `since`.
    let since = (Utc::now() + Duration::days(10)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let future = o.add("daily-readiness", &json!({ "since": since }).to_string()).await;
    let refused = o.failed_sync(&future).await;
    assert_eq!(refused["error_class"], "invalid-config", "{refused:#}");
    assert!(refused["error_message"].as_str().unwrap().contains("config.since"), "{refused:#}");

    // A scope the user withdrew (or a lapsed membership) needs a reconnect, and says which.
    o.fake.update(|d| d.revoke_scope("daily"));
    let forbidden = o.failed_sync(&daily).await;
    assert_eq!(forbidden["error_class"], "unauthorized", "{forbidden:#}");
    assert!(forbidden["error_message"].as_str().unwrap().contains("`daily` scope"), "{forbidden:#}");

    // So does a token Oura refuses when there is no refresh token to try.
    o.fake.respond_next(401, &[], json!({"detail": "Invalid or expired access token"}));
    let unauthorized = o.failed_sync(&heart).await;
    assert_eq!(unauthorized["error_class"], "unauthorized", "{unauthorized:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oura_cassettes_record_and_pass_the_standard_checks() {
    let fake = FakeOura::start(OuraData::sample(Utc::now().timestamp_millis())).await.unwrap();
    let (overrides, token) = (overrides(&fake), fake.access_token());
    for instance_type in INSTANCE_TYPES {
        let report = crate::record_cassette("oura", instance_type, None, &overrides, &[("INLET_ACCESS_TOKEN", &token)]);
        assert!(report.contains("ok   incremental run"), "{instance_type}: {report}");
        assert!(
            report.contains("ok   typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized"),
            "{instance_type}: {report}"
        );
    }
}
