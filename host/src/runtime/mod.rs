//! The WebAssembly side: one engine, components compiled once per file content
//! (cached on disk), a fresh instance for every call from a pre-linked
//! `InstancePre`, and CPU/memory bounds on each call.

pub mod compile_cache;
pub mod context;
pub mod registry;
pub mod wit;

use crate::capabilities::signature::SigningKey;
use anyhow::{Context, Result};
use context::{FetchScope, PluginCtx};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder,
};
use wit::{FetchRequest, FetchSummary, Manifest, PluginError, RawBatch, Records, RoutedBatch, WebhookDelivery};

/// How often the epoch advances; call deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of each pooled linear memory kept resident between instances, when
/// the kernel tells which pages a call dirtied: a Rust plugin's 1 MiB stack
/// sits below its data and heap. Without that, the whole region is reset with
/// memset, so it stays small.
const KEEP_RESIDENT_SCANNED: usize = 4 * 1024 * 1024;
const KEEP_RESIDENT_UNSCANNED: usize = 128 * 1024;

/// Per-call bounds.
#[derive(Debug, Clone)]
pub struct CallLimits {
    pub describe_timeout: Duration,
    pub fetch_timeout: Duration,
    pub process_timeout: Duration,
    pub webhook_timeout: Duration,
    pub max_memory_bytes: usize,
    /// Plugin instances alive at once across all calls; the pooling
    /// allocator reserves this many slots up front and reuses them.
    pub max_concurrent_instances: u32,
    /// Log lines kept per call; the rest are counted and dropped.
    pub max_log_lines: usize,
    /// Longer log lines are cut to this many bytes.
    pub max_log_line_bytes: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            describe_timeout: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(120),
            process_timeout: Duration::from_secs(300),
            webhook_timeout: Duration::from_secs(60),
            max_memory_bytes: 256 * 1024 * 1024,
            max_concurrent_instances: 256,
            max_log_lines: 1_000,
            max_log_line_bytes: 4 * 1024,
        }
    }
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginCtx>,
    cache_dir: PathBuf,
    pub limits: CallLimits,
}

/// A call that did not return normally: the plugin trapped (panic, bad memory
/// access, deadline) or the host failed around it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("plugin {plugin} trapped in {export}: {reason}")]
    Trap { plugin: String, export: &'static str, reason: String },
    #[error("plugin {plugin} ran past its {seconds}s deadline in {export}")]
    Deadline { plugin: String, export: &'static str, seconds: u64 },
}

impl Runtime {
    pub fn new(cache_dir: PathBuf, limits: CallLimits) -> Result<Arc<Runtime>> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Instantiating from pre-reserved, reused slots avoids an mmap/munmap
        // (and the TLB shootdowns that come with it) for every call.
        let slots = limits.max_concurrent_instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 8)
            .max_core_instances_per_component(16)
            .total_memories(slots * 2)
            .max_memories_per_component(4)
            .total_tables(slots * 4)
            .max_tables_per_component(8)
            .total_stacks(slots)
            .max_memory_size(limits.max_memory_bytes)
            // Returning a slot's memory to the kernel costs a TLB shootdown on
            // every core, and the next instance's first write to each page a
            // copy-on-write fault (another shootdown). So keep slots resident
            // and reset them with memset; where the kernel has PAGEMAP_SCAN
            // (Linux 6.7+) only the pages a call dirtied are reset, so the
            // kept region can span a plugin's stack, data and early heap.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(match PoolingAllocationConfig::is_pagemap_scan_available() {
                true => KEEP_RESIDENT_SCANNED,
                false => KEEP_RESIDENT_UNSCANNED,
            })
            .table_keep_resident(16 * 1024)
            .decommit_batch_size(64);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wit::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |ctx| ctx).map_err(anyhow::Error::from)?;

        // The epoch only moves forward; a weak reference lets the ticker stop
        // once the runtime is gone.
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("inlet-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the epoch ticker")?;

        std::fs::create_dir_all(&cache_dir)
            .with_context(|| format!("creating the compile cache {}", cache_dir.display()))?;
        Ok(Arc::new(Runtime { engine, linker, cache_dir, limits }))
    }

    /// Compile (or load from the cache) and pre-link a component.
    pub fn prepare(&self, wasm: &[u8], sha256: &str) -> Result<wit::PluginPre<PluginCtx>> {
        let component: Component = compile_cache::load(&self.engine, &self.cache_dir, wasm, sha256)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("it imports something the host does not provide: {e}"))?;
        wit::PluginPre::new(pre).map_err(|e| anyhow::anyhow!("it does not export the inlet:plugin@0.1.0 world: {e}"))
    }

    fn new_store(&self, plugin_id: &str, fetch: Option<FetchScope>, timeout: Duration) -> Store<PluginCtx> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.max_memory_bytes)
            .instances(16)
            .tables(32)
            .memories(4)
            .build();
        let mut store = Store::new(&self.engine, PluginCtx::new(plugin_id, limits, &self.limits, fetch));
        store.limiter(|ctx| &mut ctx.limits);
        store.set_epoch_deadline(ticks(timeout));
        store.epoch_deadline_trap();
        store
    }

    /// Explain a failed call in terms an operator can act on: the trap, the
    /// panic message the plugin printed before it, and the limit it hit.
    fn call_error(
        &self,
        error: wasmtime::Error,
        store: &Store<PluginCtx>,
        plugin: &str,
        export: &'static str,
        timeout: Duration,
    ) -> CallError {
        if matches!(error.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
            return CallError::Deadline { plugin: plugin.to_string(), export, seconds: timeout.as_secs() };
        }
        let stderr = store.data().stderr();
        let mut reason = if stderr.is_empty() {
            format!("{error:#}")
        } else {
            format!("{} ({})", last_lines(&stderr, 5), error.root_cause())
        };
        if stderr.contains("memory allocation of") {
            reason.push_str(&format!(
                "; the plugin reached its memory limit of {} MiB",
                self.limits.max_memory_bytes / (1024 * 1024)
            ));
        }
        CallError::Trap { plugin: plugin.to_string(), export, reason }
    }

    pub async fn describe(&self, pre: &wit::PluginPre<PluginCtx>, label: &str) -> Result<Manifest> {
        let timeout = self.limits.describe_timeout;
        let mut store = self.new_store(label, None, timeout);
        let result = async {
            let plugin = pre.instantiate_async(&mut store).await?;
            plugin.call_describe(&mut store).await
        }
        .await;
        result.map_err(|e| self.call_error(e, &store, label, "describe", timeout).into())
    }

    /// Run `fetch` on a fresh instance. Returns the plugin's answer and the
    /// scope (with anything emitted after the last checkpoint) and call log.
    pub async fn fetch(
        &self,
        pre: &wit::PluginPre<PluginCtx>,
        plugin_id: &str,
        scope: FetchScope,
        request: &FetchRequest,
    ) -> (Result<Result<FetchSummary, PluginError>, CallError>, PluginCtx) {
        let timeout = self.limits.fetch_timeout;
        let mut store = self.new_store(plugin_id, Some(scope), timeout);
        let result = async {
            let plugin = pre.instantiate_async(&mut store).await?;
            plugin.call_fetch(&mut store, request).await
        }
        .await;
        let result = result.map_err(|e| self.call_error(e, &store, plugin_id, "fetch", timeout));
        (result, store.into_data())
    }

    /// Run `handle-webhook` on a fresh instance for one delivery. `signing`
    /// is the group's webhook secret, which `signature.verify` checks with; the
    /// call has no other capability. Also says whether a signature check
    /// answered valid during the call.
    pub async fn handle_webhook(
        &self,
        pre: &wit::PluginPre<PluginCtx>,
        plugin_id: &str,
        signing: Option<SigningKey>,
        delivery: &WebhookDelivery,
    ) -> (Result<Result<Vec<RoutedBatch>, PluginError>, CallError>, bool) {
        let timeout = self.limits.webhook_timeout;
        let mut store = self.new_store(plugin_id, None, timeout);
        store.data_mut().signing = signing;
        let result = async {
            let plugin = pre.instantiate_async(&mut store).await?;
            plugin.call_handle_webhook(&mut store, delivery).await
        }
        .await;
        let result = result.map_err(|e| self.call_error(e, &store, plugin_id, "handle-webhook", timeout));
        (result, store.data().signature_verified)
    }

    /// Run `process` on a fresh instance with no capabilities.
    pub async fn process(
        &self,
        pre: &wit::PluginPre<PluginCtx>,
        plugin_id: &str,
        batch: &RawBatch,
    ) -> Result<Result<Records, PluginError>, CallError> {
        let timeout = self.limits.process_timeout;
        let mut store = self.new_store(plugin_id, None, timeout);
        let result = async {
            let plugin = pre.instantiate_async(&mut store).await?;
            plugin.call_process(&mut store, batch).await
        }
        .await;
        result.map_err(|e| self.call_error(e, &store, plugin_id, "process", timeout))
    }
}

fn ticks(timeout: Duration) -> u64 {
    (timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// The last `n` lines of a plugin's stderr, without the Rust panic hook's
/// advice about RUST_BACKTRACE (meaningless inside a plugin).
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE")).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
