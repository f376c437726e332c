//! Load program for the job queue (run with `cargo bench --bench queue_load`).
//!
//! throughput: N jobs of a no-op plugin queued at once, drained by the fetch
//!   worker: claim, instantiate and call the plugin, record the run, complete
//!   the job. Prints jobs per second.
//! lateness: M integrations with due times spread over a window, run by the
//!   scheduler and worker; prints how late each first run started (p50/p99).
//!   With QUEUE_LOAD_STAGES=1, triggers on `jobs` log when each job was
//!   queued and claimed (costing the database a little), and it prints the
//!   stages too: queued (before its due time, negative), claimed, started.
//!
//! Each runs on SQLite (a temp file) and on PostgreSQL (a fresh database on
//! 127.0.0.1:5432). Usage: queue_load [sqlite|postgres|both] [jobs] [integrations]
//!
//! scale: for each count, that many integrations (inserted in bulk, due over
//!   the next day) on a fresh database, then `inlet serve` on it: how long
//!   until it is ready, its resident memory after 20 s of scheduling, and
//!   how fast the admin API's listings answer (p50 / p99 of 200 requests).
//!   Usage: queue_load scale [sqlite|postgres|both] [counts...]
//!
//! peer: on PostgreSQL, the same number of no-op jobs through graphile-worker
//!   (`graphile-worker/run.mjs`, from the npm registry, its documented batched
//!   settings) on the same server in the same run; prints its jobs per second
//!   and inlet's as a multiple of it. Needs Node.js and npm.

use inlet::domain::queue::Queue;
use inlet::domain::trigger::Trigger;
use inlet::schedule::Schedule;
use inlet::settings::{Settings, SettingsArgs};
use inlet::store::groups::Credentials;
use inlet::store::integrations::NewIntegration;
use inlet::store::jobs::{JobArgs, NewJob};
use inlet::store::{Backend, Store};
use inlet::{Host, HostOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Errors in the host's background tasks would otherwise go unseen.
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    // `cargo bench` passes --bench; ignore flags.
    let mut args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let scaling = args.first().is_some_and(|a| a == "scale");
    if scaling {
        args.remove(0);
    }
    let backends = match args.first().map(String::as_str) {
        Some("sqlite") => vec!["sqlite"],
        Some("postgres") => vec!["postgres"],
        _ => vec!["sqlite", "postgres"],
    };
    let plugin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugins/misbehave.wasm");
    anyhow::ensure!(plugin.exists(), "build the test plugins first: cargo xtask build-plugins");
    if scaling {
        let counts: Vec<usize> = args.iter().skip(1).filter_map(|n| n.parse().ok()).collect();
        let counts = if counts.is_empty() { vec![10_000, 100_000, 1_000_000] } else { counts };
        for backend in backends {
            for &count in &counts {
                scale(backend, &plugin, count).await?;
            }
        }
        return Ok(());
    }
    let jobs: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let integrations: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    for backend in backends {
        let (rate, cpu) = throughput(backend, &plugin, jobs).await?;
        println!(
            "{backend:<8} throughput: {jobs} jobs in {:.2}s = {:.0} jobs/s ({:.0} µs of this process's CPU per job)",
            jobs as f64 / rate,
            rate,
            cpu.as_secs_f64() * 1e6 / jobs as f64
        );
        if backend == "postgres" {
            let peer = graphile_worker(jobs).await?;
            println!(
                "{backend:<8} graphile-worker (batched): {jobs} jobs = {peer:.0} jobs/s; inlet is {:.2}x",
                rate / peer
            );
        }
        let (p50, p99, max) = lateness(backend, &plugin, integrations).await?;
        println!("{backend:<8} lateness of {integrations} scheduled runs: p50 {p50} ms, p99 {p99} ms, max {max} ms");
        if backend == "postgres" {
            reset_postgres(false).await?;
        }
    }
    Ok(())
}

/// A host on a fresh database of `backend` with the misbehave plugin, and one
/// group; returns the host and the temp dir that holds its files.
async fn host(backend: &str, plugin: &PathBuf) -> anyhow::Result<(Host, tempfile::TempDir, i64)> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("plugins"))?;
    std::fs::copy(plugin, dir.path().join("plugins/misbehave.wasm"))?;
    let database_url = match backend {
        "sqlite" => None,
        _ => Some(reset_postgres(true).await?),
    };
    let args = SettingsArgs {
        data_dir: Some(dir.path().join("data")),
        database_url,
        plugins_dir: Some(dir.path().join("plugins")),
        config_file: Some(dir.path().join("none.toml")),
        upstream_override: None,
        public_url: None,
    };
    std::fs::write(dir.path().join("none.toml"), "[queues.fetch]\nconcurrency = 2048\n")?;
    let host = Host::start(&Settings::resolve(&args)?, HostOptions::default()).await?;
    let group = host.store().insert_group("misbehave", "bench", &Credentials::default()).await?;
    Ok((host, dir, group))
}

async fn add_integrations(
    store: &Store,
    group: i64,
    count: usize,
    due: impl Fn(usize) -> Option<i64>,
) -> anyhow::Result<Vec<i64>> {
    let schedule = Schedule::Interval { seconds: 86_400 };
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let name = format!("bench {n}");
        ids.push(
            store
                .insert_integration(&NewIntegration {
                    plugin_id: "misbehave",
                    instance_type: "noop",
                    group_id: group,
                    name: &name,
                    config: "{}",
                    schedule: Some(&schedule),
                    first_due_at: due(n),
                    paused_reason: None,
                })
                .await?,
        );
    }
    Ok(ids)
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

async fn throughput(backend: &str, plugin: &PathBuf, jobs: usize) -> anyhow::Result<(f64, Duration)> {
    let (host, _dir, group) = host(backend, plugin).await?;
    let store = host.store().clone();
    let ids = add_integrations(&store, group, jobs, |_| None).await?;
    for id in &ids {
        let args = JobArgs::new(Trigger::Manual);
        store
            .enqueue_job(&NewJob {
                queue: Queue::Fetch,
                integration_id: *id,
                args,
                max_attempts: 4,
                run_at: store.now(),
            })
            .await?;
    }
    let (started_at, cpu_before) = (store.now(), cpu_time());
    let background = host.start_background(false);
    host.wake(Queue::Fetch);
    wait_until_drained(&store).await?;
    let cpu = cpu_time() - cpu_before;
    // Timed to the last run's end as recorded, so the drain poll's interval
    // does not count.
    let finished_at: i64 = sqlx::query_scalar("SELECT MAX(finished_at) FROM sync_runs").fetch_one(store.pool()).await?;
    let elapsed = (finished_at - started_at) as f64 / 1000.0;
    background.stop().await;
    Ok((jobs as f64 / elapsed, cpu))
}

async fn lateness(backend: &str, plugin: &PathBuf, integrations: usize) -> anyhow::Result<(i64, i64, i64)> {
    let (host, _dir, group) = host(backend, plugin).await?;
    let store = host.store().clone();
    // Due times spread evenly over a window that starts once all are created.
    let window_ms = 20_000i64;
    let base = store.now() + 60_000 + integrations as i64; // pushed back below
    let ids =
        add_integrations(&store, group, integrations, |n| Some(base + n as i64 * window_ms / integrations as i64))
            .await?;
    // Shift the window to start 2 s from now, now that creating them is done.
    let shift = store.now() + 2_000 - base;
    sqlx::query("UPDATE integrations SET next_due_at = next_due_at + $1").bind(shift).execute(store.pool()).await?;
    settle(&store).await?;
    let stages = std::env::var_os("QUEUE_LOAD_STAGES").is_some();
    if stages {
        log_job_stages(&store).await?;
    }
    let background = host.start_background(true);
    host.wake(Queue::Fetch);
    tokio::time::sleep(Duration::from_millis((2_000 + window_ms) as u64)).await;
    // The last due times fall at the end of the window: wait for their runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM integrations i WHERE NOT EXISTS (SELECT 1 FROM sync_runs r WHERE r.integration_id = i.id)",
        )
        .fetch_one(store.pool())
        .await?;
        anyhow::ensure!(Instant::now() < deadline, "{waiting} integrations never ran");
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_until_drained(&store).await?;
    background.stop().await;
    let due_at: BTreeMap<i64, i64> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (*id, base + shift + n as i64 * window_ms / integrations as i64))
        .collect();
    let mut late: Vec<i64> = Vec::with_capacity(ids.len());
    for (id, due) in &due_at {
        let run = store.sync_runs(*id, 10).await?.into_iter().last().expect("every integration ran");
        late.push(run.started_at.unwrap_or_default() - due);
    }
    if stages {
        print_job_stages(&store, &due_at).await?;
    }
    late.sort_unstable();
    Ok((quantile(&late, 0.5), quantile(&late, 0.99), quantile(&late, 1.0)))
}

/// Leave the database as a running one would be, not just after creating
/// thousands of rows and moving each once: otherwise vacuuming their old
/// versions and writing the checkpoint happen during the measured window.
async fn settle(store: &Store) -> anyhow::Result<()> {
    let statements: &[&str] = match store.backend() {
        Backend::Postgres => &["VACUUM ANALYZE", "CHECKPOINT"],
        Backend::Sqlite => &["PRAGMA wal_checkpoint(TRUNCATE)"],
    };
    execute_all(store, statements).await
}

async fn execute_all(store: &Store, statements: &[&str]) -> anyhow::Result<()> {
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(*statement)).execute(store.pool()).await?;
    }
    Ok(())
}

/// The `q` quantile of `sorted` (1.0: its maximum).
fn quantile(sorted: &[i64], q: f64) -> i64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// Log when each job is queued and claimed, by triggers, to a table
/// `job_stages`.
async fn log_job_stages(store: &Store) -> anyhow::Result<()> {
    let statements: &[&str] = match store.backend() {
        Backend::Postgres => &[
            "CREATE UNLOGGED TABLE job_stages (integration_id BIGINT, stage TEXT, at BIGINT)",
            "CREATE FUNCTION log_job_stage() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                 INSERT INTO job_stages VALUES
                     (NEW.integration_id, TG_ARGV[0], (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
                 RETURN NEW;
             END $$",
            "CREATE TRIGGER job_queued AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION log_job_stage('queued')",
            "CREATE TRIGGER job_claimed AFTER UPDATE ON jobs FOR EACH ROW
                 WHEN (NEW.state = 'running' AND OLD.state <> 'running') EXECUTE FUNCTION log_job_stage('claimed')",
        ],
        Backend::Sqlite => &[
            "CREATE TABLE job_stages (integration_id BIGINT, stage TEXT, at BIGINT)",
            "CREATE TRIGGER job_queued AFTER INSERT ON jobs BEGIN
                 INSERT INTO job_stages VALUES
                     (NEW.integration_id, 'queued', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
             END",
            "CREATE TRIGGER job_claimed AFTER UPDATE ON jobs WHEN NEW.state = 'running' AND OLD.state <> 'running' BEGIN
                 INSERT INTO job_stages VALUES
                     (NEW.integration_id, 'claimed', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
             END",
        ],
    };
    execute_all(store, statements).await
}

/// Print, for the first run of each integration, when its job was queued
/// and claimed (from its due time) and its run started (from the claim).
async fn print_job_stages(store: &Store, due_at: &BTreeMap<i64, i64>) -> anyhow::Result<()> {
    let logged: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT integration_id, stage, MIN(at) FROM job_stages GROUP BY integration_id, stage")
            .fetch_all(store.pool())
            .await?;
    let logged: BTreeMap<(i64, String), i64> = logged.into_iter().map(|(id, stage, at)| ((id, stage), at)).collect();
    let started: Vec<(i64, i64)> =
        sqlx::query_as("SELECT integration_id, MIN(started_at) FROM sync_runs GROUP BY integration_id")
            .fetch_all(store.pool())
            .await?;
    let started: BTreeMap<i64, i64> = started.into_iter().collect();
    let (mut queued, mut claimed, mut run) = (Vec::new(), Vec::new(), Vec::new());
    for (id, due) in due_at {
        let claimed_at = logged[&(*id, "claimed".to_string())];
        queued.push(logged[&(*id, "queued".to_string())] - due);
        claimed.push(claimed_at - due);
        run.push(started[id] - claimed_at);
    }
    for (stage, mut values) in
        [("queued, from due", queued), ("claimed, from due", claimed), ("started, from claim", run)]
    {
        values.sort_unstable();
        let [p50, p90, p99, max] = [0.5, 0.9, 0.99, 1.0].map(|q| quantile(&values, q));
        println!("  {stage}: p50 {p50} ms, p90 {p90} ms, p99 {p99} ms, max {max} ms");
    }
    Ok(())
}

/// `count` integrations due over the next day, inserted in one statement; then
/// `inlet serve` on that database: seconds until `/readyz` answers 200, and its
/// resident memory (now and at its peak) after 20 s of scheduling them.
async fn scale(backend: &str, plugin: &PathBuf, count: usize) -> anyhow::Result<()> {
    let (host, dir, group) = host(backend, plugin).await?;
    let store = host.store().clone();
    drop(host);
    let inserting = Instant::now();
    let schedule = serde_json::to_string(&Schedule::Interval { seconds: 86_400 })?;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < $4)
         INSERT INTO integrations (plugin_id, instance_type, group_id, name, config, schedule, next_due_at, created_at, updated_at)
         SELECT 'misbehave', 'noop', $1, 'bench ' || i, '{}', $2, $3 + i * 86400000 / $4, $3, $3 FROM n",
    )
    .bind(group)
    .bind(&schedule)
    .bind(store.now())
    .bind(count as i64)
    .execute(store.pool())
    .await?;
    let inserted = inserting.elapsed();

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_inlet"));
    serve
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--plugins-dir")
        .arg(dir.path().join("plugins"))
        .arg("--config-file")
        .arg(dir.path().join("none.toml"))
        .env("INLET_LOG", "warn")
        .env("INLET_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    if backend == "postgres" {
        serve.arg("--database-url").arg(postgres_database().1);
    }
    let starting = Instant::now();
    let mut serve = serve.spawn()?;
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let client = reqwest::Client::new();
    while !client.get(&ready).send().await.is_ok_and(|r| r.status().is_success()) {
        anyhow::ensure!(starting.elapsed() < Duration::from_secs(120), "serve was not ready within 120 s");
        anyhow::ensure!(serve.try_wait()?.is_none(), "serve exited while starting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = starting.elapsed();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", serve.id().unwrap_or_default()))?;
    let kib = |field: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_default();
        line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_default()
    };
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs").fetch_one(store.pool()).await?;
    println!(
        "{backend:<8} scale: {count} integrations (inserted in {:.1}s): serve ready in {:.2}s; after 20 s of \
         scheduling ({runs} runs) RSS {} MB, peak {} MB",
        inserted.as_secs_f64(),
        started.as_secs_f64(),
        kib("VmRSS:") / 1024,
        kib("VmHWM:") / 1024
    );
    for (what, path) in LISTINGS {
        let (p50, p99) = list_latency(&client, &format!("http://127.0.0.1:{port}{path}")).await?;
        println!("{backend:<8} scale: {count} integrations: GET {path} ({what}) p50 {p50:.1} ms, p99 {p99:.1} ms");
    }
    serve.kill().await?;
    store.pool().close().await;
    if backend == "postgres" {
        reset_postgres(false).await?;
    }
    Ok(())
}

const ADMIN_TOKEN: &str = "bench-admin-token";

/// The admin API's listings, timed at each scale.
const LISTINGS: [(&str, &str); 8] = [
    ("the Updates page's first page", "/api/updates?limit=50"),
    ("the Tasks tab (the host's two tasks among every row)", "/api/updates?limit=50&filter=tasks"),
    ("the API's default page", "/api/updates"),
    ("a name search", "/api/updates?limit=50&name=bench%20999"),
    ("a status no row has, ruled out in the database", "/api/updates?limit=50&status=failed"),
    ("a status no row has, worked out for every row", "/api/updates?limit=50&status=retrying"),
    ("integrations", "/api/integrations?limit=50"),
    ("groups", "/api/groups"),
];

/// p50 and p99 in ms of `ROUNDS` requests of `url` one after another, after a few to warm up.
async fn list_latency(client: &reqwest::Client, url: &str) -> anyhow::Result<(f64, f64)> {
    const ROUNDS: usize = 200;
    let mut millis = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS + 5 {
        let asked = Instant::now();
        let response = client.get(url).bearer_auth(ADMIN_TOKEN).send().await?;
        anyhow::ensure!(response.status().is_success(), "GET {url}: {}", response.status());
        response.bytes().await?;
        if round >= 5 {
            millis.push(asked.elapsed().as_secs_f64() * 1e3);
        }
    }
    millis.sort_by(f64::total_cmp);
    Ok((millis[ROUNDS / 2], millis[ROUNDS * 99 / 100]))
}

/// Poll until no job waits or runs. Each probe reads the head of a partial
/// index and probes are far apart: counting the table every 20 ms took an
/// eighth of PostgreSQL's CPU from what is measured.
async fn wait_until_drained(store: &Store) -> anyhow::Result<()> {
    loop {
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'available' UNION ALL SELECT id FROM jobs WHERE state = 'running' LIMIT 1",
        )
        .fetch_optional(store.pool())
        .await?;
        if open.is_none() {
            let failed: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'failed'").fetch_one(store.pool()).await?;
            anyhow::ensure!(failed == 0, "{failed} jobs failed");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// graphile-worker's jobs per second on a fresh database of the same server:
/// its npm package installed from the lock file on first use.
async fn graphile_worker(jobs: usize) -> anyhow::Result<f64> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/graphile-worker");
    if !dir.join("node_modules/graphile-worker").exists() {
        let installed =
            std::process::Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status();
        anyhow::ensure!(
            installed.is_ok_and(|s| s.success()),
            "npm ci in {} failed (Node.js and npm needed)",
            dir.display()
        );
    }
    let url = reset_postgres(true).await?;
    let output = tokio::process::Command::new("node")
        .arg("run.mjs")
        .arg(&url)
        .arg(jobs.to_string())
        .current_dir(&dir)
        .output()
        .await?;
    reset_postgres(false).await?;
    anyhow::ensure!(output.status.success(), "graphile-worker: {}", String::from_utf8_lossy(&output.stderr));
    let line = String::from_utf8_lossy(&output.stdout);
    let figures: serde_json::Value = serde_json::from_str(line.lines().last().unwrap_or_default())?;
    figures["jobs_per_second"].as_f64().ok_or_else(|| anyhow::anyhow!("graphile-worker printed {line}"))
}

/// This run's PostgreSQL database's name and its URL.
fn postgres_database() -> (String, String) {
    let name = format!("inlet_bench_{}", std::process::id());
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    (name, url)
}

/// This run's PostgreSQL database, emptied: dropped if it exists, and
/// created again unless `create` is false (the end of the run).
async fn reset_postgres(create: bool) -> anyhow::Result<String> {
    use sqlx::Connection;
    let (name, url) = postgres_database();
    let mut admin = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await?;
    if create {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    }
    Ok(url)
}
