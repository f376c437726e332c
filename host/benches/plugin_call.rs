//! Instantiate a component from its pre-linked `InstancePre` (pooling
//! allocator) and make one call, many times: the fixed cost of every plugin
//! call, from a run on the plugin threads and from a task elsewhere. Then the
//! same for a bundled plugin in Rust and one in Python, each processing a
//! batch of its own, with the file's size and compile time. Run with
//! `cargo bench --bench plugin_call [-- iterations]`.

use inlet::domain::plugin_call::RawBatch;
use inlet::runtime::registry::load_file;
use inlet::runtime::wit::PluginPre;
use inlet::runtime::{CallLimits, Runtime};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let iterations: usize =
        std::env::args().skip(1).find(|a| !a.starts_with("--")).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let plugin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugins/misbehave.wasm");
    anyhow::ensure!(plugin.exists(), "build the test plugins first: cargo xtask build-plugins");
    let cache = tempfile::tempdir()?;
    let runtime = Runtime::new(cache.path().to_path_buf(), CallLimits::default())?;
    let loaded = load_file(&runtime, &plugin).await?;
    // `process` of the misbehave plugin parses a tiny JSON object: as close to
    // a no-op as a call with arguments and results gets.
    let batch = RawBatch { kind: "thing".into(), payload: r#"{"id":"x"}"#.into() };
    // A queued run calls from the plugin threads; a webhook or `inlet sync`
    // from the host's own, which costs a hop to them and back.
    let (in_run, pre, call_batch) = (Arc::clone(&runtime), loaded.pre.clone(), batch.clone());
    let run = async move { measure(&in_run, &pre, "misbehave", &call_batch, iterations).await };
    runtime.plugin_threads().spawn(run).await??.print("from a run on the plugin threads", iterations);
    measure(&runtime, &loaded.pre, "misbehave", &batch, iterations)
        .await?
        .print("from a task of the host's", iterations);
    by_language(iterations / 20).await
}

/// Monzo (Rust) and Hevy (Python): size, compile time, and `process` of a
/// page of their own data (an accounts batch; ten workouts), on the plugin threads.
async fn by_language(iterations: usize) -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let batch = |plugin: &str, instance_type: &str, kind: &str| -> anyhow::Result<RawBatch> {
        let cassette = root.join(format!("plugins/{plugin}/tests/{instance_type}/cassette.json"));
        let cassette: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cassette)?)?;
        let body = &cassette["runs"][0][0]["response"]["body"]["json"];
        let payload = match kind {
            "accounts" => body.to_string(),
            _ => serde_json::json!({ "workouts": body["workouts"] }).to_string(),
        };
        Ok(RawBatch { kind: kind.into(), payload })
    };
    for (plugin, language, batch) in [
        ("monzo", "Rust", batch("monzo", "accounts", "accounts")?),
        ("hevy", "Python", batch("hevy", "workouts", "workouts")?),
    ] {
        let file = root.join(format!("plugins/{plugin}.wasm"));
        anyhow::ensure!(file.exists(), "build the plugins first: cargo xtask build-plugins");
        let cache = tempfile::tempdir()?;
        let runtime = Runtime::new(cache.path().to_path_buf(), CallLimits::default())?;
        let compiling = Instant::now();
        let loaded = load_file(&runtime, &file).await?;
        println!(
            "{plugin} ({language}): {:.1} MB, compiled and loaded in {:.2}s",
            std::fs::metadata(&file)?.len() as f64 / 1e6,
            compiling.elapsed().as_secs_f64()
        );
        let (in_run, pre) = (Arc::clone(&runtime), loaded.pre.clone());
        let run = async move { measure(&in_run, &pre, plugin, &batch, iterations).await };
        runtime
            .plugin_threads()
            .spawn(run)
            .await??
            .print(&format!("{plugin} process, on the plugin threads"), iterations);
    }
    Ok(())
}

struct Samples {
    nanos: Vec<u64>,
    total: std::time::Duration,
}

/// `iterations` calls after a twentieth as many to warm up, each timed.
async fn measure(
    runtime: &Runtime,
    pre: &PluginPre,
    plugin: &str,
    batch: &RawBatch,
    iterations: usize,
) -> anyhow::Result<Samples> {
    let call = || async { runtime.process(pre, plugin, batch.clone()).await?.map_err(|e| anyhow::anyhow!("{e:?}")) };
    for _ in 0..iterations / 20 {
        call().await?;
    }
    let mut nanos = Vec::with_capacity(iterations);
    let started = Instant::now();
    for _ in 0..iterations {
        let at = Instant::now();
        call().await?;
        nanos.push(at.elapsed().as_nanos() as u64);
    }
    nanos.sort_unstable();
    Ok(Samples { nanos, total: started.elapsed() })
}

impl Samples {
    fn print(&self, label: &str, iterations: usize) {
        let at = |q: f64| self.nanos[((self.nanos.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        println!(
            "instantiate + call, {label}: {iterations} calls in {:.2}s; p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({:.0} \
             calls/s on one task)",
            self.total.as_secs_f64(),
            at(0.5),
            at(0.99),
            at(1.0),
            iterations as f64 / self.total.as_secs_f64()
        );
    }
}
