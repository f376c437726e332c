//! Instantiate a component from its pre-linked `InstancePre` (pooling
//! allocator) and make one call, many times: the fixed cost of every plugin
//! call. Run with `cargo bench --bench plugin_call [-- iterations]`.

use inlet::runtime::registry::load_file;
use inlet::runtime::wit::RawBatch;
use inlet::runtime::{CallLimits, Runtime};
use std::path::PathBuf;
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
    for _ in 0..1_000 {
        runtime.process(&loaded.pre, "misbehave", batch.clone()).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let mut samples = Vec::with_capacity(iterations);
    let started = Instant::now();
    for _ in 0..iterations {
        let call = Instant::now();
        runtime.process(&loaded.pre, "misbehave", batch.clone()).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        samples.push(call.elapsed().as_nanos() as u64);
    }
    let total = started.elapsed();
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    println!(
        "instantiate + call: {iterations} calls in {:.2}s; p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({:.0} calls/s on one task)",
        total.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0),
        iterations as f64 / total.as_secs_f64()
    );
    Ok(())
}
