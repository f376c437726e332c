//! GoCardless Bank Account Data end to end: the real `inlet` binary and the
//! bundled GoCardless component against the fake GoCardless
//! ([`FakeGoCardless`]). The group holds a secret pair that the host
//! exchanges for tokens the plugin never sees; accounts, balances and
//! transactions sync, and a pending transaction that books under a new id
//! is counted once. The bank's 4 calls a day per account hold across
//! processes (every `inlet` command below is a process of its own on the
//! same data folder and database, so each `sync` is a restart), and an
//! expired agreement or refused secrets leave the group needing a
//! reconnect. Each instance type's cassette is recorded against the fake.

use crate::support::{Inlet, bundled_plugin, text};
use inlet::demo::fake_gocardless::{DAILY_LIMIT, FakeGoCardless, GoCardlessData, INSTITUTION, SECRET_ID, SECRET_KEY};
use serde_json::Value;

/// What the harness reports when a plugin maps the injected failures right.
const TYPED_ERRORS: &str = "typed errors: 500 → transient, 429 → rate-limited, 401 → unauthorized";
const TOKEN_NEW: &str = "/api/v2/token/new/";

/// The fake, an installation with the GoCardless plugin, and a group
/// holding the fake's secret pair.
struct Bank {
    fake: FakeGoCardless,
    inlet: Inlet,
    group: String,
    /// The fake's account ids, in its order.
    accounts: Vec<String>,
}

impl Bank {
    async fn start() -> Bank {
        let fake = FakeGoCardless::start(GoCardlessData::sample(now_ms())).await.unwrap();
        let inlet =
            Inlet::with_plugins(&[bundled_plugin("gocardless")]).env("INLET_UPSTREAM_OVERRIDE", &overrides(&fake));
        let group = add_group(&inlet, "bank", SECRET_ID, SECRET_KEY).await;
        let accounts = fake.update(|data| data.account_ids());
        Bank { fake, inlet, group, accounts }
    }

    async fn add(&self, group: &str, instance_type: &str) -> String {
        let args = ["integrations", "add", "gocardless", instance_type, "--group", group, "--config", "{}", "--json"];
        self.inlet.json(&args).await["id"].to_string()
    }

    /// `inlet sync <id> --json`, requiring success; no secret or token in what it prints.
    async fn sync(&self, id: &str) -> Value {
        let run = crate::sync(&self.inlet, id).await;
        assert_eq!(run["status"], "success", "{run:#}");
        self.assert_no_secrets(&run.to_string());
        run
    }

    /// A run that must fail, as `inlet sync --json` prints it.
    async fn failed_sync(&self, id: &str) -> Value {
        let run = crate::sync(&self.inlet, id).await;
        assert_eq!(run["status"], "failed", "{run:#}");
        self.assert_no_secrets(&run.to_string());
        run
    }

    async fn records(&self, id: &str) -> Value {
        let records = self.inlet.json(&["records", id]).await;
        self.assert_no_secrets(&records.to_string());
        records
    }

    async fn events(&self, id: &str) -> Vec<Value> {
        self.records(id).await["events"].as_array().unwrap().clone()
    }

    /// The integration's row of `inlet schedule list --json`.
    async fn schedule_row(&self, id: &str) -> Value {
        let rows = self.inlet.json(&["schedule", "list", "--json"]).await;
        rows.as_array().unwrap().iter().find(|row| row["id"].as_i64() == id.parse().ok()).unwrap().clone()
    }

    /// The group's entry in `inlet groups list --json`.
    async fn group_entry(&self, id: &str) -> Value {
        let groups = self.inlet.json(&["groups", "list", "--json"]).await;
        groups.as_array().unwrap().iter().find(|group| group["id"].as_i64() == id.parse().ok()).unwrap().clone()
    }

    fn assert_no_secrets(&self, printed: &str) {
        let tokens = self.fake.update(|data| data.issued_tokens());
        for secret in [SECRET_ID, SECRET_KEY].iter().copied().chain(tokens.iter().map(String::as_str)) {
            assert!(!printed.contains(secret), "inlet printed a secret or token: {printed}");
        }
    }

    /// How many requests for `path_end` (e.g. `/balances/`) reached the fake
    /// since the last call (the others are forgotten too).
    fn requests_ending(&self, path_end: &str) -> usize {
        self.fake.take_requests().iter().filter(|r| r.path.ends_with(path_end)).count()
    }
}

/// `inlet groups add gocardless --secret-id --secret-key --json`: the new
/// group's id. Nothing it prints holds the secrets.
async fn add_group(inlet: &Inlet, name: &str, secret_id: &str, secret_key: &str) -> String {
    let args =
        ["groups", "add", "gocardless", "--name", name, "--secret-id", secret_id, "--secret-key", secret_key, "--json"];
    let output = inlet.run(&args).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "groups add failed: {stdout}\n{stderr}");
    assert!(!stdout.contains(secret_key) && !stderr.contains(secret_key), "{stdout}\n{stderr}");
    serde_json::from_str::<Value>(&stdout).unwrap()["id"].to_string()
}

fn overrides(fake: &FakeGoCardless) -> String {
    format!("bankaccountdata.gocardless.com={}", fake.base_url())
}

/// The external ids of the events not deleted.
fn live_ids(events: &[Value]) -> std::collections::BTreeSet<String> {
    events.iter().filter(|e| e["deleted"] != true).map(|e| e["external_id"].as_str().unwrap().to_string()).collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A run's records (created, updated, deleted).
fn counts(run: &Value) -> (i64, i64, i64) {
    let records = &run["records"];
    let count = |name: &str| records[name].as_i64().unwrap_or_else(|| panic!("no {name} count in {run:#}"));
    (count("created"), count("updated"), count("deleted"))
}

#[tokio::test(flavor = "multi_thread")]
async fn gocardless_syncs_accounts_balances_and_transactions_and_counts_a_booked_pending_one_once() {
    let b = Bank::start().await;
    let (main, savings) = (b.accounts[0].clone(), b.accounts[1].clone());
    assert_eq!(b.fake.update(|data| data.token_requests()), (0, 0), "creating the group calls nobody");

    // Accounts: the first run exchanges the secret pair for a token, once,
    // and sends every request with it.
    let accounts = b.add(&b.group, "accounts").await;
    b.fake.take_requests();
    let first = b.sync(&accounts).await;
    assert_eq!(counts(&first), (2, 0, 0), "{first:#}");
    assert_eq!(b.fake.update(|data| data.token_requests()), (1, 0));
    let requests = b.fake.take_requests();
    let exchange = requests.iter().find(|r| r.path == TOKEN_NEW).expect("the secret pair was exchanged");
    let sent: Value = serde_json::from_slice(&exchange.body).unwrap();
    assert_eq!((sent["secret_id"].as_str(), sent["secret_key"].as_str()), (Some(SECRET_ID), Some(SECRET_KEY)));
    let issued = b.fake.update(|data| data.issued_tokens());
    for request in requests.iter().filter(|r| r.path != TOKEN_NEW) {
        let bearer = request.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).unwrap_or_default();
        assert!(issued.iter().any(|token| token == bearer), "{} without the token", request.path);
    }
    let asked: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert!(asked.contains(&"/api/v2/requisitions/"), "{asked:?}");
    assert_eq!(b.fake.update(|data| data.calls(&main, "details")), 1);
    let records = b.records(&accounts).await;
    let objects = records["objects"].as_array().unwrap();
    let account = objects.iter().find(|o| o["external_id"] == main.as_str()).unwrap();
    assert_eq!((account["kind"].as_str(), account["name"].as_str()), (Some("account"), Some("Main Account")));
    assert_eq!(account["data"]["institution_id"], INSTITUTION);
    assert_eq!(account["data"]["details"]["currency"], "EUR");
    assert!(account["data"].get("last_accessed").is_none(), "it changes on every read: {account}");
    assert_eq!(counts(&b.sync(&accounts).await), (0, 0, 0), "nothing changed");

    // The access token expired: the host renews it with the refresh token,
    // without exchanging the secret pair again, and the run goes on.
    b.fake.update(|data| data.expire_access_tokens());
    assert_eq!(counts(&b.sync(&accounts).await), (0, 0, 0));
    assert_eq!(b.fake.update(|data| data.token_requests()), (1, 1));

    // Balances: one event per account, balance type and day, in cents.
    let balances = b.add(&b.group, "balances").await;
    assert_eq!(counts(&b.sync(&balances).await), (4, 0, 0));
    let events = b.events(&balances).await;
    let today = chrono::Utc::now().date_naive().to_string();
    let available = format!("{main}:interimAvailable:{today}");
    let event = events.iter().find(|e| e["external_id"] == available.as_str()).unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!((event["kind"].as_str(), event["actor"].as_str()), (Some("balance"), Some(main.as_str())));
    let amount: f64 = event["data"]["balanceAmount"]["amount"].as_str().unwrap().parse().unwrap();
    assert_eq!((event["value"].as_f64(), event["unit"].as_str()), (Some((amount * 100.0).round()), Some("EUR")));

    // Transactions: 90 days of booked ones and the pending ones, each an
    // event by its account, in cents (negative for a debit).
    let transactions = b.add(&b.group, "transactions").await;
    b.fake.update(|data| data.add_pending(&savings, "Hotel Alpina", "-240.00", 20));
    let (booked, pending) =
        b.fake.update(|data| (data.booked(&main).len() + data.booked(&savings).len(), data.pending(&main)));
    let pending_total = pending.len() + b.fake.update(|data| data.pending(&savings).len());
    let first = b.sync(&transactions).await;
    assert_eq!(counts(&first), ((booked + pending_total) as i64, 0, 0), "{first:#}");
    let events = b.events(&transactions).await;
    let salary = events.iter().find(|e| e["value"].as_f64() == Some(265_000.0)).expect("a salary");
    assert_eq!((salary["kind"].as_str(), salary["actor"].as_str()), (Some("transaction"), Some(main.as_str())));
    assert_eq!(salary["data"]["status"], "booked");
    let transaction_id = salary["data"]["transactionId"].as_str().unwrap();
    assert_eq!(salary["external_id"].as_str(), Some(format!("{main}:{transaction_id}").as_str()));
    let internal_only =
        events.iter().find(|e| e["data"].get("transactionId").is_none() && e["data"]["status"] == "booked");
    let internal_only = internal_only.expect("the booked transaction with only an internal id");
    let internal = internal_only["data"]["internalTransactionId"].as_str().unwrap();
    assert_eq!(internal_only["external_id"].as_str(), Some(format!("{main}:{internal}").as_str()));
    let pending_events: Vec<&Value> = events.iter().filter(|e| e["data"]["status"] == "pending").collect();
    assert_eq!(pending_events.len(), pending_total);
    assert!(pending_events.iter().all(|e| e["external_id"].as_str().unwrap().starts_with("pending:")));
    assert_eq!(counts(&b.sync(&transactions).await), (0, 0, 0), "reading the last week again changes nothing");

    // The first pending payment books under an id of its own: the next run
    // creates the booked transaction and deletes the pending one, so the
    // payment is there once.
    let amount = pending[0]["transactionAmount"]["amount"].as_str().unwrap().to_string();
    let cents = (amount.parse::<f64>().unwrap() * 100.0).round();
    let booked_id = b.fake.update(|data| data.book_pending(&main));
    let after = b.sync(&transactions).await;
    assert_eq!(counts(&after), (1, 0, 1), "{after:#}");
    let events = b.events(&transactions).await;
    let payment: Vec<&Value> = events.iter().filter(|e| e["value"].as_f64() == Some(cents)).collect();
    assert_eq!(payment.len(), 1, "{payment:#?}");
    assert_eq!(payment[0]["external_id"].as_str(), Some(format!("{main}:{booked_id}").as_str()));
    assert_eq!(payment[0]["data"]["status"], "booked");
    assert_eq!(b.fake.update(|data| data.calls(&main, "transactions")), 3);

    // The hotel's pre-authorisation books 20 days back, dated when it was
    // made, before the week read again: the run reads back to the pending
    // ones' earliest day, so the payment is booked, not lost.
    let hotel = b.fake.update(|data| data.book_pending_backdated(&savings, "Hotel Alpina"));
    let booked_late = b.sync(&transactions).await;
    assert_eq!(counts(&booked_late), (1, 0, 1), "{booked_late:#}");
    let events = b.events(&transactions).await;
    let payment: Vec<&Value> = events.iter().filter(|e| e["value"].as_f64() == Some(-24_000.0)).collect();
    assert_eq!(payment.len(), 1, "{payment:#?}");
    assert_eq!(payment[0]["external_id"].as_str(), Some(format!("{savings}:{hotel}").as_str()));
}

/// Two accounts of one connection with one IBAN (currency pockets) are
/// two accounts: neither's records, nor its pending ones, are the other's.
#[tokio::test(flavor = "multi_thread")]
async fn gocardless_accounts_that_share_an_iban_stay_apart() {
    let b = Bank::start().await;
    b.fake.update(|data| data.share_iban());
    let transactions = b.add(&b.group, "transactions").await;
    let pending = b.fake.update(|data| data.pending(&b.accounts[0]).len() + data.pending(&b.accounts[1]).len());
    let first = b.sync(&transactions).await;
    assert_eq!(counts(&first).2, 0, "no account's pending ones deleted by the other's read: {first:#}");
    let events = b.events(&transactions).await;
    let actors: std::collections::BTreeSet<&str> = events.iter().filter_map(|e| e["actor"].as_str()).collect();
    assert_eq!(actors, b.accounts.iter().map(String::as_str).collect(), "each account's own");
    assert_eq!(events.iter().filter(|e| e["data"]["status"] == "pending").count(), pending);
}

#[tokio::test(flavor = "multi_thread")]
async fn gocardless_keeps_to_four_calls_a_day_per_account_across_restarts() {
    let b = Bank::start().await;
    let balances = b.add(&b.group, "balances").await;

    // Four runs, each its own `inlet` process: four calls per account.
    for _ in 0..DAILY_LIMIT {
        b.sync(&balances).await;
    }
    for account in &b.accounts {
        assert_eq!(b.fake.update(|data| data.calls(account, "balances")), DAILY_LIMIT);
    }

    // A fifth process on the same database: the host counted the four in
    // the database and refuses the fifth call itself, so nothing reaches
    // the bank; the run succeeds and holds the next one back until a call
    // is free again, a day after the first.
    b.requests_ending("/balances/");
    let fifth = b.sync(&balances).await;
    assert_eq!(counts(&fifth), (0, 0, 0), "{fifth:#}");
    assert_eq!(b.requests_ending("/balances/"), 0, "no fifth call reached the bank");
    for account in &b.accounts {
        assert_eq!(b.fake.update(|data| data.calls(account, "balances")), DAILY_LIMIT);
    }
    let row = b.schedule_row(&balances).await;
    let reason = row["next_due_reason"].as_str().unwrap_or_else(|| panic!("no reason: {row:#}"));
    assert!(reason.contains("allows 4 balances calls a day; the next is possible at"), "{row:#}");
    assert!(row["next_due_at"].as_i64().unwrap() > now_ms() + 23 * 3_600_000, "{row:#}");

    // The bank's own count can be spent by someone else (another app on the
    // same account): its 429 skips that account and the other is read; the
    // run keeps to the schedule, so as not to delay the account that works.
    let (main, savings) = (b.accounts[0].clone(), b.accounts[1].clone());
    b.fake.update(|data| data.spend_daily_limit(&main, "transactions"));
    let transactions = b.add(&b.group, "transactions").await;
    let partial = b.sync(&transactions).await;
    let savings_items = b.fake.update(|data| data.booked(&savings).len() + data.pending(&savings).len());
    assert_eq!(counts(&partial), (savings_items as i64, 0, 0), "{partial:#}");
    assert!(b.events(&transactions).await.iter().all(|e| e["actor"] == savings.as_str()));
    assert!(b.schedule_row(&transactions).await["next_due_reason"].is_null());

    // Once both accounts are refused, the run holds the next one back until
    // the bank's reset (midnight UTC for the fake): every minute, so the
    // schedule alone would run it before then.
    b.fake.update(|data| data.spend_daily_limit(&savings, "transactions"));
    b.inlet.run(&["integrations", "schedule", &transactions, "--every", "1m"]).await;
    let refused = b.sync(&transactions).await;
    assert_eq!(counts(&refused), (0, 0, 0), "{refused:#}");
    let row = b.schedule_row(&transactions).await;
    let reason = row["next_due_reason"].as_str().unwrap_or_else(|| panic!("no reason: {row:#}"));
    assert!(reason.contains(&format!("({INSTITUTION}) allows 4 transactions calls a day")), "{row:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gocardless_expired_agreements_and_refused_secrets_need_reconnecting() {
    let b = Bank::start().await;
    let accounts = b.add(&b.group, "accounts").await;
    assert_eq!(counts(&b.sync(&accounts).await), (2, 0, 0));
    // Manual, so that the server below does not run it when it resumes.
    let args = ["integrations", "add", "gocardless", "transactions", "--group", &b.group, "--manual", "--json"];
    let transactions = b.inlet.json(&args).await["id"].to_string();
    b.sync(&transactions).await;
    let before = live_ids(&b.events(&transactions).await);

    // The end-user agreement ran out after its 90 days: the requisition is
    // expired, the run fails unauthorized naming the bank, the group needs
    // reconnecting, and nothing is deleted.
    b.fake.update(|data| data.expire_requisition());
    let expired = b.failed_sync(&accounts).await;
    assert_eq!(expired["error_class"], "unauthorized", "{expired:#}");
    let message = expired["error_message"].as_str().unwrap();
    assert!(message.contains(&format!("end-user agreement for {INSTITUTION}) expired")), "{message}");
    assert!(message.contains("connect the bank again"), "{message}");
    let group = b.group_entry(&b.group).await;
    assert_eq!(group["status"], "needs-reconnect", "{group:#}");
    assert!(group["status_reason"].as_str().is_some_and(|reason| reason.contains("expired")), "{group:#}");
    let records = b.records(&accounts).await;
    assert!(records["objects"].as_array().unwrap().iter().all(|o| o["deleted"] == false), "{records:#}");

    // Connecting the bank again: an agreement and a requisition whose link
    // the account holder opens; the bank sends them back to the host's
    // callback, the group is ok again and its integration resumed.
    let (mut server, base) = b.inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;
    let banks = b.inlet.json(&["groups", "institutions", &b.group, "--country", "gb", "--json"]).await;
    assert_eq!(banks[0]["id"], INSTITUTION, "{banks:#}");
    let args = ["groups", "connect-bank", &b.group, "--institution", INSTITUTION, "--json"];
    let link = b.inlet.json(&args).await;
    assert!(link["link"].as_str().unwrap().starts_with("https://ob.gocardless.com/"), "{link:#}");
    let requisition = link["requisition_id"].as_str().unwrap().to_string();
    // A reference this host did not make is refused before GoCardless is
    // asked anything (anyone can open the callback).
    b.requests_ending("/requisitions/");
    let forged =
        reqwest::get(format!("{base}/connect/bank/{}/callback?ref=inlet-{}-x-y", b.group, b.group)).await.unwrap();
    assert_eq!(forged.status(), 400);
    assert!(forged.text().await.unwrap().contains("not a connection started for this group here"));
    assert_eq!(b.requests_ending("/requisitions/"), 0, "GoCardless was not asked");
    let back = b.fake.update(|data| data.consent(&requisition)).expect("the requisition");
    let (_, path) = back.split_once("/connect/").expect("the host's callback");
    let page = reqwest::get(format!("{base}/connect/{path}")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("with 2 account(s)"));
    let group = b.group_entry(&b.group).await;
    assert_eq!((&group["status"], &group["status_reason"]), (&Value::from("ok"), &Value::Null), "{group:#}");
    // Resumed: the server's scheduler may already be running it, so it is
    // looked at, not synced here.
    let listed = b.inlet.json(&["integrations", "list", "--json"]).await;
    let resumed = listed.as_array().unwrap().iter().find(|i| i["id"].as_i64() == accounts.parse().ok()).unwrap();
    assert_eq!(resumed["paused_reason"], Value::Null, "{resumed:#}");
    crate::support::terminate(&server);
    server.wait().await.unwrap();
    // The manual one resumed without a due time: only an operator runs it.
    assert_eq!(b.schedule_row(&transactions).await["next_due_at"], Value::Null);
    let runs = b.inlet.json(&["runs", &transactions, "--json"]).await;
    let triggers: Vec<&str> = runs.as_array().unwrap().iter().filter_map(|r| r["run"]["trigger"].as_str()).collect();
    assert!(!triggers.contains(&"schedule"), "a manual integration ran on schedule: {runs:#}");

    // GoCardless gave the same bank accounts new ids with the new
    // requisition: they stay the same records. A pending payment that
    // books now replaces its pending event read before the reconnect.
    let relinked = b.fake.update(|data| data.account_ids());
    assert!(relinked.iter().all(|id| !b.accounts.contains(id)), "new ids: {relinked:?}");
    let booked = b.fake.update(|data| data.book_pending(&relinked[0]));
    b.sync(&transactions).await;
    let after = live_ids(&b.events(&transactions).await);
    let gone: Vec<&String> = before.difference(&after).collect();
    let added: Vec<&String> = after.difference(&before).collect();
    assert_eq!(gone.len(), 1, "only the pending payment that booked went: {gone:?}");
    assert!(gone[0].starts_with("pending:"), "{gone:?}");
    assert_eq!(added, [&format!("{}:{booked}", b.accounts[0])], "the booked one, under the account's first id");
    b.sync(&accounts).await;
    let objects = b.records(&accounts).await["objects"].as_array().unwrap().clone();
    let kept: Vec<(&str, bool)> =
        objects.iter().map(|o| (o["external_id"].as_str().unwrap(), o["deleted"] == true)).collect();
    assert_eq!(kept.len(), 2, "{objects:#?}");
    assert!(kept.iter().all(|(id, deleted)| b.accounts.iter().any(|a| a == id) && !deleted), "{kept:?}");
    assert_eq!(objects[0]["data"]["id"].as_str().map(|id| relinked.iter().any(|r| r == id)), Some(true));

    // Secrets GoCardless refuses: the exchange fails, and so does the run.
    let wrong = add_group(&b.inlet, "wrong", SECRET_ID, "not-the-secret-key").await;
    let refused = b.add(&wrong, "balances").await;
    let (exchanges, _) = b.fake.update(|data| data.token_requests());
    let run = b.failed_sync(&refused).await;
    assert_eq!(run["error_class"], "unauthorized", "{run:#}");
    assert!(b.fake.update(|data| data.token_requests()).0 > exchanges, "the pair was offered and refused");
    assert_eq!(b.requests_ending("/balances/"), 0, "nothing is asked without a token");
    assert_eq!(b.group_entry(&wrong).await["status"], "needs-reconnect");
}

#[tokio::test(flavor = "multi_thread")]
async fn gocardless_cassettes_record_against_the_fake_and_pass_the_standard_checks() {
    let fake = FakeGoCardless::start(GoCardlessData::sample(now_ms())).await.unwrap();
    let overrides = overrides(&fake);
    // `plugin test` gives the plugin a token, not the pair: the exchange is the
    // host's, tested above, and a cassette replays without one.
    let token = fake.update(|data| data.grant_access_token());
    let credentials = [("INLET_ACCESS_TOKEN", token.as_str())];
    for instance_type in ["accounts", "balances", "transactions"] {
        // The recording is a child process: the fake keeps answering meanwhile.
        let report = tokio::task::block_in_place(|| {
            crate::record_cassette("gocardless", instance_type, Some("{}"), &overrides, &credentials)
        });
        assert!(report.contains("ok   incremental run"), "{instance_type}: {report}");
        assert!(report.contains(TYPED_ERRORS), "{instance_type}: {report}");
    }
}
