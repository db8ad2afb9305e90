//! The worker's stderr: each line to `tracing`, the last few kept for the
//! exit reason.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Longer lines are cut here, so a worker that writes no newline cannot
/// make the parent hold its whole output.
const MAX_LINE: usize = 4096;

/// Lines kept from the last panic report: its header and message.
const PANIC_LINES: usize = 16;

/// The last lines a worker wrote to stderr, and its last panic report.
#[derive(Debug, Clone, Default)]
pub(crate) struct StderrTail {
    inner: Arc<Mutex<Kept>>,
}

#[derive(Debug, Default)]
struct Kept {
    lines: VecDeque<String>,
    /// From the last `panicked at` line on, until its backtrace: a
    /// backtrace longer than the tail must not push the message out.
    panic: Vec<String>,
    in_panic: bool,
}

impl StderrTail {
    fn push(&self, line: String, keep: usize) {
        let mut kept = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if line.contains("panicked at") {
            kept.panic = vec![line.clone()];
            kept.in_panic = true;
        } else if kept.in_panic {
            if line.starts_with("note: ") || line.starts_with("stack backtrace:") {
                kept.in_panic = false;
            } else if kept.panic.len() < PANIC_LINES {
                kept.panic.push(line.clone());
            }
        }
        kept.lines.push_back(line);
        while kept.lines.len() > keep {
            kept.lines.pop_front();
        }
    }

    /// The lines kept, oldest first.
    pub(crate) fn lines(&self) -> Vec<String> {
        let kept = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        kept.lines.iter().cloned().collect()
    }

    /// The last panic report (header and message), if any.
    pub(crate) fn panic(&self) -> Vec<String> {
        let kept = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        kept.panic.clone()
    }
}

/// Reads stderr to its end: logs each line and keeps the last `keep`.
pub(crate) async fn drain(
    stderr: impl AsyncRead + Unpin,
    tail: StderrTail,
    keep: usize,
    child: String,
    pid: u32,
) {
    drain_stream(stderr, "stderr", tail, keep, child, pid).await;
}

/// Reads `stream` (named `name` in the logs: `stdout`, `stderr`) to its
/// end: logs each line and keeps the last `keep` in `tail`.
pub(crate) async fn drain_stream(
    mut stderr: impl AsyncRead + Unpin,
    name: &'static str,
    tail: StderrTail,
    keep: usize,
    child: String,
    pid: u32,
) {
    let mut buf = vec![0u8; 8192];
    let mut line = Vec::new();
    let emit = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line).into_owned();
        line.clear();
        tracing::info!(target: "candado_process::stderr", child = %child, pid, stream = name, "{text}");
        tail.push(text, keep);
    };
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &byte in &buf[..n] {
            if byte == b'\n' {
                emit(&mut line);
            } else if line.len() < MAX_LINE {
                line.push(byte);
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_lines_and_cuts_long_ones() {
        let tail = StderrTail::default();
        let mut input = b"one\ntwo\nthree\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        drain(&input[..], tail.clone(), 2, "t".into(), 1).await;
        let lines = tail.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "three");
        assert_eq!(lines[1].len(), MAX_LINE);
    }

    #[tokio::test]
    async fn a_panic_report_survives_a_long_backtrace() {
        let tail = StderrTail::default();
        let mut input =
            "thread 'x' panicked at a.rs:1:1:\nthe message\nstack backtrace:\n".to_owned();
        for i in 0..100 {
            input.push_str(&format!("  {i}: frame\n"));
        }
        drain(input.as_bytes(), tail.clone(), 5, "t".into(), 1).await;
        assert_eq!(
            tail.panic(),
            ["thread 'x' panicked at a.rs:1:1:", "the message"]
        );
        assert_eq!(tail.lines().len(), 5);
    }
}
