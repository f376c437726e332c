//! Load program: how fast `inlet serve` answers `/healthz` while every fetch
//! slot runs a plugin that spins for ever. Run with
//! `cargo bench --bench healthz_under_load [-- slots requests]`.
//!
//! It starts the real binary on a scratch SQLite database with the misbehave
//! test plugin, queues `slots` runs of its `loop` instance type (concurrency
//! `slots`, default 8: the fetch queue's default), waits until they all run,
//! then times `requests` sequential GETs of /healthz (10 ms apart) and prints
//! p50/p99/max, after the same measured with nothing running. `INLET_BIN`
//! runs another build of the binary (an older commit's, to compare).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let slots: usize = args.first().and_then(|n| n.parse().ok()).unwrap_or(8);
    let requests: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let plugin = root.join("target/test-plugins/misbehave.wasm");
    anyhow::ensure!(plugin.exists(), "build the test plugins first: cargo xtask build-plugins");
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("plugins"))?;
    std::fs::copy(&plugin, dir.path().join("plugins/misbehave.wasm"))?;
    std::fs::write(
        dir.path().join("inlet.toml"),
        format!("[queues.fetch]\nconcurrency = {slots}\ntimeout_seconds = 600\nmax_attempts = 1\n"),
    )?;
    let inlet = |args: &[&str]| -> anyhow::Result<String> {
        let output = command(dir.path()).args(args).output()?;
        anyhow::ensure!(output.status.success(), "inlet {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        Ok(String::from_utf8(output.stdout)?)
    };
    let group: serde_json::Value =
        serde_json::from_str(&inlet(&["groups", "add", "misbehave", "--name", "load", "--json"])?)?;
    let group = group["id"].to_string();
    let mut ids = Vec::new();
    for _ in 0..slots {
        let created = inlet(&["integrations", "add", "misbehave", "loop", "--group", &group, "--manual", "--json"])?;
        ids.push(serde_json::from_str::<serde_json::Value>(&created)?["id"].to_string());
    }

    let mut serve =
        Serving(command(dir.path()).args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).spawn()?);
    let url = listening_url(&mut serve.0)?;
    let client = reqwest::Client::new();
    let healthz = format!("{url}/healthz");
    let idle = sample(&client, &healthz, requests.min(200)).await?;
    report("idle", &idle);

    for id in &ids {
        inlet(&["sync", id, "--force"])?;
    }
    let database = dir.path().join(".inlet/inlet.db");
    wait_until_running(&database, slots).await?;
    let busy = sample(&client, &healthz, requests).await?;
    report(&format!("{slots} slots spinning"), &busy);
    Ok(())
}

/// The server under test, killed however the program ends: left running, its
/// spinning plugins would take the machine's cores from whatever runs next.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command(dir: &Path) -> Command {
    let binary = std::env::var("INLET_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_inlet").to_string());
    let mut command = Command::new(binary);
    command.current_dir(dir).env("RUST_LOG", "error").stderr(Stdio::null());
    command
}

/// The URL `inlet serve` prints on its first line.
fn listening_url(serve: &mut std::process::Child) -> anyhow::Result<String> {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(serve.stdout.take().expect("piped")).read_line(&mut line)?;
    Ok(line.trim().strip_prefix("inlet listening on ").ok_or_else(|| anyhow::anyhow!("unexpected {line:?}"))?.into())
}

/// Wait until `slots` runs are running (read from the database, as an
/// operator's `sqlite3` would).
async fn wait_until_running(database: &Path, slots: usize) -> anyhow::Result<()> {
    let url = format!("sqlite://{}", database.display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs WHERE status = 'running'").fetch_one(&pool).await?;
        if running as usize >= slots {
            // Let the plugins get past instantiation into their loops.
            tokio::time::sleep(Duration::from_secs(1)).await;
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "only {running} of {slots} runs started within a minute");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Latencies of `n` sequential GETs of `url`, 10 ms apart.
async fn sample(client: &reqwest::Client, url: &str, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let response = client.get(url).timeout(Duration::from_secs(30)).send().await?;
        anyhow::ensure!(response.status().is_success(), "/healthz answered {}", response.status());
        response.bytes().await?;
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    latencies.sort_unstable();
    Ok(latencies)
}

fn report(label: &str, sorted: &[Duration]) {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "/healthz, {label}: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sorted.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
