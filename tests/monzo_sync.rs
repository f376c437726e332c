//! The walking skeleton end to end: the real `inlet` binary and the real Monzo
//! component against a fake Monzo on loopback.

mod support;

use inlet::demo::{FakeMonzo, MonzoDataset, RecordedRequest, transaction};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use support::{Inlet, Synced, bundled_plugin, root, test_plugin, text};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

struct Setup {
    fake: FakeMonzo,
    inlet: Inlet,
    /// Instance type → integration id.
    integrations: BTreeMap<String, i64>,
    /// When the fake's sample data starts.
    start: i64,
}

async fn setup(access_token: Option<&str>) -> Setup {
    setup_with(&[bundled_plugin("monzo")], access_token).await
}

async fn setup_with(plugins: &[PathBuf], access_token: Option<&str>) -> Setup {
    let now = chrono::Utc::now().timestamp_millis();
    let fake = FakeMonzo::start(MonzoDataset::sample(now)).await.unwrap();
    let inlet =
        Inlet::with_plugins(plugins).env("INLET_UPSTREAM_OVERRIDE", &format!("api.monzo.com={}", fake.base_url()));
    let token = access_token.map_or_else(|| fake.access_token(), str::to_string);
    let group = inlet.json(&["groups", "add", "monzo", "--name", "personal", "--access-token", &token, "--json"]).await;
    let group = group["id"].as_i64().unwrap().to_string();
    let mut integrations = BTreeMap::new();
    for instance_type in ["accounts", "balances", "pots", "transactions"] {
        let created = inlet.json(&["integrations", "add", "monzo", instance_type, "--group", &group, "--json"]).await;
        integrations.insert(instance_type.to_string(), created["id"].as_i64().unwrap());
    }
    Setup { fake, inlet, integrations, start: now - 29 * DAY_MS }
}

impl Setup {
    fn id(&self, instance_type: &str) -> i64 {
        self.integrations[instance_type]
    }

    /// `inlet sync <id> --json`, requiring its fetch and processing to succeed.
    async fn sync(&self, instance_type: &str) -> Synced {
        self.inlet.synced_both(&["sync", &self.id(instance_type).to_string(), "--json"]).await
    }

    fn transaction_requests(&self) -> Vec<RecordedRequest> {
        self.fake.take_requests().into_iter().filter(|r| r.path == "/transactions").collect()
    }
}

fn records(synced: &Synced) -> Value {
    synced.process["records"].clone()
}

/// Third parties' plugins built against an older contract keep working: the
/// Monzo plugin as built for inlet:plugin@0.1.0 (kept as a fixture, see its
/// README) loads beside plugins built for 0.2.0 and syncs as it always did.
#[tokio::test(flavor = "multi_thread")]
async fn a_monzo_plugin_built_for_contract_0_1_0_syncs_beside_0_2_0_plugins() {
    let old_monzo = root().join("tests/fixtures/contract-0.1.0/monzo.wasm");
    let s = setup_with(&[old_monzo, bundled_plugin("apple-health"), test_plugin("misbehave")], None).await;
    let listed = s.inlet.json(&["plugins", "--json"]).await;
    let contracts: BTreeMap<&str, &str> = (listed["plugins"].as_array().unwrap().iter())
        .map(|p| (p["id"].as_str().unwrap(), p["contract"].as_str().unwrap()))
        .collect();
    assert_eq!(contracts, BTreeMap::from([("apple-health", "0.2.0"), ("misbehave", "0.2.0"), ("monzo", "0.1.0")]));
    let table = text(&s.inlet.run(&["plugins"]).await.stdout);
    assert!(table.lines().any(|l| l.starts_with("monzo") && l.contains(" 0.1.0 ")), "{table}");
    // The host checks configs against its schema, whatever the contract.
    let group = s.inlet.json(&["groups", "list", "--json"]).await[0]["id"].to_string();
    let args = ["integrations", "add", "monzo", "transactions", "--group", &group, "--config", r#"{"since":"soon"}"#];
    let refused = s.inlet.run(&args).await;
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("config.since"), "{}", text(&refused.stderr));

    let accounts = s.sync("accounts").await;
    assert_eq!(records(&accounts), json!({"created": 2, "updated": 0, "unchanged": 0, "deleted": 0}));
    let transactions = s.sync("transactions").await;
    assert_eq!(records(&transactions), json!({"created": 237 + 119, "updated": 0, "unchanged": 0, "deleted": 0}));
    assert_eq!(transactions.fetch["progress_done"], 237, "its log and progress imports work too");
    assert!(s.transaction_requests().iter().all(|r| r.authorized), "the host authorised its requests");
}

#[tokio::test(flavor = "multi_thread")]
async fn syncs_all_four_instance_types_then_only_new_transactions() {
    let s = setup(None).await;

    // First sync of each instance type.
    let accounts = s.sync("accounts").await;
    assert_eq!(records(&accounts), json!({"created": 2, "updated": 0, "unchanged": 0, "deleted": 0}));
    let balances = s.sync("balances").await;
    assert_eq!(records(&balances), json!({"created": 2, "updated": 0, "unchanged": 0, "deleted": 0}));
    let pots = s.sync("pots").await;
    assert_eq!(records(&pots), json!({"created": 2, "updated": 0, "unchanged": 0, "deleted": 0}));
    s.fake.take_requests();
    let transactions = s.sync("transactions").await;
    // 230 + 7 transactions as events, and a merchant block for every other one.
    assert_eq!(records(&transactions), json!({"created": 237 + 119, "updated": 0, "unchanged": 0, "deleted": 0}));
    assert_eq!(transactions.fetch["items_seen"], 237);
    assert_eq!(transactions.fetch["batches"], 4, "three pages for acc_main, one for acc_joint");
    assert_eq!(transactions.process["batches"], 4, "what the fetch stored was processed");
    assert_eq!(transactions.fetch["trigger"], "backfill", "a first run is a backfill");
    assert_eq!(transactions.process["trigger"], "backfill", "its processing says why it ran");
    assert_eq!(transactions.fetch["progress_done"], 237, "progress counts every account's transactions");

    // The plugin paged with since/limit and the host authorised every request.
    let requests = s.transaction_requests();
    let main: Vec<_> = requests.iter().filter(|r| r.param("account_id") == Some("acc_main")).collect();
    assert_eq!(main.len(), 3);
    assert!(requests.iter().all(|r| r.authorized), "every request carried the group's token");
    assert!(requests.iter().all(|r| r.param("limit") == Some("100") && r.param("expand[]") == Some("merchant")));
    let first_since = chrono::DateTime::parse_from_rfc3339(main[0].param("since").unwrap()).unwrap();
    let backfill_days = (chrono::Utc::now().timestamp_millis() - first_since.timestamp_millis()) as f64 / DAY_MS as f64;
    assert!((88.9..89.1).contains(&backfill_days), "first run reaches back 89 days, got {backfill_days}");
    assert_eq!(main[1].param("since"), Some("tx_acc_main_00099"));
    assert_eq!(main[2].param("since"), Some("tx_acc_main_00199"));
    assert!(!requests.iter().any(|r| r.param("account_id") == Some("acc_old")), "closed accounts are skipped");

    // Stored records, field by field.
    let store = s.inlet.store().await;
    let accounts = store.objects(s.id("accounts")).await.unwrap();
    let ids: Vec<&str> = accounts.iter().map(|o| o.external_id.as_str()).collect();
    assert_eq!(ids, ["acc_joint", "acc_main"]);
    let main_account = &accounts[1];
    assert_eq!(main_account.kind, "account");
    assert_eq!(main_account.name.as_deref(), Some("Alex's current account"));
    assert_eq!(main_account.data["sort_code"], "040004");
    assert_eq!(main_account.data["type"], "uk_retail");
    assert_eq!(main_account.data["currency"], "GBP");

    let balances = store.objects(s.id("balances")).await.unwrap();
    assert_eq!(balances[1].external_id, "acc_main");
    assert_eq!(balances[1].kind, "balance");
    assert_eq!(
        balances[1].data,
        json!({"balance": 123456, "total_balance": 193456, "spend_today": -2345, "currency": "GBP"})
    );

    let pots = store.objects(s.id("pots")).await.unwrap();
    let names: Vec<_> = pots.iter().map(|p| (p.external_id.as_str(), p.name.as_deref().unwrap())).collect();
    assert_eq!(names, [("pot_holiday", "Holiday"), ("pot_rainy", "Rainy day")], "the deleted pot is not stored");
    assert_eq!(pots[0].data["balance"], 50000);
    assert_eq!(pots[0].data["currency"], "GBP");

    let events = store.events(s.id("transactions")).await.unwrap();
    assert_eq!(events.len(), 237);
    let first = events.iter().find(|e| e.external_id == "tx_acc_main_00000").unwrap();
    assert_eq!(first.kind, "transaction");
    assert_eq!(first.occurred_at, s.start);
    assert_eq!(first.actor.as_deref(), Some("acc_main"));
    assert_eq!(first.target.as_deref(), Some("merch_deli"));
    assert_eq!(first.value, Some(-100.0), "amounts stay in minor units");
    assert_eq!(first.unit.as_deref(), Some("GBP"));
    assert_eq!(first.data["description"], "THE DE BEAUVOIR DELI CO.");
    assert_eq!(first.data["merchant"], "merch_deli", "the event keeps the merchant id; details are a block");
    let second = events.iter().find(|e| e.external_id == "tx_acc_main_00001").unwrap();
    assert_eq!(second.occurred_at, s.start + 3 * HOUR_MS);
    assert_eq!(second.target, None);
    assert_eq!(second.value, Some(-137.0));

    let blocks = store.blocks(s.id("transactions")).await.unwrap();
    assert_eq!(blocks.len(), 119);
    let merchant = blocks.iter().find(|b| b.external_id == "tx_acc_main_00000").unwrap();
    assert_eq!(merchant.kind, "merchant");
    assert_eq!(merchant.event_id, "tx_acc_main_00000");
    assert_eq!(merchant.data["name"], "The De Beauvoir Deli Co.");
    assert_eq!(merchant.data["address"]["city"], "London");

    // The run kept the plugin's log lines.
    let runs = s.inlet.json(&["runs", &s.id("transactions").to_string(), "--logs", "--json"]).await;
    let fetch = runs.as_array().unwrap().iter().find(|r| r["run"]["queue"] == "fetch").unwrap();
    let logs: Vec<&str> = fetch["logs"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert!(logs.contains(&"230 new transactions for account acc_main"), "logs: {logs:?}");

    // New upstream transactions: the next run asks only for what follows the cursor.
    let now = chrono::Utc::now().timestamp_millis();
    s.fake.add_transactions("acc_main", (230..233).map(|i| transaction("acc_main", i, now - HOUR_MS + i)).collect());
    let again = s.sync("transactions").await;
    assert_eq!(records(&again), json!({"created": 3 + 2, "updated": 0, "unchanged": 0, "deleted": 0}));
    assert_eq!(again.fetch["items_seen"], 3);
    let requests = s.transaction_requests();
    let since: Vec<_> = requests.iter().map(|r| (r.param("account_id").unwrap(), r.param("since").unwrap())).collect();
    assert_eq!(since, [("acc_main", "tx_acc_main_00229"), ("acc_joint", "tx_acc_joint_00006")]);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE integration_id = $1")
        .bind(s.id("transactions"))
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 240, "no duplicate events");

    // Unchanged upstream data: nothing created, nothing duplicated.
    let accounts_again = s.sync("accounts").await;
    assert_eq!(records(&accounts_again), json!({"created": 0, "updated": 0, "unchanged": 2, "deleted": 0}));
    assert_eq!(store.objects(s.id("accounts")).await.unwrap().len(), 2);

    // A pot deleted upstream is marked deleted; the balance change is an update.
    s.fake.update(|data| {
        let pots = data.pots.get_mut("acc_main").unwrap();
        pots[1]["deleted"] = json!(true);
        data.balances.get_mut("acc_main").unwrap()["balance"] = json!(120000);
    });
    let pots_again = s.sync("pots").await;
    assert_eq!(records(&pots_again), json!({"created": 0, "updated": 0, "unchanged": 1, "deleted": 1}));
    let rainy = store.objects(s.id("pots")).await.unwrap().into_iter().find(|p| p.external_id == "pot_rainy").unwrap();
    assert!(rainy.deleted);
    let balances_again = s.sync("balances").await;
    assert_eq!(records(&balances_again), json!({"created": 0, "updated": 1, "unchanged": 1, "deleted": 0}));

    // A backfill re-fetches history from the given date, whatever the cursor says.
    let day = chrono::DateTime::from_timestamp_millis(s.start - DAY_MS).unwrap().format("%Y-%m-%d").to_string();
    s.fake.take_requests();
    let id = s.id("transactions").to_string();
    let backfill = s.inlet.synced_both(&["sync", &id, "--backfill", "--since", &day, "--json"]).await;
    assert_eq!(backfill.fetch["trigger"], "backfill");
    assert_eq!(records(&backfill), json!({"created": 0, "updated": 0, "unchanged": 240 + 121, "deleted": 0}));
    let requests = s.transaction_requests();
    assert_eq!(requests[0].param("since"), Some(format!("{day}T00:00:00.000Z").as_str()));
    assert_eq!(requests.len(), 4, "three pages for acc_main again, one for acc_joint");

    // The token is sealed at rest: not in the database file nor its WAL.
    let token = s.fake.access_token();
    let token = token.as_bytes();
    for file in ["inlet.db", "inlet.db-wal"] {
        let bytes = std::fs::read(s.inlet.data_dir().join(file)).unwrap_or_default();
        assert!(!bytes.windows(token.len()).any(|w| w == token), "{file} holds the plaintext token");
    }
}

/// Monzo settles a card payment a day or more after it was made, and may
/// change its amount then: a transaction read while pending is read again
/// until it has settled, and then the runs go on from the cursor. One whose
/// authorisation is released without being collected leaves Monzo's list,
/// and is deleted once two such reads in a row no longer list it.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_transaction_is_read_again_until_it_settles() {
    let s = setup(None).await;
    let settled_now = || json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let created_of = |index: usize| {
        s.fake.update(|data| data.transactions["acc_main"][index]["created"].as_str().unwrap().to_string())
    };
    let synced_from = || {
        let requests = s.transaction_requests();
        let main = requests.iter().find(|r| r.param("account_id") == Some("acc_main")).expect("acc_main was read");
        main.param("since").unwrap().to_string()
    };
    // A pass from a pending one starts a second before it (whether Monzo's
    // `since` takes its own time in or not).
    let ms = |at: &str| chrono::DateTime::parse_from_rfc3339(at).unwrap().timestamp_millis();
    let synced_from_before = |index: usize| ms(&created_of(index)) - ms(&synced_from());
    // 200, 201 and 202 (4 days old) are pending; so is 100, made 16 days
    // ago, too long ago to wait for; 199 was declined, and never settles.
    s.fake.update(|data| {
        let transactions = data.transactions.get_mut("acc_main").unwrap();
        for pending in [100, 200, 201, 202] {
            transactions[pending]["settled"] = json!("");
        }
        transactions[199]["settled"] = json!("");
        transactions[199]["decline_reason"] = json!("INSUFFICIENT_FUNDS");
    });
    s.sync("transactions").await;
    // A backfill of the last day or two reads none of them, and forgets none.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let id = s.id("transactions").to_string();
    s.inlet.synced_both(&["sync", &id, "--backfill", "--since", &yesterday, "--json"]).await;

    // One settles with a tip added; one is still pending; one is released,
    // gone from the list; one is new.
    s.fake.update(|data| {
        let transactions = data.transactions.get_mut("acc_main").unwrap();
        let released = transactions.remove(202);
        assert_eq!(released["id"], "tx_acc_main_00202");
        let tip = &mut transactions[200];
        tip["settled"] = settled_now();
        tip["amount"] = json!(-999);
    });
    let now = chrono::Utc::now().timestamp_millis();
    s.fake.add_transactions("acc_main", vec![transaction("acc_main", 230, now - HOUR_MS)]);
    s.fake.take_requests();
    let again = records(&s.sync("transactions").await);
    assert_eq!(synced_from_before(200), 1_000);
    // The tip's event is updated; the new one is an event and a merchant
    // block; the released one is kept until a second read misses it too.
    let counts = ["created", "updated", "deleted"].map(|n| again[n].as_i64());
    assert_eq!(counts, [Some(2), Some(1), Some(0)], "{again}");
    let store = s.inlet.store().await;
    let events = store.events(s.id("transactions")).await.unwrap();
    let released_stored =
        |events: &[inlet::store::records::StoredEvent]| events.iter().any(|e| e.external_id == "tx_acc_main_00202");
    assert!(released_stored(&events), "missed by one read: kept");
    let tipped = events.iter().find(|e| e.external_id == "tx_acc_main_00200").unwrap();
    assert_eq!(tipped.value, Some(-999.0));
    assert_ne!(tipped.data["settled"], "");

    // The last pending one settles: read again once more, then no more. The
    // released one, missed by a second read, is deleted with its merchant.
    s.fake.update(|data| data.transactions.get_mut("acc_main").unwrap()[201]["settled"] = settled_now());
    let settled = records(&s.sync("transactions").await);
    assert_eq!((settled["updated"].as_i64(), settled["deleted"].as_i64()), (Some(1), Some(2)), "{settled}");
    assert_eq!(synced_from_before(201), 1_000);
    assert!(!released_stored(&store.events(s.id("transactions")).await.unwrap()), "deleted");
    let quiet = s.inlet.synced(&["sync", &id, "--json"]).await;
    assert_eq!(quiet["items_seen"], 0, "nothing pending, nothing new: {quiet}");
    assert_eq!(synced_from(), "tx_acc_main_00230");
}

/// A payment released while pending is deleted even when a pass that
/// reads from it fails midway: what the pass had not reached is still
/// waited for, and the passes after it, read to their end, delete it. The
/// cursor never names a pending payment, which may leave Monzo's list: after
/// one, it is a second before the payment was made.
#[tokio::test(flavor = "multi_thread")]
async fn a_released_payment_is_deleted_after_a_pass_that_failed_midway() {
    let s = setup(None).await;
    let id = s.id("transactions").to_string();
    // Where each run of acc_main's transactions started (`since`).
    let started_at = || {
        let requests = s.transaction_requests();
        let main = requests.iter().find(|r| r.param("account_id") == Some("acc_main")).expect("acc_main was read");
        main.param("since").unwrap().to_string()
    };
    let a_second_before = |index: usize| {
        let created =
            s.fake.update(|data| data.transactions["acc_main"][index]["created"].as_str().unwrap().to_string());
        let at = chrono::DateTime::parse_from_rfc3339(&created).unwrap() - chrono::Duration::seconds(1);
        at.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let delete_counts = |runs: &Value| support::sync_summary(runs)["records"]["deleted"].as_i64();
    let sync = || async { s.inlet.json(&["sync", &id, "--json"]).await };

    // 125 (13 days old) is pending: a pass from it reads two pages.
    s.fake.update(|data| data.transactions.get_mut("acc_main").unwrap()[125]["settled"] = json!(""));
    s.sync("transactions").await;
    s.transaction_requests();
    let from_125 = a_second_before(125);
    s.fake.update(|data| {
        let released = data.transactions.get_mut("acc_main").unwrap().remove(125);
        assert_eq!(released["id"], "tx_acc_main_00125");
        data.fail_transactions_page_after("acc_main", 1);
    });
    let output = s.inlet.run(&["sync", &id, "--json"]).await;
    let failed = support::sync_summary(&serde_json::from_slice(&output.stdout).unwrap());
    assert_eq!((failed["status"].as_str(), failed["error_class"].as_str()), (Some("failed"), Some("transient")));
    assert_eq!(started_at(), from_125);
    // Read from it again, to the end: missed once; then again: deleted.
    for deleted in [0, 1] {
        let runs = sync().await;
        assert_eq!(started_at(), from_125);
        assert_eq!(delete_counts(&runs), Some(deleted), "{runs:#}");
    }
    let events = s.inlet.store().await.events(s.id("transactions")).await.unwrap();
    assert!(!events.iter().any(|e| e.external_id == "tx_acc_main_00125"), "the released one is deleted");
    // Nothing pending: from the cursor.
    sync().await;
    assert_eq!(started_at(), "tx_acc_main_00229");

    // The newest payment is pending, then released: the cursor is not its
    // id (Monzo would not know it) but a second before it was made.
    let made = chrono::Utc::now() - chrono::Duration::hours(1);
    let mut newest = transaction("acc_main", 230, made.timestamp_millis());
    newest["settled"] = json!("");
    s.fake.add_transactions("acc_main", vec![newest]);
    sync().await;
    s.fake.update(|data| data.transactions.get_mut("acc_main").unwrap().pop());
    for deleted in [0, 2] {
        assert_eq!(delete_counts(&sync().await), Some(deleted));
    }
    s.transaction_requests();
    sync().await;
    let a_second_before_made = made - chrono::Duration::seconds(1);
    assert_eq!(started_at(), a_second_before_made.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_fails_the_run_as_unauthorized_without_showing_it() {
    let token = "wrong-token-5f1c2e";
    let s = setup(Some(token)).await;
    let id = s.id("accounts").to_string();
    let output = s.inlet.run(&["sync", &id]).await;
    assert!(!output.status.success(), "a failed run exits non-zero");
    let printed = text(&output.stdout) + &text(&output.stderr);
    assert!(printed.contains("unauthorized"), "{printed}");
    assert!(printed.contains("401"), "{printed}");
    assert!(!printed.contains(token), "the token must not be printed: {printed}");

    let runs = s.inlet.json(&["runs", &id, "--logs", "--json"]).await;
    let run = &runs[0]["run"];
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error_class"], "unauthorized");
    assert!(!runs.to_string().contains(token));
    let requests = s.fake.take_requests();
    assert!(requests.iter().any(|r| r.path == "/accounts" && !r.authorized));
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_rate_limits_and_redirects_are_handled_by_the_host() {
    let s = setup(None).await;
    let id = s.id("accounts").to_string();

    // 429 with Retry-After becomes a rate-limited run that says how long to wait.
    s.fake.respond_next(429, &[("retry-after", "120")], json!({"code": "too_many_requests"}));
    let output = s.inlet.run(&["sync", &id]).await;
    assert!(!output.status.success());
    let run = &s.inlet.json(&["runs", &id, "--json"]).await[0]["run"];
    assert_eq!(run["error_class"], "rate-limited");
    assert!(run["error_message"].as_str().unwrap().contains("retry after 120s"), "{run}");

    // A redirect to a host the plugin did not declare is refused, not followed.
    s.fake.respond_next(302, &[("location", "https://evil.example.com/steal")], json!({}));
    assert!(!s.inlet.run(&["sync", &id]).await.status.success());
    let run = &s.inlet.json(&["runs", &id, "--json"]).await[0]["run"];
    assert_eq!(run["error_class"], "permanent");
    let message = run["error_message"].as_str().unwrap();
    assert!(message.contains("https://evil.example.com/steal is not on the plugin's declared hosts"), "{message}");

    // A redirect within the declared host is followed, with credentials.
    s.fake.take_requests();
    s.fake.respond_next(302, &[("location", "/accounts?moved=1")], json!({}));
    let run = s.sync("accounts").await;
    assert_eq!(run.process["records"]["created"], 2);
    let requests: Vec<_> = s.fake.take_requests().into_iter().filter(|r| r.path == "/accounts").collect();
    assert_eq!(requests.len(), 2, "the redirect and its target");
    assert_eq!(requests[1].param("moved"), Some("1"));
    assert!(requests.iter().all(|r| r.authorized));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_rate_limit_spaces_the_groups_requests_instead_of_failing() {
    let mut s = setup(None).await;
    s.inlet = s.inlet.config("[plugins.monzo]\nrate_limit = { requests = 2, per_seconds = 1 }\n");
    s.fake.take_requests();
    s.sync("transactions").await;
    let requests = s.fake.take_requests();
    assert!(requests.len() >= 4, "accounts and several pages: {}", requests.len());
    for pair in requests.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // 500 ms apart at the host; arrival can be a little closer than sending.
        assert!(gap >= std::time::Duration::from_millis(450), "{} then {} after {gap:?}", pair[0].path, pair[1].path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_can_narrow_the_declared_hosts() {
    let mut s = setup(None).await;
    s.inlet = s.inlet.config("[plugins.monzo]\nhosts = []\n");
    let output = s.inlet.run(&["sync", &s.id("accounts").to_string(), "--json"]).await;
    let run = support::sync_outcome(serde_json::from_slice(&output.stdout).unwrap());
    assert_eq!(run["status"], "failed");
    assert!(run["error_message"].as_str().unwrap().contains("https://api.monzo.com/accounts is not on"), "{run:#}");
    assert!(s.fake.take_requests().is_empty(), "nothing reached the upstream");
}
