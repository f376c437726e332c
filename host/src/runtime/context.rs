//! The store data of one plugin call: the WASI context that lets std link,
//! what the plugin prints, its memory limits, and the capabilities' own
//! [`CallScope`], which is all a call may touch.

use super::CallLimits;
use super::output::PluginOutput;
use crate::capabilities::CallScope;
use crate::capabilities::log::RunLog;
use crate::clock::SharedClock;
use std::time::Duration;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

pub struct PluginCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    /// What the plugin printed to stdout and stderr.
    output: PluginOutput,
    pub(crate) scope: CallScope,
}

impl PluginCtx {
    pub fn new(
        plugin_id: &str,
        limits: StoreLimits,
        call_limits: &CallLimits,
        clock: SharedClock,
        fetch: Option<crate::capabilities::FetchScope>,
    ) -> Self {
        let output = PluginOutput::new(clock.clone(), call_limits.max_log_lines, call_limits.max_log_line_bytes);
        // No environment, arguments, files, sockets or name lookups: the WASI
        // imports exist so std links, but the only way out is our own `http`.
        // The plugin reads the same clock as the host, so a run replayed at a
        // pinned time (`inlet plugin test`) asks for the same URLs.
        let wasi =
            WasiCtx::builder().stdout(output.stdout()).stderr(output.stderr()).wall_clock(WallClock(clock)).build();
        let logs = RunLog::new(call_limits.max_log_lines, call_limits.max_log_line_bytes);
        PluginCtx { wasi, table: ResourceTable::new(), limits, output, scope: CallScope::new(plugin_id, logs, fetch) }
    }

    pub fn plugin_id(&self) -> &str {
        &self.scope.plugin_id
    }

    /// The last lines the plugin wrote to stderr (a Rust panic message, typically).
    pub fn stderr_tail(&self) -> Vec<String> {
        self.output.stderr_tail()
    }

    /// Move the lines the plugin has printed so far (finished ones) into
    /// its log, in the order they come, so they are followed live too.
    pub fn take_printed_lines(&mut self) {
        for line in self.output.take_finished_lines() {
            self.scope.logs.push(line.at, &line.level, line.message);
        }
    }

    /// The call's scope, with what the plugin printed merged into its log
    /// lines (the line cap counts both).
    pub fn into_scope(self) -> CallScope {
        let mut scope = self.scope;
        let (printed, dropped) = self.output.take_lines();
        scope.logs.dropped += dropped;
        for line in printed {
            scope.logs.push(line.at, &line.level, line.message);
        }
        scope
    }
}

/// The host's [`SharedClock`] as the plugin's `wasi:clocks/wall-clock`.
struct WallClock(SharedClock);

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now_ms().max(0) as u64)
    }
}

impl WasiView for PluginCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
