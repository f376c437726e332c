//! Slack end to end: the real `inlet` binary and the bundled Slack
//! component. Events API deliveries, signed as Slack signs them
//! ([`SignedDelivery`]), through the real webhook route of a served `inlet`:
//! the challenge answered, forged and stale deliveries refused with nothing
//! stored, a message stored once however often Slack retries it, edited and
//! deleted. Then `channels` and `history` synced against the fake Slack Web
//! API ([`FakeSlack`]): deletions only after a complete read, a history read
//! resumed where it stopped, and Slack's refusals as typed errors. Each
//! polled instance type's cassette is recorded against the same fake.

use crate::support::{Inlet, bundled_plugin, eventually};
use inlet::demo::fake_slack::{
    FakeSlack, SAMPLE_CHANNEL, SIGNING_SECRET, SignedDelivery, SlackData, TOKEN, url_verification,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "slack-test-admin-token";
/// What the harness reports when a plugin maps the injected failures right.
const TYPED_ERRORS: &str = "ok   typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized";
const ALICE: &str = "U0ALICE001";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A request timestamp, as Slack sends it: Unix seconds.
fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Created, updated and deleted.
fn counts(run: &Value) -> (i64, i64, i64) {
    let records = &run["records"];
    let count = |name: &str| records[name].as_i64().unwrap_or_else(|| panic!("no {name} count: {run:#}"));
    (count("created"), count("updated"), count("deleted"))
}

/// A served `inlet` with the Slack plugin, a group connected with a bot
/// token and the app's signing secret, and the group's `messages` integration.
struct Served {
    _serve: tokio::process::Child,
    base: String,
    client: reqwest::Client,
    group: i64,
    messages: i64,
    inlet: Inlet,
}

impl Served {
    async fn start() -> Served {
        let inlet = Inlet::with_plugins(&[bundled_plugin("slack")]).env("INLET_ADMIN_TOKEN", ADMIN_TOKEN);
        let (serve, base) = inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;
        let client = reqwest::Client::new();
        let post =
            |path: &str, body: Value| client.post(format!("{base}{path}")).bearer_auth(ADMIN_TOKEN).json(&body).send();
        let group = json!({"plugin": "slack", "name": "workspace", "api_key": TOKEN, "webhook_secret": SIGNING_SECRET});
        let group: Value = post("/api/groups", group).await.unwrap().json().await.unwrap();
        assert_eq!(group["webhook_path"], format!("/webhooks/slack/{}", group["id"]), "{group}");
        let group = group["id"].as_i64().unwrap();
        let messages = json!({"plugin": "slack", "instance_type": "messages", "group_id": group});
        let messages: Value = post("/api/integrations", messages).await.unwrap().json().await.unwrap();
        assert_eq!(messages["sync_settings"]["schedule_summary"], "manual only", "{messages}");
        let messages = messages["id"].as_i64().unwrap();
        Served { _serve: serve, base, client, group, messages, inlet }
    }

    /// Post `delivery` to the group's Request URL: the answer's status and
    /// body, and how long it took.
    async fn deliver(&self, delivery: &SignedDelivery) -> (u16, String, Duration) {
        let url = format!("{}/webhooks/slack/{}", self.base, self.group);
        let mut request = self.client.post(url).body(delivery.body.clone());
        for (name, value) in &delivery.headers {
            request = request.header(*name, value.as_str());
        }
        let started = Instant::now();
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap(), started.elapsed())
    }

    /// Deliver `envelope` signed now, require 202, and return the host's summary.
    async fn accepted(&self, envelope: &Value) -> Value {
        let (status, body, took) = self.deliver(&SignedDelivery::new(SIGNING_SECRET, now_s(), envelope)).await;
        assert_eq!(status, 202, "{body}");
        assert!(took < Duration::from_secs(3), "Slack wants an answer within 3 s; this one took {took:?}");
        serde_json::from_str(&body).unwrap()
    }

    async fn events(&self) -> Vec<Value> {
        let url = format!("{}/api/events?integration={}&limit=1000", self.base, self.messages);
        let page: Value = self.client.get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().json().await.unwrap();
        page["events"].as_array().unwrap().clone()
    }

    async fn stored_batches(&self) -> i64 {
        let store = self.inlet.store().await;
        sqlx::query_scalar("SELECT COUNT(*) FROM raw_batches").fetch_one(store.pool()).await.unwrap()
    }

    /// The `messages` integration's newest run, once it has `count` successful
    /// runs (one per delivery the webhook queue processed).
    async fn run(&self, count: usize) -> Value {
        let url = format!("{}/api/integrations/{}/sync-history", self.base, self.messages);
        eventually(30, &format!("run {count} of the webhook queue"), || async {
            let page: Value =
                self.client.get(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().json().await.unwrap();
            let runs = page["runs"].as_array().unwrap().clone();
            let done =
                runs.len() == count && runs.iter().all(|r| r["status"] == "success" && r["trigger"] == "webhook");
            done.then(|| runs[0].clone())
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_events_are_verified_answered_at_once_and_stored_once() {
    let s = Served::start().await;
    let mut slack = SlackData::sample(now_ms());

    // Setting the Request URL: the challenge is the answer, nothing is stored.
    let challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P";
    let (status, body, _) =
        s.deliver(&SignedDelivery::new(SIGNING_SECRET, now_s(), &url_verification(challenge))).await;
    assert_eq!((status, body.as_str()), (200, challenge));
    assert_eq!(s.stored_batches().await, 0, "a challenge stores nothing");

    let posted = slack.post_message(SAMPLE_CHANNEL, ALICE, "Shipping the Slack plugin today", now_ms());
    let ts = posted["event"]["ts"].as_str().unwrap().to_string();

    // Signed with another secret, not signed, or signed six minutes ago (a
    // replay): refused, nothing stored.
    let forged = SignedDelivery::new("not-the-signing-secret", now_s(), &posted);
    let mut unsigned = SignedDelivery::new(SIGNING_SECRET, now_s(), &posted);
    unsigned.headers.retain(|(name, _)| *name != "x-slack-signature");
    let stale = SignedDelivery::new(SIGNING_SECRET, now_s() - 6 * 60, &posted);
    for (what, refused) in [("forged", forged), ("unsigned", unsigned), ("six minutes old", stale)] {
        let (status, body, _) = s.deliver(&refused).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body.contains("the delivery was not verified"), "{what}: {body}");
    }
    assert_eq!(s.stored_batches().await, 0, "a refused delivery stores nothing");

    // The message: acknowledged at once, then made an event by the webhook queue.
    let delivery = SignedDelivery::new(SIGNING_SECRET, now_s(), &posted);
    let (status, body, took) = s.deliver(&delivery).await;
    assert_eq!(status, 202, "{body}");
    assert!(took < Duration::from_secs(3), "Slack wants an answer within 3 s; this one took {took:?}");
    let first: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((first["duplicate"].as_bool(), &first["integrations"]), (Some(false), &json!([s.messages])), "{first}");
    assert_eq!(counts(&s.run(1).await), (1, 0, 0));
    let events = s.events().await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let message = &events[0];
    let external_id = format!("{SAMPLE_CHANNEL}:{ts}");
    assert_eq!(
        (message["kind"].as_str(), message["external_id"].as_str()),
        (Some("message"), Some(external_id.as_str()))
    );
    assert_eq!((message["actor"].as_str(), message["target"].as_str()), (Some(ALICE), Some(SAMPLE_CHANNEL)));
    let (seconds, fraction) = ts.split_once('.').unwrap();
    let at = seconds.parse::<i64>().unwrap() * 1000 + fraction[..3].parse::<i64>().unwrap();
    assert_eq!(message["occurred_at"], at, "{message}");
    assert_eq!(message["data"]["text"], "Shipping the Slack plugin today");
    assert!(message["data"].get("event_ts").is_none(), "only the fields both sources have: {message}");

    // Slack had no answer in time and retries: the same body under a new
    // timestamp and signature. Accepted, and not stored again.
    let batches = s.stored_batches().await;
    let (status, body, _) = s.deliver(&delivery.retry(SIGNING_SECRET, now_s() + 1, 1)).await;
    assert_eq!(status, 202, "{body}");
    let retried: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((retried["duplicate"].as_bool(), &retried["delivery_id"]), (Some(true), &first["delivery_id"]));
    assert_eq!(s.stored_batches().await, batches, "a retry is stored once");

    // Edited: the same event, updated. Deleted: gone.
    let edit = slack.edit_message(SAMPLE_CHANNEL, &ts, "Shipping the Slack plugin tomorrow", now_ms());
    s.accepted(&edit).await;
    assert_eq!(counts(&s.run(2).await), (0, 1, 0));
    let events = s.events().await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["external_id"], external_id.as_str());
    assert_eq!(events[0]["data"]["text"], "Shipping the Slack plugin tomorrow");
    assert_eq!(events[0]["data"]["edited"]["user"], ALICE);
    let delete = slack.delete_message(SAMPLE_CHANNEL, &ts, now_ms());
    s.accepted(&delete).await;
    assert_eq!(counts(&s.run(3).await), (0, 0, 1));
    assert!(s.events().await.is_empty(), "the deleted message is tombstoned");
}

/// An installation (not served) with a group connected to the fake Slack.
struct Synced {
    fake: FakeSlack,
    inlet: Inlet,
    group: String,
}

impl Synced {
    async fn start() -> Synced {
        let fake = FakeSlack::start(SlackData::sample(now_ms())).await.unwrap();
        let overrides = format!("slack.com={}", fake.base_url());
        let inlet = Inlet::with_plugins(&[bundled_plugin("slack")]).env("INLET_UPSTREAM_OVERRIDE", &overrides);
        let group = connect(&inlet, "workspace", &fake.access_token()).await;
        Synced { fake, inlet, group }
    }

    async fn add(&self, group: &str, instance_type: &str, config: &str) -> String {
        let args = ["integrations", "add", "slack", instance_type, "--group", group, "--config", config, "--json"];
        self.inlet.json(&args).await["id"].to_string()
    }

    async fn history(&self, channel: &str) -> String {
        self.add(&self.group, "history", &json!({ "channel": channel }).to_string()).await
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

    /// The requests to one Web API method since the last call (the others are forgotten too).
    fn requests(&self, method: &str) -> Vec<inlet::demo::RecordedRequest> {
        let path = format!("/api/{method}");
        self.fake.take_requests().into_iter().filter(|r| r.path == path).collect()
    }
}

/// `inlet groups add slack` with a bot token; the group's id.
async fn connect(inlet: &Inlet, name: &str, token: &str) -> String {
    inlet.json(&["groups", "add", "slack", "--name", name, "--api-key", token, "--json"]).await["id"].to_string()
}

fn named<'a>(records: &'a Value, name: &str) -> &'a Value {
    let objects = records["objects"].as_array().unwrap();
    objects.iter().find(|o| o["name"] == name).unwrap_or_else(|| panic!("no object named {name}: {records:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_channels_are_read_whole_and_deleted_only_after_a_complete_read() {
    let s = Synced::start().await;
    let channels = s.add(&s.group, "channels", "{}").await;
    s.fake.take_requests();
    let first = s.sync(&channels).await;
    assert_eq!(counts(&first), (6, 0, 0), "{first:#}");
    let requests = s.requests("conversations.list");
    let cursors: Vec<Option<&str>> = requests.iter().map(|r| r.param("cursor")).collect();
    assert!(cursors.len() == 2 && cursors[0].is_none() && cursors[1].is_some(), "two pages: {cursors:?}");
    let asked = &requests[0];
    assert!(asked.authorized, "the bot token as a bearer token");
    assert_eq!(asked.param("types"), Some("public_channel,private_channel"));
    assert_eq!((asked.param("exclude_archived"), asked.param("limit")), (Some("false"), Some("999")));

    let records = s.records(&channels).await;
    let general = named(&records, "general");
    assert_eq!((general["kind"].as_str(), general["external_id"].as_str()), (Some("channel"), Some(SAMPLE_CHANNEL)));
    assert_eq!(named(&records, "project-apollo")["data"]["is_archived"], true, "archived channels are kept");
    assert_eq!(named(&records, "leadership")["data"]["is_private"], true);
    assert_eq!(counts(&s.sync(&channels).await), (0, 0, 0), "nothing changed");

    // Archived: updated, still there.
    s.fake.update(|d| d.archive_channel("C0ENGINEER"));
    assert_eq!(counts(&s.sync(&channels).await), (0, 1, 0));
    assert_eq!(named(&s.records(&channels).await, "engineering")["data"]["is_archived"], true);

    // Deleted, and the read fails on its second page: nothing is deleted
    // until a read gets through every page.
    s.fake.update(|d| {
        assert!(d.delete_channel("C0RANDOM01"));
        d.fail_next_page();
    });
    let failed = s.failed_sync(&channels).await;
    assert_eq!(failed["error_class"], "transient", "{failed:#}");
    assert_eq!(counts(&failed).2, 0, "{failed:#}");
    assert_eq!(named(&s.records(&channels).await, "random")["deleted"], false);
    assert_eq!(counts(&s.sync(&channels).await), (0, 0, 1));
    assert_eq!(named(&s.records(&channels).await, "random")["deleted"], true);

    // Slack's rate limit: HTTP 429 with Retry-After.
    s.fake.respond_next(429, &[("retry-after", "30")], json!({"ok": false, "error": "ratelimited"}));
    let limited = s.failed_sync(&channels).await;
    assert_eq!(limited["error_class"], "rate-limited", "{limited:#}");

    // A token Slack does not know (HTTP 200, invalid_auth), and the app's
    // token revoked (token_revoked): unauthorized, and the integration waits
    // for the group to be connected again.
    let stranger = connect(&s.inlet, "stranger", "xoxb-0000000000-0000000000-notTheAppsToken").await;
    let refused = s.add(&stranger, "channels", "{}").await;
    let run = s.failed_sync(&refused).await;
    assert_eq!(run["error_class"], "unauthorized", "{run:#}");
    assert!(run["error_message"].as_str().unwrap().contains("invalid_auth"), "{run:#}");
    s.fake.update(|d| d.revoke_token());
    let run = s.failed_sync(&channels).await;
    assert_eq!(run["error_class"], "unauthorized", "{run:#}");
    assert!(run["error_message"].as_str().unwrap().contains("token_revoked"), "{run:#}");
    let integrations = s.inlet.json(&["integrations", "list", "--json"]).await;
    for id in [&channels, &refused] {
        let integration = (integrations.as_array().unwrap().iter())
            .find(|i| i["id"].as_i64() == id.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("no integration {id}: {integrations:#}"));
        assert_eq!(integration["paused_reason"], "needs-reconnect", "{integration:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_history_backfills_a_channel_resumes_where_it_stopped_and_names_a_bad_channel() {
    let s = Synced::start().await;
    let history = s.history(SAMPLE_CHANNEL).await;
    s.fake.take_requests();
    let first = s.sync(&history).await;
    assert_eq!(counts(&first), (130, 0, 0), "{first:#}");
    let requests = s.requests("conversations.history");
    assert_eq!(requests.len(), 2, "two pages");
    assert_eq!((requests[0].param("channel"), requests[0].param("limit")), (Some(SAMPLE_CHANNEL), Some("999")));
    // The first run reaches back 90 days.
    let oldest: f64 = requests[0].param("oldest").unwrap().parse().unwrap();
    let ninety_days_ago = (now_ms() / 1000 - 90 * 86_400) as f64;
    assert!((oldest - ninety_days_ago).abs() < 600.0, "oldest={oldest}");
    assert!(requests[1].param("cursor").is_some());

    // Keyed like the pushed messages; a bot's message is by the bot.
    let upstream = s.fake.update(|d| d.channel(SAMPLE_CHANNEL).unwrap().messages.clone());
    let records = s.records(&history).await;
    let events = records["events"].as_array().unwrap();
    let mut stored: Vec<&str> = events.iter().map(|e| e["external_id"].as_str().unwrap()).collect();
    let mut expected: Vec<String> =
        upstream.iter().map(|m| format!("{SAMPLE_CHANNEL}:{}", m["ts"].as_str().unwrap())).collect();
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected);
    let bot = events.iter().find(|e| e["data"]["subtype"] == "bot_message").unwrap();
    assert_eq!((bot["actor"].as_str(), bot["target"].as_str()), (Some("B0DEPLOY01"), Some(SAMPLE_CHANNEL)));

    // The next run asks only for what is newer than the newest message read.
    let newest = upstream.last().unwrap()["ts"].as_str().unwrap().to_string();
    assert_eq!(counts(&s.sync(&history).await), (0, 0, 0));
    let requests = s.requests("conversations.history");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].param("oldest"), Some(newest.as_str()));
    s.fake.update(|d| d.post_message(SAMPLE_CHANNEL, ALICE, "Posted while inlet was down", now_ms()));
    assert_eq!(counts(&s.sync(&history).await), (1, 0, 0));

    // A read that stops after its first page is resumed by the next run
    // from the oldest message it had read, not from the start.
    let again = s.history(SAMPLE_CHANNEL).await;
    s.fake.update(|d| d.fail_next_page());
    s.fake.take_requests();
    let failed = s.failed_sync(&again).await;
    assert_eq!(failed["error_class"], "transient", "{failed:#}");
    let failed_requests = s.requests("conversations.history");
    let oldest_read = failed_requests[0].param("oldest").map(str::to_string);
    let resumed = s.sync(&again).await;
    let requests = s.requests("conversations.history");
    assert_eq!(requests.len(), 1, "only what the failed run did not read");
    assert_eq!(requests[0].param("oldest").map(str::to_string), oldest_read);
    assert!(requests[0].param("latest").is_some(), "{:?}", requests[0].query);
    assert_eq!(counts(&failed).0 + counts(&resumed).0, 131, "{failed:#}\n{resumed:#}");
    assert_eq!(s.records(&again).await["events"].as_array().unwrap().len(), 131);

    // A channel Slack does not know, or one the app is not in, is the
    // config's fault, and says which field.
    for channel in ["C0NOSUCH01", "C0DESIGN01"] {
        let id = s.history(channel).await;
        let run = s.failed_sync(&id).await;
        assert_eq!(run["error_class"], "invalid-config", "{channel}: {run:#}");
        let message = run["error_message"].as_str().unwrap();
        assert!(message.contains("config.channel") && message.contains(channel), "{message}");
    }
    // The host checks the config against the schema before any run.
    let args = ["integrations", "add", "slack", "history", "--group", &s.group, "--config", "{}", "--json"];
    let refused = s.inlet.run(&args).await;
    assert!(!refused.status.success(), "a history integration needs its channel");
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_cassettes_record_against_the_fake_and_pass_the_standard_checks() {
    let fake = FakeSlack::start(SlackData::sample(now_ms())).await.unwrap();
    let overrides = format!("slack.com={}", fake.base_url());
    let token = fake.access_token();
    let history = json!({ "channel": SAMPLE_CHANNEL }).to_string();
    for (instance_type, config) in [("channels", None), ("history", Some(history.as_str()))] {
        // The recording is a child process: the fake keeps answering meanwhile.
        let report = tokio::task::block_in_place(|| {
            crate::record_cassette("slack", instance_type, config, &overrides, &[("INLET_API_KEY", &token)])
        });
        assert!(report.contains("ok   incremental run"), "{instance_type}: {report}");
        assert!(report.contains(TYPED_ERRORS), "{instance_type}: {report}");
    }
}
