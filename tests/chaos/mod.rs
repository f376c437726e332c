//! The crash harness: `serve` and workers sync many Monzo integrations from
//! a fake Monzo whose data grows (more transactions, more accounts, each a
//! new integration and so a new backfill); one process at a time is
//! SIGKILLed at a random moment and started again, cycle after cycle.
//!
//! After every cycle, in one snapshot of the database: no transaction stored
//! twice or unknown upstream, and no cursor ahead of what is stored (the
//! transaction it names is a record or in a batch waiting to be processed).
//! At the end, once everything asked for has run: every upstream transaction
//! stored exactly once, no job lost or failed, no run left running, no two
//! runs of one integration overlapping, and no more pages read again than
//! runs were interrupted (a resumed run asks again for at most the page it
//! was reading).
//!
//! Beside it: the scheduling leader killed over and over ([`leader_failover`]),
//! the database cut off under a running `serve` ([`outage`]), and webhook
//! abuse while syncs run ([`flood`]).
//!
//! `cargo xtask test` runs them in a short form; `cargo xtask chaos` in full
//! (INLET_CHAOS_CYCLES, INLET_CHAOS_SEED, INLET_CHAOS_BACKENDS,
//! INLET_CHAOS_FAILOVER_SECONDS).

pub mod flood;
mod link;
pub mod outage;

use crate::support::{self, Inlet, eventually, terminate};
use inlet::demo::{FakeMonzo, MonzoDataset, PageReads, transaction};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const DAY_MS: i64 = 86_400_000;
/// Transactions of a new account: a backfill of 8 pages.
const NEW_ACCOUNT_TRANSACTIONS: i64 = 750;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Settings {
    pub cycles: u32,
    pub seed: u64,
    /// Accounts (one integration each) at the start; one more every few cycles.
    pub accounts: usize,
}

impl Settings {
    /// From `INLET_CHAOS_CYCLES` and `INLET_CHAOS_SEED`, else `cycles` and a
    /// seed from the clock (printed, so a failing run can be repeated).
    pub fn from_env(cycles: u32) -> Settings {
        let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let seed = number("INLET_CHAOS_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64
        });
        Settings { cycles: number("INLET_CHAOS_CYCLES").map_or(cycles, |c| c as u32), seed, accounts: 6 }
    }
}

/// Which backends to run: `INLET_CHAOS_BACKENDS` (`sqlite,postgres`), else both.
pub fn backends() -> Vec<Backend> {
    let chosen = std::env::var("INLET_CHAOS_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let chosen: Vec<Backend> = chosen
        .split(',')
        .map(|name| match name.trim() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => panic!("INLET_CHAOS_BACKENDS: {other:?} is neither sqlite nor postgres"),
        })
        .collect();
    chosen
}

/// What a run of the harness measured.
#[derive(Debug, Default)]
pub struct Figures {
    pub cycles: u32,
    pub kills: BTreeMap<&'static str, u32>,
    pub integrations: usize,
    pub transactions_checked: u64,
    pub snapshots_checked: u32,
    pub duplicates: u64,
    pub unknown: u64,
    pub losses: u64,
    pub cursors_ahead: u64,
    pub overlapping_runs: u64,
    pub runs: u64,
    pub interrupted_runs: u64,
    pub pages_read: u64,
    pub pages_read_again: u64,
    pub left_running: u64,
    pub jobs_left: u64,
    /// Files (database, WAL, logs) searched for the secrets used.
    pub places_searched: u64,
    pub secrets_in_clear: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kills: u32 = self.kills.values().sum();
        writeln!(f, "cycles {}, kills {kills} {:?}, {:.0?}", self.cycles, self.kills, self.elapsed)?;
        writeln!(
            f,
            "integrations {}, transactions checked {}, snapshots checked {}",
            self.integrations, self.transactions_checked, self.snapshots_checked
        )?;
        writeln!(
            f,
            "duplicates {}, unknown upstream {}, losses {}, cursors ahead of data {}",
            self.duplicates, self.unknown, self.losses, self.cursors_ahead
        )?;
        writeln!(
            f,
            "runs {}, interrupted {}, overlapping {}, left running {}, jobs left {}",
            self.runs, self.interrupted_runs, self.overlapping_runs, self.left_running, self.jobs_left
        )?;
        writeln!(f, "pages read {}, read again {}", self.pages_read, self.pages_read_again)?;
        write!(
            f,
            "places searched for secrets {}, secrets found in clear {}",
            self.places_searched, self.secrets_in_clear
        )
    }
}

impl Figures {
    /// Every property the harness checks, with what broke it.
    pub fn violations(&self) -> Vec<String> {
        let mut broken = Vec::new();
        let mut zero = |what: &str, n: u64| {
            if n > 0 {
                broken.push(format!("{what}: {n}"));
            }
        };
        zero("transactions stored twice", self.duplicates);
        zero("records unknown upstream", self.unknown);
        zero("transactions lost", self.losses);
        zero("cursors ahead of stored data", self.cursors_ahead);
        zero("overlapping runs", self.overlapping_runs);
        zero("runs left running", self.left_running);
        zero("jobs left (lost or failed)", self.jobs_left);
        zero("secrets found in clear", self.secrets_in_clear);
        if self.pages_read_again > self.interrupted_runs {
            broken.push(format!(
                "{} pages read again for {} interrupted runs: a rescued run started over",
                self.pages_read_again, self.interrupted_runs
            ));
        }
        broken
    }
}

/// The processes under test, each restarted after it is killed.
struct Fleet {
    inlet: Inlet,
    processes: Vec<(&'static str, tokio::process::Child)>,
    /// Processes started so far: each writes its own log.
    started: usize,
}

impl Fleet {
    async fn start(inlet: Inlet, roles: &[&'static str]) -> Fleet {
        std::fs::create_dir_all(inlet.dir().join("logs")).unwrap();
        let mut fleet = Fleet { inlet, processes: Vec::new(), started: 0 };
        for role in roles {
            let child = fleet.spawn(role).await;
            fleet.processes.push((role, child));
        }
        fleet
    }

    async fn spawn(&mut self, role: &str) -> tokio::process::Child {
        self.started += 1;
        let log = self.inlet.dir().join("logs").join(format!("{}-{role}.log", self.started));
        self.inlet.spawn_logged(&[role, "--listen", "127.0.0.1:0"], &log).await
    }

    /// SIGKILL process `index` and start it again; returns its role.
    async fn kill_and_restart(&mut self, index: usize) -> &'static str {
        let role = self.processes[index].0;
        self.processes[index].1.kill().await.unwrap();
        let child = self.spawn(role).await;
        self.processes[index].1 = child;
        role
    }

    async fn stop(&mut self) {
        for (_, process) in &mut self.processes {
            terminate(process);
        }
        for (_, process) in &mut self.processes {
            process.wait().await.unwrap();
        }
    }
}

fn account(id: &str) -> Value {
    json!({"id": id, "closed": false, "created": "2024-01-01T00:00:00.000Z", "description": id,
           "type": "uk_retail", "currency": "GBP", "country_code": "GB"})
}

/// Add an account with `NEW_ACCOUNT_TRANSACTIONS` over the last 60 days.
fn open_account(fake: &FakeMonzo, index: usize, now: i64) -> String {
    let id = format!("acc_{index:03}");
    let step = 60 * DAY_MS / NEW_ACCOUNT_TRANSACTIONS;
    let history = (0..NEW_ACCOUNT_TRANSACTIONS).map(|i| transaction(&id, i, now - 60 * DAY_MS + i * step)).collect();
    fake.update(|data| data.accounts.push(account(&id)));
    fake.add_transactions(&id, history);
    id
}

async fn add_integration(inlet: &Inlet, group: &str, account: &str) -> i64 {
    let config = json!({ "account_ids": [account] }).to_string();
    let args = ["integrations", "add", "monzo", "transactions", "--group", group, "--config", &config, "--every", "1m"];
    let created = inlet.json(&[&args[..], &["--json"]].concat()).await;
    created["id"].as_i64().unwrap()
}

/// Run the harness on one backend.
pub async fn crash_cycles(backend: Backend, settings: &Settings) -> Figures {
    let started = Instant::now();
    let mut rng = SmallRng::seed_from_u64(settings.seed);
    let now = chrono::Utc::now().timestamp_millis();
    let fake = FakeMonzo::start(MonzoDataset::default()).await.unwrap();
    // Slow enough that a kill often lands in the middle of a backfill.
    fake.set_latency(Duration::from_millis(60));

    let config = "job_lease_seconds = 4\n[queues.fetch]\nmax_attempts = 1000\n";
    let mut inlet = Inlet::with_plugins(&[support::bundled_plugin("monzo")])
        .env("INLET_UPSTREAM_OVERRIDE", &format!("api.monzo.com={}", fake.base_url()))
        .config(config);
    let (roles, url): (&[&str], String) = match backend {
        Backend::Sqlite => (&["serve", "worker"], inlet.database_url()),
        Backend::Postgres => {
            let url = support::fresh_postgres_database().await;
            inlet = inlet.env("DATABASE_URL", &url);
            (&["serve", "worker", "worker"], url)
        }
    };
    let store = inlet.store_at(&url).await;
    let group = inlet
        .json(&["groups", "add", "monzo", "--name", "chaos", "--access-token", &fake.access_token(), "--json"])
        .await;
    let group = group["id"].to_string();
    // Integration id → its account.
    let mut accounts: BTreeMap<i64, String> = BTreeMap::new();
    for index in 0..settings.accounts {
        let account = open_account(&fake, index, now);
        accounts.insert(add_integration(&inlet, &group, &account).await, account);
    }

    let mut figures = Figures { cycles: settings.cycles, ..Figures::default() };
    let mut fleet = Fleet::start(inlet, roles).await;
    // The admin token the first start made, taken as an operator is told to.
    let token_file = fleet.inlet.data_dir().join("admin-token");
    let admin_token = std::fs::read_to_string(&token_file).unwrap().trim().to_string();
    std::fs::remove_file(&token_file).unwrap();
    let mut next_transaction = NEW_ACCOUNT_TRANSACTIONS;
    for cycle in 0..settings.cycles {
        // The upstream grows: new transactions, and now and then a new
        // account, whose integration starts with a backfill.
        for _ in 0..rng.random_range(1..4) {
            let account = accounts.values().nth(rng.random_range(0..accounts.len())).unwrap().clone();
            let count = rng.random_range(1..150);
            let at = chrono::Utc::now().timestamp_millis();
            let fresh = (0..count).map(|i| transaction(&account, next_transaction + i, at)).collect();
            next_transaction += count;
            fake.add_transactions(&account, fresh);
        }
        if cycle % 4 == 3 {
            let account = open_account(&fake, accounts.len(), now);
            accounts.insert(add_integration(&fleet.inlet, &group, &account).await, account);
        }
        fleet.inlet.json(&["sync", "--plugin", "monzo", "--force", "--json"]).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1000))).await;
        // `serve` (scheduler, API, its own workers) half the time, else a worker.
        let victim = match rng.random_bool(0.5) {
            true => 0,
            false => rng.random_range(1..fleet.processes.len()),
        };
        let role = fleet.kill_and_restart(victim).await;
        *figures.kills.entry(role).or_default() += 1;
        check_snapshot(&store, backend, &fake, &accounts, &mut figures).await;
    }

    // Everything asked for runs to the end: one more run of each after the
    // last transaction arrived, and nothing queued or running after it.
    let last_request = store.now();
    fleet.inlet.json(&["sync", "--plugin", "monzo", "--force", "--json"]).await;
    let integrations: Vec<i64> = accounts.keys().copied().collect();
    eventually(180, "every integration to run after the last request", || async {
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state IN ('available', 'running')")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let mut caught_up = true;
        for id in &integrations {
            let newest = store.sync_runs(*id, 1).await.unwrap();
            caught_up &= newest
                .first()
                .is_some_and(|r| r.status.as_str() == "success" && r.started_at.is_some_and(|s| s >= last_request));
        }
        (open == 0 && caught_up).then_some(())
    })
    .await;
    let quiet_at = store.now();
    fleet.stop().await;

    check_snapshot(&store, backend, &fake, &accounts, &mut figures).await;
    check_end(&store, &fake, &accounts, quiet_at, &mut figures).await;
    check_secrets(&fleet.inlet, backend, &url, &[fake.access_token(), admin_token], &mut figures);
    figures.integrations = accounts.len();
    figures.elapsed = started.elapsed();
    figures
}

/// Upstream transaction ids of `account`.
fn upstream_ids(fake: &FakeMonzo, account: &str) -> BTreeSet<String> {
    fake.update(|data| data.transactions[account].iter().map(|t| t["id"].as_str().unwrap().to_string()).collect())
}

/// In one snapshot: stored transactions per integration (with duplicates
/// counted), transactions waiting in batches, and cursors.
async fn check_snapshot(
    store: &inlet::store::Store,
    backend: Backend,
    fake: &FakeMonzo,
    accounts: &BTreeMap<i64, String>,
    figures: &mut Figures,
) {
    let mut tx = store.pool().begin().await.unwrap();
    if backend == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await.unwrap();
    }
    let events: Vec<(i64, String)> =
        sqlx::query_as("SELECT integration_id, external_id FROM events WHERE kind = 'transaction'")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    let batches: Vec<(i64, String)> =
        sqlx::query_as("SELECT integration_id, payload FROM raw_batches WHERE status = 'pending'")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    let cursors: Vec<(i64, String)> =
        sqlx::query_as("SELECT integration_id, value FROM integration_state WHERE key LIKE 'transactions.cursor.%'")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    figures.snapshots_checked += 1;

    let mut stored: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for (integration, id) in events {
        if !stored.entry(integration).or_default().insert(id) {
            figures.duplicates += 1;
        }
    }
    let mut waiting: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for (integration, payload) in batches {
        let payload: Value = serde_json::from_str(&payload).unwrap();
        let ids = payload["transactions"].as_array().into_iter().flatten().filter_map(|t| t["id"].as_str());
        waiting.entry(integration).or_default().extend(ids.map(str::to_string));
    }
    for (integration, ids) in &stored {
        let upstream = upstream_ids(fake, &accounts[integration]);
        figures.unknown += ids.difference(&upstream).count() as u64;
    }
    for (integration, cursor) in cursors {
        let known = |set: &BTreeMap<i64, BTreeSet<String>>| set.get(&integration).is_some_and(|s| s.contains(&cursor));
        if !known(&stored) && !known(&waiting) {
            eprintln!("integration {integration}: cursor {cursor} names a transaction neither stored nor waiting");
            figures.cursors_ahead += 1;
        }
    }
}

/// Once everything has run: exactly the upstream transactions, every run
/// finished and none overlapping another, no job left, few pages read again.
/// Nothing was queued or running at `quiet_at`; a job queued after it, for a
/// schedule's next due time (runs are queued up to a second ahead), may
/// still wait when the processes stop.
async fn check_end(
    store: &inlet::store::Store,
    fake: &FakeMonzo,
    accounts: &BTreeMap<i64, String>,
    quiet_at: i64,
    figures: &mut Figures,
) {
    for (integration, account) in accounts {
        let upstream = upstream_ids(fake, account);
        let stored: BTreeSet<String> =
            store.events(*integration).await.unwrap().into_iter().map(|e| e.external_id).collect();
        figures.transactions_checked += upstream.len() as u64;
        figures.losses += upstream.difference(&stored).count() as u64;

        let mut runs = store.sync_runs(*integration, 100_000).await.unwrap();
        runs.sort_by_key(|r| (r.started_at, r.id));
        figures.runs += runs.len() as u64;
        figures.interrupted_runs += runs.iter().filter(|r| r.status.as_str() != "success").count() as u64;
        figures.left_running +=
            runs.iter().filter(|r| matches!(r.status.as_str(), "running" | "pending")).count() as u64;
        // An integration fetches while it processes; neither two fetches
        // nor two processing runs of it may overlap.
        for lane in [false, true] {
            let started: Vec<_> =
                runs.iter().filter(|r| r.started_at.is_some() && r.queue.processes() == lane).collect();
            for pair in started.windows(2) {
                let (earlier, later) = (pair[0], pair[1]);
                if earlier.finished_at.is_none_or(|end| later.started_at.unwrap() < end) {
                    eprintln!("integration {integration}: runs {} and {} overlapped", earlier.id, later.id);
                    figures.overlapping_runs += 1;
                }
            }
        }
    }
    let reads: BTreeMap<String, PageReads> = fake.update(|data| data.reads.clone());
    for (account, read) in reads.iter().filter(|(_, r)| r.reread_pages > 0) {
        eprintln!("{account}: {} of {} pages read again", read.reread_pages, read.pages);
    }
    figures.pages_read = reads.values().map(|r| r.pages).sum();
    figures.pages_read_again = reads.values().map(|r| r.reread_pages).sum();
    let left: Vec<(i64, String, i64, i64)> =
        sqlx::query_as("SELECT id, state, run_at, created_at FROM jobs WHERE state <> 'available' OR created_at <= $1")
            .bind(quiet_at)
            .fetch_all(store.pool())
            .await
            .unwrap();
    for (id, state, run_at, created_at) in &left {
        eprintln!("job {id} left {state}: due at {run_at}, queued at {created_at}, all quiet at {quiet_at}");
    }
    figures.jobs_left = left.len() as u64;
}

/// No secret in clear where it could leak: the database (SQLite's files, its
/// WAL included; PostgreSQL's dump) and every process's log.
fn check_secrets(inlet: &Inlet, backend: Backend, url: &str, secrets: &[String], figures: &mut Figures) {
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    let mut read_dir = |dir: std::path::PathBuf| {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                places.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    };
    read_dir(inlet.dir().join("logs"));
    match backend {
        Backend::Sqlite => read_dir(inlet.data_dir()),
        Backend::Postgres => {
            let dump = std::process::Command::new("pg_dump").arg(url).output().expect("pg_dump runs");
            assert!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
            places.push(("pg_dump".into(), dump.stdout));
        }
    }
    for (place, bytes) in &places {
        figures.places_searched += 1;
        for secret in secrets {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                eprintln!("a secret is in clear in {place}");
                figures.secrets_in_clear += 1;
            }
        }
    }
}

/// What the failover case measured.
#[derive(Debug, Default)]
pub struct Failover {
    pub seconds: u64,
    pub integrations: usize,
    /// The scheduling leader SIGKILLed (and started again).
    pub failovers: u32,
    /// Scheduled runs (jobs) that fired.
    pub fires: u64,
    /// Two fires of one integration for one due time.
    pub double_fires: u64,
    /// Due times that passed (by more than the bound) without a fire.
    pub missed_fires: u64,
    /// Latest start after a due time, in ms.
    pub max_lateness_ms: i64,
}

impl std::fmt::Display for Failover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} s, {} integrations, failovers {}, fires {}, double fires {}, missed fires {}, max lateness {} ms",
            self.seconds,
            self.integrations,
            self.failovers,
            self.fires,
            self.double_fires,
            self.missed_fires,
            self.max_lateness_ms
        )
    }
}

/// How late a fire may start after its due time: the scheduler looks again
/// every third of its 15-second lease, and a process of the same machine
/// takes the lease of an ended leader at its next look.
pub const FIRE_BOUND_MS: i64 = 10_000;
const INTERVAL_MS: i64 = 60_000;

/// Three `serve` processes on PostgreSQL, integrations due every minute with
/// due times spread so that one is due every few seconds; the process that
/// leads the scheduling is SIGKILLed every few seconds and started again.
/// Every due time must fire exactly once, within [`FIRE_BOUND_MS`].
pub async fn leader_failover(seconds: u64, seed: u64) -> Failover {
    use inlet::store::groups::Credentials;
    let mut rng = SmallRng::seed_from_u64(seed);
    let url = support::fresh_postgres_database().await;
    let inlet = Inlet::with_plugins(&[support::test_plugin("misbehave")]).env("DATABASE_URL", &url);
    let store = inlet.store_at(&url).await;
    let group = store.insert_group("misbehave", "failover", &Credentials::default()).await.unwrap();
    let every_minute = inlet::schedule::Schedule::Interval { seconds: 60 };
    let first_due = store.now() + 5_000;
    let spacing_ms = 3_000;
    let due_at = |n: i64| first_due + n * spacing_ms;
    let ids = scheduled_integrations(&store, group, &every_minute, INTERVAL_MS / spacing_ms, due_at).await;
    let due: BTreeMap<i64, i64> = ids.into_iter().zip(0..).map(|(id, n)| (id, due_at(n))).collect();

    let mut fleet = Fleet::start(inlet, &["serve", "serve", "serve"]).await;
    let mut figures = Failover { seconds, integrations: due.len(), ..Failover::default() };
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(rng.random_range(3_000..9_000))).await;
        let Some(leader) = store.lease_holder("scheduler").await.unwrap() else { continue };
        let pid: Option<u32> = leader.split('/').nth(2).and_then(|p| p.parse().ok());
        let Some(index) = fleet.processes.iter().position(|(_, p)| p.id() == pid) else { continue };
        fleet.kill_and_restart(index).await;
        figures.failovers += 1;
    }
    let stopped_at = store.now();
    fleet.stop().await;

    for (integration, first_due_at) in due {
        // A fire is a fetch job: it fired when its first attempt started; the
        // next due time counts from its last attempt's start (the one that
        // ran to the end), as an interval counts from the last start.
        let fired: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT job_id, MIN(started_at), MAX(started_at) FROM sync_runs
             WHERE integration_id = $1 AND queue = 'fetch' AND job_id IS NOT NULL AND started_at IS NOT NULL
             GROUP BY job_id ORDER BY 2",
        )
        .bind(integration)
        .fetch_all(store.pool())
        .await
        .unwrap();
        figures.fires += fired.len() as u64;
        let mut next_due = first_due_at;
        for (_, fired_at, last_started) in &fired {
            if *fired_at < next_due - 1_000 {
                eprintln!("integration {integration}: fired at {fired_at}, due at {next_due}");
                figures.double_fires += 1;
                continue;
            }
            figures.max_lateness_ms = figures.max_lateness_ms.max(fired_at - next_due);
            if fired_at - next_due > FIRE_BOUND_MS {
                eprintln!("integration {integration}: fired {} ms after its due time", fired_at - next_due);
                figures.missed_fires += 1;
            }
            next_due = last_started + INTERVAL_MS;
        }
        if next_due + FIRE_BOUND_MS < stopped_at {
            eprintln!("integration {integration}: due at {next_due}, never fired before {stopped_at}");
            figures.missed_fires += 1;
        }
    }
    figures
}

/// The admin token and webhook secret of the cases that use the API.
pub const TOKEN: &str = "chaos-test-admin-token";
pub const WEBHOOK_SECRET: &str = "s3cret-shared-with-the-app";

/// A `serve` with an Apple Health group taking deliveries (its `workouts`
/// integration) and a misbehave group with a manual integration of another
/// instance type: what the outage and flood cases need.
pub struct WebhookSetup {
    pub inlet: Inlet,
    pub serve: tokio::process::Child,
    pub base: String,
    pub client: reqwest::Client,
    /// Where Apple Health deliveries go.
    pub webhook_url: String,
    pub workouts: i64,
    /// The misbehave integration.
    pub other: i64,
}

impl WebhookSetup {
    /// `inlet` (with the plugins apple-health and misbehave, its settings and
    /// `TOKEN`) serving, and the two integrations made through the API.
    pub async fn start(inlet: Inlet, other_type: &str, other_config: Value) -> WebhookSetup {
        let log = inlet.dir().join("serve.log");
        let (serve, base) = inlet.spawn_logged_listening(&["serve", "--listen", "127.0.0.1:0"], &log).await;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let mut setup = WebhookSetup { inlet, serve, base, client, webhook_url: String::new(), workouts: 0, other: 0 };
        let group = setup
            .post("/api/groups", json!({"plugin": "apple-health", "name": "phone", "webhook_secret": WEBHOOK_SECRET}))
            .await;
        setup.webhook_url = format!("{}/webhooks/apple-health/{}", setup.base, group["id"]);
        let workouts = json!({"plugin": "apple-health", "instance_type": "workouts", "group_id": group["id"]});
        setup.workouts = setup.post("/api/integrations", workouts).await["id"].as_i64().unwrap();
        let group = setup.post("/api/groups", json!({"plugin": "misbehave", "name": "other"})).await;
        let other = json!({"plugin": "misbehave", "instance_type": other_type, "group_id": group["id"],
                           "config": other_config, "schedule": {"kind": "manual"}});
        setup.other = setup.post("/api/integrations", other).await["id"].as_i64().unwrap();
        setup
    }

    /// POST to the admin API, requiring success; the answer's JSON.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let response = self.client.post(format!("{}{path}", self.base)).bearer_auth(TOKEN).json(&body).send().await;
        let response = response.unwrap();
        assert!(response.status().is_success(), "POST {path}: {}", response.status());
        response.json().await.unwrap()
    }

    /// Post a delivery to the Apple Health group; its status (0: no answer).
    pub async fn deliver(&self, client: &reqwest::Client, secret: &str, body: Vec<u8>) -> u16 {
        let request = client
            .post(&self.webhook_url)
            .header("content-type", "application/json")
            .header("x-inlet-secret", secret)
            .body(body)
            .timeout(Duration::from_secs(30));
        request.send().await.map_or(0, |r| r.status().as_u16())
    }
}

/// The Health Auto Export delivery of the webhook tests.
pub fn health_delivery() -> Vec<u8> {
    std::fs::read(support::root().join("tests/fixtures/health-auto-export.json")).unwrap()
}

/// `count` misbehave `ok` integrations of `group` on `schedule`, the n-th
/// first due at `first_due(n)`. Returns their ids.
pub async fn scheduled_integrations(
    store: &inlet::store::Store,
    group: i64,
    schedule: &inlet::schedule::Schedule,
    count: i64,
    first_due: impl Fn(i64) -> i64,
) -> Vec<i64> {
    let mut ids = Vec::new();
    for n in 0..count {
        let name = format!("scheduled {n}");
        let new = inlet::store::integrations::NewIntegration {
            plugin_id: "misbehave",
            instance_type: "ok",
            group_id: group,
            name: &name,
            config: "{}",
            schedule: Some(schedule),
            first_due_at: Some(first_due(n)),
            paused_reason: None,
        };
        ids.push(store.insert_integration(&new).await.unwrap());
    }
    ids
}
