//! `log`: lines and progress kept with the sync run.

use super::CallScope;
use crate::store::sync_runs::LogLine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

pub fn log(scope: &mut CallScope, level: Level, message: String) {
    let level = level.as_str();
    tracing::debug!(plugin = %scope.plugin_id, level, %message, "plugin log");
    let at = scope.fetch.as_ref().map(|s| s.store.now()).unwrap_or_default();
    scope.logs.push(at, level, message);
}

/// Progress is written at most every [`RunLog::PROGRESS_INTERVAL`]; the
/// last value held back is saved with the finished run.
pub async fn progress(scope: &mut CallScope, done: u64, total: Option<u64>) -> wasmtime::Result<()> {
    let logs = &mut scope.logs;
    let finished = total == Some(done);
    let recent = logs.progress_written.is_some_and(|at| at.elapsed() < RunLog::PROGRESS_INTERVAL);
    if recent && !finished {
        logs.progress_unsaved = Some((done, total));
        return Ok(());
    }
    logs.progress_written = Some(std::time::Instant::now());
    logs.progress_unsaved = None;
    if let Some(fetch) = &scope.fetch {
        fetch
            .store
            .set_sync_run_progress(fetch.sync_run_id, done, total)
            .await
            .map_err(|e| wasmtime::format_err!("recording progress: {e:#}"))?;
    }
    Ok(())
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
    /// Progress is shown to people; more than a few writes a second is waste.
    pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

    pub fn new(max_lines: usize, max_line_bytes: usize) -> RunLog {
        RunLog {
            max_lines,
            max_line_bytes,
            lines: Vec::new(),
            dropped: 0,
            progress_written: None,
            progress_unsaved: None,
        }
    }

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

    /// The lines in time order, with a note when the cap dropped some.
    pub fn into_lines(self) -> Vec<LogLine> {
        let mut lines = self.lines;
        lines.sort_by_key(|l| l.at);
        if self.dropped > 0 {
            lines.push(LogLine {
                at: lines.last().map_or(0, |l| l.at),
                level: "warn".into(),
                message: format!("{} further log lines were dropped (limit per run)", self.dropped),
            });
        }
        lines
    }
}
