//! What a plugin prints. Its stdout and stderr become log lines of the call,
//! capped like the `log` capability's lines, and never fail it: a debug
//! `eprintln!` is ordinary, and a full pipe used to trap the plugin and carry
//! its output into the run's error. The last lines of stderr are also kept
//! apart, to explain a trap (a Rust panic message lands there).

use crate::clock::SharedClock;
use crate::store::sync_runs::LogLine;
use bytes::Bytes;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Lines of stderr kept to explain a trap.
const TAIL_LINES: usize = 5;

/// Bytes one write may hand over; the guest splits larger writes.
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipe {
    Stdout,
    Stderr,
}

/// The lines a call printed, bounded.
struct Printed {
    clock: SharedClock,
    max_lines: usize,
    max_line_bytes: usize,
    lines: Vec<LogLine>,
    dropped: usize,
    /// The unfinished line of each pipe, at most `max_line_bytes` of it.
    partial: [Vec<u8>; 2],
    /// Whether the unfinished line was cut.
    cut: [bool; 2],
    stderr_tail: VecDeque<String>,
}

impl Printed {
    fn write(&mut self, pipe: Pipe, mut bytes: &[u8]) {
        let i = pipe as usize;
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.append(i, &bytes[..end]);
            self.end_line(pipe);
            bytes = &bytes[end + 1..];
        }
        self.append(i, bytes);
    }

    fn append(&mut self, i: usize, bytes: &[u8]) {
        let room = self.max_line_bytes.saturating_sub(self.partial[i].len());
        self.partial[i].extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.cut[i] |= bytes.len() > room;
    }

    fn end_line(&mut self, pipe: Pipe) {
        let i = pipe as usize;
        let mut text = String::from_utf8_lossy(&std::mem::take(&mut self.partial[i])).into_owned();
        if std::mem::take(&mut self.cut[i]) {
            text.push_str(" [truncated]");
        }
        if pipe == Pipe::Stderr {
            if self.stderr_tail.len() == TAIL_LINES {
                self.stderr_tail.pop_front();
            }
            self.stderr_tail.push_back(text.clone());
        }
        if self.lines.len() >= self.max_lines {
            self.dropped += 1;
            return;
        }
        let (level, source) = match pipe {
            Pipe::Stdout => ("info", "stdout"),
            Pipe::Stderr => ("warn", "stderr"),
        };
        self.lines.push(LogLine { at: self.clock.now_ms(), level: level.into(), message: format!("{source}: {text}") });
    }
}

/// Both pipes of one call.
#[derive(Clone)]
pub struct PluginOutput(Arc<Mutex<Printed>>);

impl PluginOutput {
    pub fn new(clock: SharedClock, max_lines: usize, max_line_bytes: usize) -> PluginOutput {
        PluginOutput(Arc::new(Mutex::new(Printed {
            clock,
            max_lines,
            max_line_bytes,
            lines: Vec::new(),
            dropped: 0,
            partial: [Vec::new(), Vec::new()],
            cut: [false, false],
            stderr_tail: VecDeque::new(),
        })))
    }

    pub fn stdout(&self) -> impl StdoutStream + 'static {
        PipeWriter { output: self.clone(), pipe: Pipe::Stdout }
    }

    pub fn stderr(&self) -> impl StdoutStream + 'static {
        PipeWriter { output: self.clone(), pipe: Pipe::Stderr }
    }

    /// The lines printed and finished so far; unfinished ones stay.
    pub fn take_finished_lines(&self) -> Vec<LogLine> {
        std::mem::take(&mut self.0.lock().unwrap().lines)
    }

    /// The printed lines (unfinished ones included) and how many the cap dropped.
    pub fn take_lines(&self) -> (Vec<LogLine>, usize) {
        let mut printed = self.0.lock().unwrap();
        for pipe in [Pipe::Stdout, Pipe::Stderr] {
            if !printed.partial[pipe as usize].is_empty() {
                printed.end_line(pipe);
            }
        }
        (std::mem::take(&mut printed.lines), std::mem::take(&mut printed.dropped))
    }

    /// The last lines of stderr, unfinished one included, oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        let printed = self.0.lock().unwrap();
        let mut tail: Vec<String> = printed.stderr_tail.iter().cloned().collect();
        let partial = &printed.partial[Pipe::Stderr as usize];
        if !partial.is_empty() {
            tail.push(String::from_utf8_lossy(partial).into_owned());
        }
        tail
    }
}

#[derive(Clone)]
struct PipeWriter {
    output: PluginOutput,
    pipe: Pipe,
}

impl PipeWriter {
    fn write_bytes(&self, bytes: &[u8]) {
        self.output.0.lock().unwrap().write(self.pipe, bytes);
    }
}

impl IsTerminal for PipeWriter {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PipeWriter {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PipeWriter {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for PipeWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for PipeWriter {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn lines_are_split_capped_and_never_refused() {
        let output = PluginOutput::new(Arc::new(ManualClock::new(7)), 3, 8);
        let mut stderr = PipeWriter { output: output.clone(), pipe: Pipe::Stderr };
        stderr.write(Bytes::from_static(b"first\nsec")).unwrap();
        stderr.write(Bytes::from_static(b"ond line that is long\n")).unwrap();
        PipeWriter { output: output.clone(), pipe: Pipe::Stdout }.write_bytes(b"out\nx\ny\nunfinished");
        assert_eq!(output.stderr_tail(), vec!["first".to_string(), "second l [truncated]".into()]);
        let (lines, dropped) = output.take_lines();
        let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["stderr: first", "stderr: second l [truncated]", "stdout: out"]);
        assert_eq!((lines[0].level.as_str(), lines[2].level.as_str(), lines[0].at), ("warn", "info", 7));
        assert_eq!(dropped, 3, "x, y and the unfinished line");
    }
}
