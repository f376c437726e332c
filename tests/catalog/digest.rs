//! Daily digest end to end: the real `inlet` binary, the Monzo plugin
//! against the fake Monzo, and the digest task reading the Monzo group's
//! transactions through the grant `inlet groups add digest --reads <group>`.
//! A first run digests the last week, each day's totals those of the fake's
//! transactions in that day (Europe/London); digesting a day again updates
//! its event, never duplicates it; a group granted nothing digests zeros;
//! and the task is listed with the tasks on the Updates page.

use crate::support::{Inlet, bundled_plugin, terminate};
use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use inlet::demo::{FakeMonzo, MonzoDataset, transaction};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const ADMIN_TOKEN: &str = "digest-test-admin-token";
/// How many days the first run of a digest covers: the week through yesterday.
const FIRST_RUN_DAYS: usize = 7;

/// The fake Monzo, an installation with the Monzo and digest plugins, and
/// a Monzo group with its transactions integration.
struct Setup {
    fake: FakeMonzo,
    inlet: Inlet,
    monzo_group: String,
    transactions: String,
}

impl Setup {
    async fn start() -> Setup {
        let fake = FakeMonzo::start(MonzoDataset::sample(Utc::now().timestamp_millis())).await.unwrap();
        let inlet = Inlet::with_plugins(&[bundled_plugin("monzo"), bundled_plugin("digest")])
            .env("INLET_UPSTREAM_OVERRIDE", &format!("api.monzo.com={}", fake.base_url()))
            .env("INLET_ADMIN_TOKEN", ADMIN_TOKEN);
        let token = fake.access_token();
        let args = ["groups", "add", "monzo", "--name", "personal", "--access-token", &token, "--json"];
        let monzo_group = inlet.json(&args).await["id"].to_string();
        let args = ["integrations", "add", "monzo", "transactions", "--group", &monzo_group, "--json"];
        let transactions = inlet.json(&args).await["id"].to_string();
        Setup { fake, inlet, monzo_group, transactions }
    }

    /// A digest group reading `reads` as well as its own records, and its
    /// `daily` task with `config`.
    async fn add_digest(&self, name: &str, reads: &[&str], config: &str) -> String {
        let mut args = vec!["groups", "add", "digest", "--name", name, "--json"];
        for &group in reads {
            args.extend(["--reads", group]);
        }
        let group = self.inlet.json(&args).await["id"].to_string();
        let args = ["integrations", "add", "digest", "daily", "--group", &group, "--config", config, "--json"];
        self.inlet.json(&args).await["id"].to_string()
    }

    /// `inlet sync <id> --json`, requiring success.
    async fn sync(&self, id: &str) -> Value {
        crate::sync_ending(&self.inlet, id, "success").await
    }

    /// `inlet sync <id> --backfill --since <day> --json`, requiring success.
    async fn backfill(&self, id: &str, since: NaiveDate) -> Value {
        let runs = self.inlet.json(&["sync", id, "--backfill", "--since", &since.to_string(), "--json"]).await;
        let run = crate::support::sync_summary(&runs);
        assert_eq!(run["status"], "success", "{run:#}");
        run
    }

    /// The digest events of integration `id`, oldest first.
    async fn digests(&self, id: &str) -> Vec<Value> {
        let records = self.inlet.json(&["records", id]).await;
        records["events"].as_array().unwrap().clone()
    }

    /// Every transaction the fake serves, of every account.
    fn transactions(&self) -> Vec<Value> {
        self.fake.update(|data| data.transactions.values().flatten().cloned().collect())
    }
}

/// Created, updated, unchanged.
fn counts(run: &Value) -> (i64, i64, i64) {
    let records = &run["records"];
    let count = |name: &str| records[name].as_i64().unwrap_or_else(|| panic!("no {name} count: {run:#}"));
    (count("created"), count("updated"), count("unchanged"))
}

fn london_today() -> NaiveDate {
    Utc::now().with_timezone(&London).date_naive()
}

/// The first instant of `day` in London (whose midnight always exists).
fn london_midnight(day: NaiveDate) -> i64 {
    London.from_local_datetime(&day.and_time(NaiveTime::MIN)).earliest().unwrap().timestamp_millis()
}

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
}

/// Every number as a float, so totals compare whether they were stored as
/// `1234` or `1234.0`.
fn floats(value: &Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(floats).collect()),
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), floats(v))).collect()),
        other => other.clone(),
    }
}

/// What a digest of `day` (London) must say about `transactions`: how many
/// and their net total, and what was spent (Monzo: negative amounts, in
/// pence) by category. A day without any names no kind and no spending.
fn expected_digest(transactions: &[Value], day: NaiveDate) -> Value {
    let (from, until) = (london_midnight(day), london_midnight(day + Days::new(1)));
    let of_day: Vec<&Value> =
        (transactions.iter()).filter(|t| (from..until).contains(&ms(t["created"].as_str().unwrap()))).collect();
    if of_day.is_empty() {
        return floats(&json!({"events": 0, "kinds": {}, "spending": null}));
    }
    let amount = |t: &Value| t["amount"].as_f64().unwrap();
    let mut by_category: BTreeMap<String, f64> = BTreeMap::new();
    let (mut net, mut spent, mut received) = (0.0, 0.0, 0.0);
    for &t in &of_day {
        net += amount(t);
        if amount(t) < 0.0 {
            spent -= amount(t);
            *by_category.entry(t["category"].as_str().unwrap().to_string()).or_default() -= amount(t);
        } else {
            received += amount(t);
        }
    }
    floats(&json!({
        "events": of_day.len(),
        "kinds": {"transaction": {"count": of_day.len(), "totals": {"GBP": net}}},
        "spending": {"GBP": {"spent": spent, "received": received, "by_category": by_category}},
    }))
}

/// The parts of a digest's data [`expected_digest`] predicts.
fn totals(digest: &Value) -> Value {
    let data = &digest["data"];
    floats(&json!({"events": data["events"], "kinds": data["kinds"], "spending": data["spending"]}))
}

/// The day a digest event covers, checking its key and time agree with it.
fn digest_day(digest: &Value, timezone: &str) -> NaiveDate {
    let data = &digest["data"];
    let day: NaiveDate = data["day"].as_str().unwrap().parse().unwrap();
    assert_eq!((digest["kind"].as_str(), digest["unit"].as_str()), (Some("digest"), Some("events")), "{digest:#}");
    assert_eq!(digest["external_id"], format!("digest:{day}"));
    assert_eq!(digest["value"].as_f64(), data["events"].as_f64(), "valued by its count of events");
    assert_eq!(data["timezone"], timezone);
    assert_eq!(digest["occurred_at"].as_i64(), Some(ms(data["from"].as_str().unwrap())), "at the day's start");
    day
}

/// The `FIRST_RUN_DAYS` days through the day before `today`.
fn last_week(today: NaiveDate) -> Vec<NaiveDate> {
    (1..=FIRST_RUN_DAYS as u64).rev().map(|back| today - Days::new(back)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_adds_up_each_day_of_the_groups_it_reads() {
    let s = Setup::start().await;
    let synced = s.sync(&s.transactions).await;
    assert_eq!(counts(&synced), (237 + 119, 0, 0), "237 transactions, every other one with a merchant block");

    // A digest that may read the Monzo group, backfilled from a week ago:
    // one event a day through yesterday in London, each adding up exactly
    // the transactions that happened between that day's midnights.
    let daily = s.add_digest("daily", &[&s.monzo_group], r#"{"timezone": "Europe/London"}"#).await;
    let today = london_today();
    let first = s.backfill(&daily, today - Days::new(FIRST_RUN_DAYS as u64)).await;
    assert_eq!(first["trigger"], "backfill");
    assert_eq!((counts(&first), first["batches"].as_i64()), ((7, 0, 0), Some(7)), "{first:#}");
    let transactions = s.transactions();
    let digests = s.digests(&daily).await;
    let days: Vec<NaiveDate> = digests.iter().map(|d| digest_day(d, "Europe/London")).collect();
    assert!(days == last_week(today) || days == last_week(london_today()), "{days:?}");
    let mut counted = 0;
    for (digest, day) in digests.iter().zip(&days) {
        assert_eq!(totals(digest), expected_digest(&transactions, *day), "{day}: {digest:#}");
        assert_eq!(digest["data"]["from"].as_str().map(ms), Some(london_midnight(*day)));
        counted += digest["data"]["events"].as_i64().unwrap();
    }
    assert!(counted > 0, "the fake's transactions span the last four weeks");
    assert_eq!(first["items_seen"], counted, "every transaction of the week was read once");

    // A second run today digests yesterday again, and the two days before
    // it (`refresh_days`, 2 by default), and finds them as they were: the
    // digests in the group are not counted, and no event is duplicated.
    let yesterday = *days.last().unwrap();
    let refreshed = yesterday - Days::new(2);
    let refreshed_digest = digests.iter().find(|d| digest_day(d, "Europe/London") == refreshed).unwrap().clone();
    let again = s.sync(&daily).await;
    let rolled_over = london_today() != yesterday + Days::new(1);
    assert_eq!(counts(&again), if rolled_over { (1, 0, 2) } else { (0, 0, 3) }, "{again:#}");
    assert_eq!(again["trigger"], "manual");

    // A payment made three days ago reaches inlet late: the next run
    // digests that day again and updates its event.
    if !rolled_over {
        let noon = london_midnight(refreshed) + 12 * 3_600_000;
        s.fake.add_transactions("acc_main", vec![transaction("acc_main", 5000, noon)]);
        assert_eq!(counts(&s.sync(&s.transactions).await), (2, 0, 0), "the transaction and its merchant");
        let updated = s.sync(&daily).await;
        assert_eq!(counts(&updated), (0, 1, 2), "{updated:#}");
        let digests = s.digests(&daily).await;
        assert_eq!(digests.len(), FIRST_RUN_DAYS, "still one digest a day");
        let latest = digests.iter().find(|d| digest_day(d, "Europe/London") == refreshed).unwrap();
        assert_eq!(totals(latest), expected_digest(&s.transactions(), refreshed), "{latest:#}");
        let counted_before = refreshed_digest["data"]["events"].as_i64().unwrap();
        assert_eq!(latest["data"]["events"].as_i64(), Some(counted_before + 1), "{latest:#}");
    }

    // A digest granted nothing reads only its own group, which holds no
    // events: every day says zero. Its first run, a backfill by default,
    // reaches back a week; its days are UTC's by default.
    let alone = s.add_digest("alone", &[], "{}").await;
    let utc_today = Utc::now().date_naive();
    let first = s.sync(&alone).await;
    assert_eq!((first["trigger"].as_str(), counts(&first)), (Some("backfill"), (7, 0, 0)), "{first:#}");
    let digests = s.digests(&alone).await;
    let days: Vec<NaiveDate> = digests.iter().map(|d| digest_day(d, "UTC")).collect();
    assert!(days == last_week(utc_today) || days == last_week(Utc::now().date_naive()), "{days:?}");
    for digest in digests {
        let data = digest["data"].as_object().unwrap();
        assert_eq!(data["events"], 0, "{digest:#}");
        assert_eq!(data["kinds"], json!({}));
        assert!(!data.contains_key("spending"), "{digest:#}");
    }

    // Both digests are tasks on the Updates page, at 07:00 London by
    // default, beside the host's own (its housekeeping).
    let (server, base) = s.inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;
    let updates = |filter: &str| {
        let url = format!("{base}/api/updates?filter={filter}");
        async move {
            let response = reqwest::Client::new().get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["rows"].clone()
        }
    };
    // The scheduler's leader creates the host's tasks once it leads, just
    // after the server starts: wait for both.
    let tasks = crate::support::eventually(30, "the host's two tasks", || async {
        let tasks = updates("tasks").await;
        let host_tasks = tasks.as_array().unwrap().iter().filter(|row| row["plugin_id"] == "inlet").count();
        (host_tasks == 2).then_some(tasks)
    })
    .await;
    let (digests, host): (Vec<&Value>, Vec<&Value>) =
        tasks.as_array().unwrap().iter().partition(|row| row["plugin_id"] == "digest");
    let ids: Vec<String> = digests.iter().map(|row| row["id"].to_string()).collect();
    assert_eq!(ids, [daily.as_str(), alone.as_str()], "{tasks:#}");
    let host: Vec<&str> = host.iter().map(|row| row["instance_type"].as_str().unwrap()).collect();
    assert_eq!(host, ["prune-history", "refresh-tokens"], "{tasks:#}");
    for row in digests {
        assert_eq!((row["kind"].as_str(), row["plugin_id"].as_str()), (Some("task"), Some("digest")));
        assert_eq!(row["instance_type"], "daily");
        assert_eq!(
            (row["schedule_summary"].as_str(), row["schedule_is_default"].as_bool()),
            (Some("07:00 Europe/London"), Some(true))
        );
        assert!(row["last_success_at"].is_i64(), "{row:?}");
    }
    let integrations = updates("integrations").await;
    let ids: Vec<String> = integrations.as_array().unwrap().iter().map(|row| row["id"].to_string()).collect();
    assert_eq!(ids, [s.transactions.as_str()], "the tasks are not integrations");
    terminate(&server);
}
