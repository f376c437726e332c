//! Shared harness for the end-to-end tests: built plugins, a scratch data
//! folder per test, and the real `inlet` binary run against it.

#![allow(dead_code)] // each test binary uses a different part of the harness

use inlet::clock::SystemClock;
use inlet::secrets::SecretKey;
use inlet::store::Store;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, OnceLock};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Build the plugin components (a no-op when nothing changed) once per test binary.
pub fn ensure_plugins_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["run", "--quiet", "--package", "xtask", "--", "build-plugins"])
            .current_dir(root())
            .status()
            .expect("running cargo xtask build-plugins");
        assert!(status.success(), "cargo xtask build-plugins failed");
    });
}

/// Schemathesis, the API fuzzer, installed (pinned) by xtask on first use.
pub fn schemathesis() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["run", "--quiet", "--package", "xtask", "--", "schemathesis"])
        .current_dir(root())
        .output()
        .expect("running cargo xtask schemathesis");
    assert!(output.status.success(), "cargo xtask schemathesis failed: {}", text(&output.stderr));
    PathBuf::from(text(&output.stdout).trim())
}

pub fn bundled_plugin(id: &str) -> PathBuf {
    ensure_plugins_built();
    root().join("plugins").join(format!("{id}.wasm"))
}

pub fn test_plugin(id: &str) -> PathBuf {
    ensure_plugins_built();
    root().join("target/test-plugins").join(format!("{id}.wasm"))
}

/// A scratch inlet installation: data folder, plugins folder, environment.
pub struct Inlet {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Inlet {
    /// An installation whose plugins folder holds copies of `plugins`.
    pub fn with_plugins(plugins: &[PathBuf]) -> Inlet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        let inlet = Inlet { dir, env: Vec::new() };
        for plugin in plugins {
            inlet.add_plugin_file(plugin.file_name().unwrap().to_str().unwrap(), &std::fs::read(plugin).unwrap());
        }
        inlet
    }

    pub fn add_plugin_file(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.plugins_dir().join(name), bytes).unwrap();
    }

    /// Write `inlet.toml` in the installation's folder (the commands' working directory).
    pub fn config(self, toml: &str) -> Inlet {
        std::fs::write(self.dir.path().join("inlet.toml"), toml).unwrap();
        self
    }

    /// Start a long-running `inlet <args>` (serve, worker) and wait until it listens.
    pub async fn spawn(&self, args: &[&str]) -> tokio::process::Child {
        self.spawn_listening(args).await.0
    }

    /// Like [`Inlet::spawn`], also returning the base URL it listens on.
    pub async fn spawn_listening(&self, args: &[&str]) -> (tokio::process::Child, String) {
        self.start(args, std::process::Stdio::inherit()).await
    }

    /// Like [`Inlet::spawn`], with its log written to `log` (read it with `std::fs`).
    pub async fn spawn_logged(&self, args: &[&str], log: &Path) -> tokio::process::Child {
        self.spawn_logged_listening(args, log).await.0
    }

    /// Like [`Inlet::spawn_logged`], also returning the base URL it listens on.
    pub async fn spawn_logged_listening(&self, args: &[&str], log: &Path) -> (tokio::process::Child, String) {
        self.start(args, std::fs::File::create(log).unwrap().into()).await
    }

    async fn start(&self, args: &[&str], stderr: std::process::Stdio) -> (tokio::process::Child, String) {
        use tokio::io::AsyncBufReadExt;
        let mut child = self.command(args).stdout(std::process::Stdio::piped()).stderr(stderr).spawn().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("inlet started within a minute")
            .unwrap()
            .expect("inlet printed its address");
        let url = line.strip_prefix("inlet listening on ").unwrap_or_else(|| panic!("unexpected first line {line}"));
        (child, url.to_string())
    }

    pub fn env(mut self, key: &str, value: &str) -> Inlet {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The installation's folder, which tests may write scratch files to.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("inlet.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.data_dir().join("inlet.db").display())
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_inlet"));
        for (key, _) in std::env::vars() {
            if key.starts_with("INLET_") || key == "DATABASE_URL" {
                command.env_remove(key);
            }
        }
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--plugins-dir")
            .arg(self.plugins_dir())
            .args(args)
            .env("INLET_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir.path())
            .kill_on_drop(true);
        command
    }

    /// Run `inlet <args>` to completion.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("running inlet")
    }

    /// Run `inlet <args>`, require success, and parse stdout as JSON.
    /// `inlet sync ... --json` that succeeded: the run that says how it went
    /// (see [`sync_outcome`]).
    pub async fn synced(&self, args: &[&str]) -> Value {
        sync_outcome(self.json(args).await)
    }

    /// `inlet sync ... --json` that fetched and processed what it stored,
    /// both successfully.
    pub async fn synced_both(&self, args: &[&str]) -> Synced {
        let runs = self.json(args).await;
        let [fetch, process] = runs.as_array().map(Vec::as_slice).unwrap_or_default() else {
            panic!("inlet {args:?} made no fetch and process runs: {runs:#}")
        };
        for run in [fetch, process] {
            assert_eq!(run["status"], "success", "inlet {args:?}: {runs:#}");
        }
        assert_eq!((fetch["queue"].as_str(), process["queue"].as_str()), (Some("fetch"), Some("process")));
        Synced { fetch: fetch.clone(), process: process.clone() }
    }

    pub async fn json(&self, args: &[&str]) -> Value {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "inlet {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("inlet {args:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout))
        })
    }

    /// The same database, through the library.
    pub async fn store(&self) -> Store {
        self.store_at(&self.database_url()).await
    }

    /// A database at `url`, with this installation's secret key.
    pub async fn store_at(&self, url: &str) -> Store {
        std::fs::create_dir_all(self.data_dir()).unwrap();
        let key = SecretKey::load_or_create(None, &self.data_dir().join("secret.key")).unwrap();
        Store::open(url, Arc::new(SystemClock), Arc::new(key)).await.unwrap()
    }
}

/// Send SIGTERM, as a service manager does.
pub fn terminate(process: &tokio::process::Child) {
    let status = std::process::Command::new("kill").args(["-TERM", &process.id().unwrap().to_string()]).status();
    assert!(status.unwrap().success());
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Poll `check` every 100 ms until it returns `Some`, for at most `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out after {seconds}s waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Create an empty PostgreSQL database for one test and return its URL.
/// Databases left by earlier test processes are dropped on first use.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static CLEANED: AtomicBool = AtomicBool::new(false);
    let pid = std::process::id();
    let name = format!("inlet_test_{pid}_{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let mut admin = sqlx::PgConnection::connect(POSTGRES_ADMIN)
        .await
        .expect("PostgreSQL must be running on 127.0.0.1:5432 (trust auth for postgres)");
    if !CLEANED.swap(true, Ordering::SeqCst) {
        let stale: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT datname FROM pg_database WHERE datname LIKE 'inlet\\_test\\_%' AND datname NOT LIKE 'inlet\\_test\\_{pid}\\_%'"
        )))
        .fetch_all(&mut admin)
        .await
        .unwrap();
        for old in stale {
            let drop = format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await;
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

/// Of the runs `inlet sync --json` prints (a fetch, then the processing of
/// what it stored), the one that says how the sync went: the first that
/// failed, else the last, as `SyncRuns::outcome` picks.
pub fn sync_outcome(runs: Value) -> Value {
    let runs = runs.as_array().unwrap_or_else(|| panic!("inlet sync --json printed no list of runs: {runs}"));
    let failed = runs.iter().find(|r| r["status"] != "success");
    failed.or(runs.last()).expect("a sync makes a run").clone()
}

/// A sync as `inlet sync --json` printed it: its fetch run, and the run that
/// processed what the fetch stored.
pub struct Synced {
    pub fetch: Value,
    pub process: Value,
}

/// A sync as a whole, from the runs `inlet sync --json` printed: the fetch's
/// trigger, items and batches, the records of all its runs, and the status
/// and error of the run that says how it went (see [`sync_outcome`]).
pub fn sync_summary(runs: &Value) -> Value {
    let outcome = sync_outcome(runs.clone());
    let mut summary = runs[0].clone();
    for field in ["status", "error_class", "error_message"] {
        summary[field] = outcome[field].clone();
    }
    for count in ["created", "updated", "unchanged", "deleted"] {
        let total: i64 = runs.as_array().unwrap().iter().map(|r| r["records"][count].as_i64().unwrap()).sum();
        summary["records"][count] = total.into();
    }
    summary
}
