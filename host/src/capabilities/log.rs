//! `log`: lines and progress kept with the sync run.

use crate::runtime::context::{PluginCtx, RunLog};
use crate::runtime::wit::inlet::plugin::log::{self, Level};

impl log::Host for PluginCtx {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        tracing::debug!(plugin = %self.plugin_id, level, %message, "plugin log");
        let at = self.fetch.as_ref().map(|s| s.store.now()).unwrap_or_default();
        self.logs.push(at, level, message);
        Ok(())
    }

    async fn progress(&mut self, done: u64, total: Option<u64>) -> wasmtime::Result<()> {
        let finished = total == Some(done);
        let recent = self.logs.progress_written.is_some_and(|at| at.elapsed() < RunLog::PROGRESS_INTERVAL);
        if recent && !finished {
            self.logs.progress_unsaved = Some((done, total));
            return Ok(());
        }
        self.logs.progress_written = Some(std::time::Instant::now());
        self.logs.progress_unsaved = None;
        if let Some(scope) = &self.fetch {
            scope
                .store
                .set_sync_run_progress(scope.sync_run_id, done, total)
                .await
                .map_err(|e| wasmtime::format_err!("recording progress: {e:#}"))?;
        }
        Ok(())
    }
}
