//! The WebAssembly side: one engine, components compiled once per file content
//! (cached on disk), a fresh instance for every call from a pre-linked
//! `InstancePre`, and CPU/memory bounds on each call.

pub mod compile_cache;
pub mod context;
pub mod output;
pub mod registry;
pub mod wit;

use crate::capabilities::signature::SigningKey;
use crate::capabilities::{CallScope, FetchScope};
use crate::clock::{SharedClock, SystemClock};
use crate::domain::manifest::Manifest;
use crate::domain::plugin_call::{FetchRequest, FetchSummary, PluginError, RawBatch, WebhookDelivery, WebhookOutcome};
use crate::domain::records::Records;
use anyhow::{Context, Result};
use context::PluginCtx;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder,
    UpdateDeadline,
};

/// How often the epoch advances: running wasm yields and checks its deadline
/// at every tick.
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
    threads: PluginThreads,
    /// The slice of the instance pool webhook calls may use: they run for
    /// whoever posts, and a flood of them must leave the rest to sync runs.
    webhook_slots: Arc<Semaphore>,
    /// The rest of the pool, for every other call.
    call_slots: Arc<Semaphore>,
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
    /// Every pooled instance slot is taken: the host is busy, not the plugin wrong.
    #[error("no plugin instance was free for {plugin}'s {export}: {reason}")]
    Busy { plugin: String, export: &'static str, reason: String },
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
        wit::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;

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

        crate::private_files::create_dir(&cache_dir)
            .with_context(|| format!("creating the compile cache {}", cache_dir.display()))?;
        let webhook_slots = Arc::new(Semaphore::new(webhook_slice(&limits)));
        let others = (limits.max_concurrent_instances as usize).saturating_sub(webhook_slice(&limits)).max(1);
        let call_slots = Arc::new(Semaphore::new(others));
        let threads = PluginThreads::start()?;
        Ok(Arc::new(Runtime { engine, linker, cache_dir, threads, webhook_slots, call_slots, limits }))
    }

    /// Compile (or load from the cache) and pre-link a component against
    /// the contract version it imports.
    pub fn prepare(&self, wasm: &[u8], sha256: &str) -> Result<wit::PluginPre> {
        let component: Component = compile_cache::load(&self.engine, &self.cache_dir, wasm, sha256)?;
        let version = wit::ContractVersion::of(&component, &self.engine)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("it imports something the host does not provide: {e}"))?;
        wit::PluginPre::new(pre, version)
            .map_err(|e| anyhow::anyhow!("it does not export the inlet:plugin@{version} world: {e}"))
    }

    fn new_store(&self, plugin_id: &str, fetch: Option<FetchScope>, timeout: Duration) -> Store<PluginCtx> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.max_memory_bytes)
            .instances(16)
            .tables(32)
            .memories(4)
            .build();
        let clock = fetch.as_ref().map_or_else(|| Arc::new(SystemClock) as SharedClock, |f| f.store.clock());
        let mut store = Store::new(&self.engine, PluginCtx::new(plugin_id, limits, &self.limits, clock, fetch));
        store.limiter(|ctx| &mut ctx.limits);
        // At every tick running wasm yields to the other calls on the plugin
        // threads, and past the deadline it stops; a call blocked in a host
        // call (a sleep, a request) is stopped by the timeout in `call`.
        let deadline = std::time::Instant::now() + timeout;
        store.epoch_deadline_callback(move |_| match std::time::Instant::now() >= deadline {
            true => Ok(UpdateDeadline::Interrupt),
            false => Ok(UpdateDeadline::Yield(1)),
        });
        store
    }

    /// Run `export` on a fresh instance, on the plugin threads, and end it at
    /// `timeout` whatever the plugin is doing: running wasm, sleeping, or
    /// waiting on a host call. Returns its answer and what the call left in
    /// its context (log lines, the fetch scope). The call holds `slot` (one
    /// of the pool's instances) until it ends; without one, it waits for one
    /// of the sync calls' slots within its deadline, so more calls than
    /// instances queue instead of failing.
    async fn call<E: Export>(
        &self,
        pre: &wit::PluginPre,
        mut store: Store<PluginCtx>,
        timeout: Duration,
        export: E,
        slot: Option<OwnedSemaphorePermit>,
    ) -> (Result<E::Output, CallError>, PluginCtx) {
        let pre = pre.clone();
        let max_memory_bytes = self.limits.max_memory_bytes;
        let call_slots = Arc::clone(&self.call_slots);
        let work = async move {
            let answer = tokio::time::timeout(timeout, async {
                let _slot = match slot {
                    Some(slot) => slot,
                    None => call_slots.acquire_owned().await.expect("the semaphore is never closed"),
                };
                // Counted from here: a call that waited for its slot has not
                // run yet, and must not yield (holding an instance) at once.
                store.set_epoch_deadline(1);
                let plugin = pre.instantiate_async(&mut store).await?;
                export.invoke(&plugin, &mut store).await
            })
            .await;
            let result = match answer {
                Ok(Ok(output)) => Ok(output),
                Ok(Err(error)) => Err(call_error(error, store.data(), E::NAME, timeout, max_memory_bytes)),
                Err(_elapsed) => Err(deadline(store.data().plugin_id(), E::NAME, timeout)),
            };
            // The instance goes back to the pool here, on the plugin thread:
            // held until the caller's task is next polled, busy callers
            // would keep the pool's slots from the calls that need them.
            (result, store.into_data())
        };
        // A run spawned on `plugin_threads` is there already:
        // a hop to another task would cost a spawn and a wake-up per call.
        if self.threads.is_current() {
            return work.await;
        }
        match self.threads.spawn(work).await {
            Ok(done) => done,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }

    /// The plugin threads, for work that calls plugins (a worker's runs): a
    /// call made from them needs no hop to them and back.
    pub fn plugin_threads(&self) -> &tokio::runtime::Handle {
        self.threads.handle()
    }

    pub async fn describe(&self, pre: &wit::PluginPre, label: &str) -> Result<Manifest> {
        let timeout = self.limits.describe_timeout;
        let store = self.new_store(label, None, timeout);
        let (result, _) = self.call(pre, store, timeout, Describe, None).await;
        Ok(result?)
    }

    /// Run `fetch` on a fresh instance. Returns the plugin's answer and the
    /// call's scope: the fetch scope (with anything emitted after the last
    /// checkpoint) and the call's log, what it printed included.
    pub async fn fetch(
        &self,
        pre: &wit::PluginPre,
        plugin_id: &str,
        scope: FetchScope,
        request: FetchRequest,
    ) -> (Result<Result<FetchSummary, PluginError>, CallError>, CallScope) {
        let timeout = self.limits.fetch_timeout;
        let store = self.new_store(plugin_id, Some(scope), timeout);
        let (result, ctx) = self.call(pre, store, timeout, Fetch(request), None).await;
        (result.map(|answer| answer.map_err(capped)), ctx.into_scope())
    }

    /// Run `handle-webhook` on a fresh instance for one delivery. `signing`
    /// is the group's webhook secret, which `signature.verify` checks with; the
    /// call has no other capability. Also says whether a signature check
    /// answered valid during the call.
    pub async fn handle_webhook(
        &self,
        pre: &wit::PluginPre,
        plugin_id: &str,
        signing: Option<SigningKey>,
        delivery: WebhookDelivery,
    ) -> (Result<Result<WebhookOutcome, PluginError>, CallError>, bool) {
        let Ok(slot) = Arc::clone(&self.webhook_slots).try_acquire_owned() else {
            let reason = format!("all {} instances set aside for webhooks are in use", webhook_slice(&self.limits));
            return (
                Err(CallError::Busy { plugin: plugin_id.to_string(), export: HandleWebhook::NAME, reason }),
                false,
            );
        };
        let timeout = self.limits.webhook_timeout;
        let mut store = self.new_store(plugin_id, None, timeout);
        store.data_mut().scope.signing = signing;
        let (result, ctx) = self.call(pre, store, timeout, HandleWebhook(delivery), Some(slot)).await;
        (result.map(|answer| answer.map_err(capped)), ctx.scope.signature_verified)
    }

    /// Run `process` on a fresh instance with no capabilities.
    pub async fn process(
        &self,
        pre: &wit::PluginPre,
        plugin_id: &str,
        batch: RawBatch,
    ) -> Result<Result<Records, PluginError>, CallError> {
        let timeout = self.limits.process_timeout;
        let store = self.new_store(plugin_id, None, timeout);
        let (result, _) = self.call(pre, store, timeout, Process(batch), None).await;
        result.map(|answer| answer.map_err(capped))
    }
}

/// One export of the plugin world, called by [`Runtime::call`].
trait Export: Send + 'static {
    const NAME: &'static str;
    type Output: Send + 'static;
    fn invoke<'a>(
        self,
        plugin: &'a wit::Plugin,
        store: &'a mut Store<PluginCtx>,
    ) -> impl Future<Output = wasmtime::Result<Self::Output>> + Send + 'a;
}

struct Describe;
struct Fetch(FetchRequest);
struct Process(RawBatch);
struct HandleWebhook(WebhookDelivery);

impl Export for Describe {
    const NAME: &'static str = "describe";
    type Output = Manifest;
    fn invoke<'a>(
        self,
        plugin: &'a wit::Plugin,
        store: &'a mut Store<PluginCtx>,
    ) -> impl Future<Output = wasmtime::Result<Manifest>> + Send + 'a {
        plugin.describe(store)
    }
}

impl Export for Fetch {
    const NAME: &'static str = "fetch";
    type Output = Result<FetchSummary, PluginError>;
    async fn invoke<'a>(
        self,
        plugin: &'a wit::Plugin,
        store: &'a mut Store<PluginCtx>,
    ) -> wasmtime::Result<Self::Output> {
        plugin.fetch(store, &self.0).await
    }
}

impl Export for Process {
    const NAME: &'static str = "process";
    type Output = Result<Records, PluginError>;
    async fn invoke<'a>(
        self,
        plugin: &'a wit::Plugin,
        store: &'a mut Store<PluginCtx>,
    ) -> wasmtime::Result<Self::Output> {
        plugin.process(store, &self.0).await
    }
}

impl Export for HandleWebhook {
    const NAME: &'static str = "handle-webhook";
    type Output = Result<WebhookOutcome, PluginError>;
    async fn invoke<'a>(
        self,
        plugin: &'a wit::Plugin,
        store: &'a mut Store<PluginCtx>,
    ) -> wasmtime::Result<Self::Output> {
        plugin.handle_webhook(store, &self.0).await
    }
}

/// Instances webhook calls may hold at once: an eighth of the pool.
fn webhook_slice(limits: &CallLimits) -> usize {
    (limits.max_concurrent_instances as usize / 8).max(1)
}

/// Explain a failed call in terms an operator can act on: the trap, the
/// panic message the plugin printed before it, and the limit it hit.
fn call_error(
    error: wasmtime::Error,
    ctx: &PluginCtx,
    export: &'static str,
    timeout: Duration,
    max_memory_bytes: usize,
) -> CallError {
    let plugin = ctx.plugin_id();
    if matches!(error.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
        return deadline(plugin, export, timeout);
    }
    if let Some(full) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return CallError::Busy { plugin: plugin.to_string(), export, reason: full.to_string() };
    }
    let stderr = ctx.stderr_tail();
    let mut reason = if stderr.is_empty() {
        format!("{error:#}")
    } else {
        format!("{} ({})", last_lines(&stderr), error.root_cause())
    };
    if stderr.iter().any(|line| line.contains("memory allocation of")) {
        reason.push_str(&format!("; the plugin reached its memory limit of {} MiB", max_memory_bytes / (1024 * 1024)));
    }
    CallError::Trap { plugin: plugin.to_string(), export, reason: cap_text(reason, MAX_ERROR_BYTES) }
}

fn deadline(plugin: &str, export: &'static str, timeout: Duration) -> CallError {
    CallError::Deadline { plugin: plugin.to_string(), export, seconds: timeout.as_secs() }
}

/// The threads plugin code runs on: a runtime of their own, so a plugin that
/// spins (it yields at every epoch tick, but to its peers) never holds a thread
/// the HTTP server, the scheduler or lease renewal need.
struct PluginThreads(Option<tokio::runtime::Runtime>);

impl PluginThreads {
    fn start() -> Result<PluginThreads> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("inlet-plugin")
            .enable_all()
            .build()
            .context("starting the plugin threads")?;
        Ok(PluginThreads(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("running until dropped").handle()
    }

    /// Whether the caller is a task on these threads.
    fn is_current(&self) -> bool {
        tokio::runtime::Handle::try_current().is_ok_and(|current| current.id() == self.handle().id())
    }

    /// Spawn `future`; dropping the handle (a cancelled run) stops it.
    fn spawn<F>(&self, future: F) -> AbortOnDrop<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        AbortOnDrop(self.handle().spawn(future))
    }
}

impl Drop for PluginThreads {
    fn drop(&mut self) {
        // The last reference may go inside an async context, where a blocking
        // shutdown would panic; calls still running are cancelled.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A plugin's error with its text, which the plugin controls, capped before
/// anything logs, stores or answers it.
fn capped(error: PluginError) -> PluginError {
    error.map_message(|message| cap_text(message, MAX_ERROR_BYTES))
}

/// A plugin's last lines of stderr, without the Rust panic hook's advice
/// about RUST_BACKTRACE (meaningless inside a plugin).
fn last_lines(lines: &[String]) -> String {
    let lines: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    lines.join(" | ")
}

/// Text a plugin controls (its error and note strings, its panic message)
/// is cut to this many bytes before it is logged or stored.
const MAX_ERROR_BYTES: usize = 4 * 1024;

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
fn cap_text(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" [truncated]");
    }
    text
}
