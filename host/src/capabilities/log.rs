//! `log`: lines and progress kept with the sync run.

use super::CallScope;
use crate::store::sync_runs::{LogLine, LogTail};

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
    let (Some(fetch), true) = (&scope.fetch, due && logs.lines.len() > logs.written) else { return Ok(()) };
    logs.flushed_at = Some(std::time::Instant::now());
    logs.place_all();
    // Following a run live must never fail it: lines not written now are
    // written with the finished run, at the same places.
    let unwritten = &logs.lines[logs.written..];
    match fetch.store.append_sync_run_logs(fetch.sync_run_id, logs.written as i64, unwritten).await {
        Ok(()) => logs.written = logs.placed,
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
    /// Lines written to the run by [`flush`], from the first.
    pub written: usize,
    /// Lines whose places in the run's log are fixed, from the first: a
    /// write of them began. One cut off by the call's deadline may have
    /// landed, so they are written again at the same places.
    pub placed: usize,
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
            written: 0,
            placed: 0,
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

    /// Fix the places of all lines so far, those not placed yet in time
    /// order (what the plugin printed joins its log lines late).
    fn place_all(&mut self) {
        self.lines[self.placed..].sort_by_key(|l| l.at);
        self.placed = self.lines.len();
    }

    /// The lines not known written (see [`flush`]), with a note when the
    /// cap dropped some.
    pub fn into_tail(mut self) -> LogTail {
        let last_at = self.lines.iter().map(|l| l.at).max().unwrap_or_default();
        self.place_all();
        let mut lines = self.lines;
        lines.drain(..self.written);
        let mut tail = LogTail { after: self.written as i64, lines };
        if self.dropped > 0 {
            tail.lines.push(LogLine {
                at: last_at,
                level: "warn".into(),
                message: format!("{} further log lines were dropped (limit per run)", self.dropped),
            });
        }
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(tail: &LogTail) -> Vec<&str> {
        tail.lines.iter().map(|l| l.message.as_str()).collect()
    }

    #[test]
    fn lines_whose_write_was_cut_off_are_written_again_at_the_same_places() {
        let mut logs = RunLog::new(10, 100);
        logs.push(20, "info", "b".into());
        logs.push(30, "info", "c".into());
        // A flush fixes their places and begins writing them; the call's
        // deadline cuts it off before it learns the outcome.
        logs.place_all();
        assert_eq!((logs.written, logs.placed), (0, 2));
        // A line the plugin printed earlier joins the log after them.
        logs.push(10, "info", "stdout: a".into());
        let tail = logs.into_tail();
        // From the first line not known written, the placed ones where they
        // were (a write that landed kept them there), then the rest in time order.
        assert_eq!((tail.after, messages(&tail)), (0, vec!["b", "c", "stdout: a"]));
    }

    #[test]
    fn lines_not_placed_yet_are_written_in_time_order_after_those_written() {
        let mut logs = RunLog::new(2, 100);
        logs.push(20, "info", "b".into());
        logs.place_all();
        logs.written = logs.placed; // that write landed
        logs.push(40, "info", "d".into());
        logs.push(30, "info", "stdout: c".into()); // past the cap of 2
        let tail = logs.into_tail();
        assert_eq!(tail.after, 1);
        assert_eq!(messages(&tail), vec!["d", "1 further log lines were dropped (limit per run)"]);
        let mut logs = RunLog::new(10, 100);
        logs.push(40, "info", "d".into());
        logs.push(30, "info", "stdout: c".into());
        assert_eq!(messages(&logs.into_tail()), vec!["stdout: c", "d"]);
    }
}
