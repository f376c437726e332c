//! What one plugin call may touch: the per-call store data behind every
//! capability. A call gets only the scope its export needs: `describe` and
//! `process` get none, so their imports refuse; `fetch` gets one integration.

use super::CallLimits;
use super::output::PluginOutput;
use crate::capabilities::http::OutboundHttp;
use crate::capabilities::signature::SigningKey;
use crate::clock::SharedClock;
use crate::store::Store;
use crate::store::groups::Credentials;
use crate::store::jobs::JobLease;
use crate::store::sync_runs::LogLine;
use std::collections::BTreeMap;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub struct PluginCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    /// What the plugin printed to stdout and stderr.
    output: PluginOutput,
    pub(crate) plugin_id: String,
    pub(crate) fetch: Option<FetchScope>,
    /// The group's webhook secret, in `handle-webhook` calls only.
    pub(crate) signing: Option<SigningKey>,
    /// Set when `signature.verify` answered valid in this call.
    pub(crate) signature_verified: bool,
    pub(crate) logs: RunLog,
}

/// The integration a `fetch` call works for, and what it has produced so far.
pub struct FetchScope {
    pub store: Store,
    pub integration_id: i64,
    pub sync_run_id: i64,
    /// The lease of the run's job: checkpoints store nothing once it is lost.
    pub lease: Option<JobLease>,
    pub http: OutboundHttp,
    /// The group's credentials, only for an approved plugin that needs them raw.
    pub raw_credentials: Option<Credentials>,
    /// Emitted since the last checkpoint: `(kind, payload)`.
    pub pending_batches: Vec<(String, String)>,
    pub pending_bytes: usize,
    /// State writes since the last checkpoint; `None` deletes the key.
    pub pending_state: BTreeMap<String, Option<String>>,
    pub committed_batches: i64,
    pub limits: OutputLimits,
}

/// Caps on what one fetch may hand the host.
#[derive(Debug, Clone, Copy)]
pub struct OutputLimits {
    pub max_batch_bytes: usize,
    /// Uncheckpointed bytes (batches, and state keys and values) held in
    /// memory at once.
    pub max_pending_bytes: usize,
    pub max_batches_per_run: i64,
    /// State keys one integration may hold.
    pub max_state_keys: i64,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            max_batch_bytes: 8 * 1024 * 1024,
            max_pending_bytes: 64 * 1024 * 1024,
            max_batches_per_run: 100_000,
            max_state_keys: 10_000,
        }
    }
}

/// Log lines a call wrote, bounded so a chatty plugin cannot exhaust memory.
pub struct RunLog {
    pub max_lines: usize,
    pub max_line_bytes: usize,
    pub lines: Vec<LogLine>,
    pub dropped: usize,
    /// When progress was last written to the database.
    pub progress_written: Option<std::time::Instant>,
    /// Progress reported but not yet written (throttled); saved when the call ends.
    pub progress_unsaved: Option<(u64, Option<u64>)>,
}

impl RunLog {
    /// Keep a line, cut to the line cap; past the line cap, count it as dropped.
    pub fn push(&mut self, at: i64, level: &str, mut message: String) {
        if self.lines.len() >= self.max_lines {
            self.dropped += 1;
            return;
        }
        if message.len() > self.max_line_bytes {
            let mut cut = self.max_line_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [truncated]");
        }
        self.lines.push(LogLine { at, level: level.to_string(), message });
    }

    fn new(max_lines: usize, max_line_bytes: usize) -> RunLog {
        RunLog {
            max_lines,
            max_line_bytes,
            lines: Vec::new(),
            dropped: 0,
            progress_written: None,
            progress_unsaved: None,
        }
    }
    /// Progress is shown to people; more than a few writes a second is waste.
    pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
}

impl PluginCtx {
    pub fn new(
        plugin_id: &str,
        limits: StoreLimits,
        call_limits: &CallLimits,
        clock: SharedClock,
        fetch: Option<FetchScope>,
    ) -> Self {
        let output = PluginOutput::new(clock, call_limits.max_log_lines, call_limits.max_log_line_bytes);
        // No environment, arguments, files, sockets or name lookups: the WASI
        // imports exist so std links, but the only way out is our own `http`.
        let wasi = WasiCtx::builder().stdout(output.stdout()).stderr(output.stderr()).build();
        PluginCtx {
            wasi,
            table: ResourceTable::new(),
            limits,
            output,
            plugin_id: plugin_id.to_string(),
            fetch,
            signing: None,
            signature_verified: false,
            logs: RunLog::new(call_limits.max_log_lines, call_limits.max_log_line_bytes),
        }
    }

    /// The last lines the plugin wrote to stderr (a Rust panic message, typically).
    pub fn stderr_tail(&self) -> Vec<String> {
        self.output.stderr_tail()
    }

    /// The call's log lines, what it printed among them in time order, with
    /// a note when the cap dropped some.
    pub fn into_log_lines(self) -> Vec<LogLine> {
        let mut log = self.logs;
        let (printed, dropped) = self.output.take_lines();
        log.dropped += dropped;
        for line in printed {
            log.push(line.at, &line.level, line.message);
        }
        let mut lines = log.lines;
        lines.sort_by_key(|l| l.at);
        if log.dropped > 0 {
            lines.push(LogLine {
                at: lines.last().map_or(0, |l| l.at),
                level: "warn".into(),
                message: format!("{} further log lines were dropped (limit per run)", log.dropped),
            });
        }
        lines
    }

    pub(crate) fn fetch_scope(&mut self, capability: &str) -> wasmtime::Result<&mut FetchScope> {
        self.fetch
            .as_mut()
            .ok_or_else(|| wasmtime::format_err!("the {capability} capability is only available during fetch"))
    }
}

impl WasiView for PluginCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
