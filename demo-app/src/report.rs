//! The run's report: a table for people, one JSON object for machines.

use std::collections::BTreeMap;
use std::fmt::Write;

use candado::{Alert, ShutdownSignal};
use candado_pool::Isolation;
use serde::{Deserialize, Serialize};

use crate::DurableSummary;

/// Latency of completed tasks, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// What one run did. `lost = submitted - completed - dead_lettered - returned`,
/// counted from the submitter's side (every task handle awaited).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Where the workers ran their tasks: `in_process` or `process`.
    pub isolation: Isolation,
    /// Tasks the pool accepted.
    pub submitted: u64,
    /// Tasks refused by backpressure (never accepted, so never lost).
    pub rejected: u64,
    /// Tasks that succeeded.
    pub completed: u64,
    /// Tasks dead-lettered after their retries.
    pub dead_lettered: u64,
    /// Tasks handed back at shutdown.
    pub returned: u64,
    /// Accepted tasks with none of the three outcomes. Must be 0.
    pub lost: i64,
    /// Whether the pool's own books agree with the submitter's count.
    pub books_agree: bool,
    /// Retries scheduled.
    pub retries: u64,
    /// Failed attempts.
    pub failed_attempts: u64,
    /// Worker restarts by reason (`panic`, `liveness`, `memory`, `age`, ...).
    pub restarts: BTreeMap<String, u64>,
    /// Times any breaker opened.
    pub breaker_opens: u64,
    /// Breaker openings of the flaky dependency that closed again by the end.
    pub dependency_breaker_closed: bool,
    /// Worker threads retired as stuck during the run.
    pub stuck_threads: u64,
    /// With process isolation: worker processes started (one per worker
    /// incarnation: the first ones and every replacement); 0 otherwise.
    pub processes_started: u64,
    /// With process isolation: worker processes that ended abnormally (killed
    /// by the pool, or dead of their own fault) and were replaced, by kind:
    /// `timeout` (a task ignored its timeout), `liveness`, `memory` (over its
    /// limit by measured RSS), `brake` (exited 42), `signal` (abort, SIGSEGV),
    /// `stack_overflow`, `panic`, `age` (recycled), ... Empty otherwise.
    pub processes_killed: BTreeMap<String, u64>,
    /// With process isolation: the memory those ends returned to the system,
    /// in bytes: the sum, over the worker processes that ended before the
    /// pool closed its books, of each one's RSS at its last measurement
    /// (every 50 ms; new processes are found within 200 ms) while it ran.
    /// 0 otherwise.
    pub memory_reclaimed_bytes: u64,
    /// Alerts delivered.
    pub alerts: Vec<Alert>,
    /// Submit-to-result latency of completed tasks.
    pub latency_ms: Latency,
    /// Wall time of the run.
    pub elapsed_ms: u64,
    /// Share of attempts that ran on an already running worker.
    pub worker_reuse_rate: f64,
    /// Workers at the end (with several nodes: of the nodes at the end).
    pub final_workers: usize,
    /// With `--store`: the durable queue, its nodes, and what the kill of
    /// a node cost (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable: Option<DurableSummary>,
    /// The signal that ended the task stream early (`SIGINT`, `SIGTERM`),
    /// if one did: the pool then drained what it had accepted.
    #[serde(default)]
    pub interrupted_by: Option<String>,
}

/// `k1 n1, k2 n2`, with the total first when there are several kinds, or
/// `none`.
fn counts(by_kind: &BTreeMap<String, u64>) -> String {
    if by_kind.is_empty() {
        return "none".to_owned();
    }
    let each = by_kind
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    if by_kind.len() == 1 {
        each
    } else {
        format!("{} ({each})", by_kind.values().sum::<u64>())
    }
}

impl Report {
    /// Whether the run's accounting adds up and nothing was lost.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.books_agree
    }

    /// The demo's exit status for this report: 1 if anything was lost or
    /// the books disagree; else 130 after a SIGINT (143 after a SIGTERM)
    /// ended the task stream early, as a shell reports an interrupted
    /// program; else 0.
    pub fn exit_status(&self) -> u8 {
        match self.interrupted_by.as_deref() {
            _ if !self.ok() => 1,
            Some("SIGTERM") => ShutdownSignal::Terminate.exit_code(),
            Some(_) => ShutdownSignal::Interrupt.exit_code(),
            None => 0,
        }
    }

    /// A human-readable table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(out, "  {k:<30} {v}");
        };
        row("scenario", self.scenario.clone());
        let isolation = match self.isolation {
            Isolation::InProcess => "in_process (workers are actors in the demo's process)",
            Isolation::Process => "process (each worker runs its tasks in a process of its own)",
        };
        row("isolation", isolation.to_owned());
        row(
            "elapsed",
            format!("{:.1} s", self.elapsed_ms as f64 / 1000.0),
        );
        if let Some(signal) = &self.interrupted_by {
            row("interrupted by", format!("{signal} (the pool drained)"));
        }
        row("submitted", self.submitted.to_string());
        row("  completed", self.completed.to_string());
        row("  dead-lettered", self.dead_lettered.to_string());
        row("  returned at shutdown", self.returned.to_string());
        row("  LOST", self.lost.to_string());
        row("rejected (backpressure)", self.rejected.to_string());
        row("pool books agree", self.books_agree.to_string());
        row(
            "failed attempts / retries",
            format!("{} / {}", self.failed_attempts, self.retries),
        );
        row("worker restarts", counts(&self.restarts));
        row("breaker openings", self.breaker_opens.to_string());
        row(
            "dependency breaker closed again",
            self.dependency_breaker_closed.to_string(),
        );
        row("stuck threads retired", self.stuck_threads.to_string());
        if self.isolation == Isolation::Process {
            row(
                "worker processes started",
                self.processes_started.to_string(),
            );
            row("worker processes killed", counts(&self.processes_killed));
            row(
                "memory reclaimed",
                format!(
                    "{:.1} MiB",
                    self.memory_reclaimed_bytes as f64 / (1024.0 * 1024.0)
                ),
            );
        }
        row("alerts", self.alerts.len().to_string());
        row(
            "latency p50 / p99 / max",
            format!(
                "{:.1} / {:.1} / {:.1} ms",
                self.latency_ms.p50, self.latency_ms.p99, self.latency_ms.max
            ),
        );
        row(
            "worker reuse rate",
            format!("{:.1}%", self.worker_reuse_rate * 100.0),
        );
        row("workers at the end", self.final_workers.to_string());
        if let Some(durable) = &self.durable {
            durable.rows(&mut row);
        }
        let verdict = if self.ok() {
            "OK: every accepted task completed, was dead-lettered with its history, or was handed back"
        } else {
            "FAILED: the books do not add up"
        };
        let _ = writeln!(out, "\n  {verdict}");
        out
    }
}
