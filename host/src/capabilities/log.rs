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

pub async fn log(scope: &mut CallScope, level: Level, message: String) -> wasmtime::Result<()> {
    let level = level.as_str();
    tracing::debug!(plugin = %scope.plugin_id, level, %message, "plugin log");
    let at = scope.fetch.as_ref().map(|s| s.store.now()).unwrap_or_default();
    scope.logs.push(at, level, message);
    flush(scope, Flush::WhenDue).await
}

/// When [`flush`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// At most every [`RunLog::FLUSH_INTERVAL`].
    WhenDue,
    /// Now: the plugin is about to wait (an upstream request), and its lines
    /// so far should be seen meanwhile.
    Now,
}

/// Write a run's new log lines while it runs, so they can be followed live
/// (`inlet runs --follow`, the page's history); the rest are written with
/// the finished run. Only a fetch has a run to write them to.
pub async fn flush(scope: &mut CallScope, when: Flush) -> wasmtime::Result<()> {
    let logs = &mut scope.logs;
    let due = when == Flush::Now || logs.flushed_at.is_none_or(|at| at.elapsed() >= RunLog::FLUSH_INTERVAL);
    let (Some(fetch), true) = (&scope.fetch, due && logs.lines.len() > logs.flushed) else { return Ok(()) };
    logs.flushed_at = Some(std::time::Instant::now());
    // Following a run live must never fail it: lines not written now are
    // written with the finished run.
    match fetch.store.append_sync_run_logs(fetch.sync_run_id, &logs.lines[logs.flushed..]).await {
        Ok(()) => logs.flushed = logs.lines.len(),
        Err(error) => {
            tracing::warn!(run = fetch.sync_run_id, error = %format!("{error:#}"), "writing log lines early failed")
        }
    }
    Ok(())
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
    /// Lines already written to the run by [`flush`], from the first.
    pub flushed: usize,
    pub flushed_at: Option<std::time::Instant>,
}

impl RunLog {
    /// Progress is shown to people; more than a few writes a second is waste.
    pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
    /// Lines followed live may lag this much; writing them costs a statement.
    pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

    pub fn new(max_lines: usize, max_line_bytes: usize) -> RunLog {
        RunLog {
            max_lines,
            max_line_bytes,
            lines: Vec::new(),
            dropped: 0,
            progress_written: None,
            progress_unsaved: None,
            flushed: 0,
            flushed_at: None,
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

    /// The lines not yet written (see [`flush`]) in time order, with a note
    /// when the cap dropped some.
    pub fn into_lines(self) -> Vec<LogLine> {
        let mut lines = self.lines;
        let last_at = lines.iter().map(|l| l.at).max().unwrap_or_default();
        lines.drain(..self.flushed);
        lines.sort_by_key(|l| l.at);
        if self.dropped > 0 {
            lines.push(LogLine {
                at: last_at,
                level: "warn".into(),
                message: format!("{} further log lines were dropped (limit per run)", self.dropped),
            });
        }
        lines
    }
}
