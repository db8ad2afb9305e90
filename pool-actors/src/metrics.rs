//! Pool metrics: counters, latency samples and the serde snapshot.

use std::collections::{BTreeMap, VecDeque};

use candado::{Alert, HealthStatus};
use serde::{Deserialize, Serialize};

/// How many recent latencies the percentiles are computed from.
const SAMPLES: usize = 4096;

/// Recent durations in microseconds, for percentiles.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    recent: VecDeque<u64>,
}

impl Samples {
    pub(crate) fn record(&mut self, micros: u64) {
        if self.recent.len() == SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(micros);
    }

    pub(crate) fn summary(&self) -> Percentiles {
        let mut sorted: Vec<u64> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        let at = |q: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let index = ((sorted.len() - 1) as f64 * q).round() as usize;
            sorted[index] as f64 / 1000.0
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// Percentiles in milliseconds over the most recent samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The pool itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolSection {
    /// Pool name.
    pub name: String,
    /// Workers the pool is sized for now.
    pub size: usize,
    /// Milliseconds since the pool started.
    pub uptime_ms: u64,
}

/// Worker counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkersSection {
    /// Registered workers.
    pub total: usize,
    /// Registered, eligible and idle.
    pub ready: usize,
    /// Running at least one task.
    pub busy: usize,
    /// Critical health (a restart is pending or refused).
    pub unhealthy: usize,
    /// Isolated (brake, open breaker, deferred restart) or draining.
    pub isolated: usize,
    /// Out of service for an open breaker (never more than the breaker's
    /// `max_ejected_percent` of the pool).
    pub ejected: usize,
}

/// Task counters. At any time `submitted = completed + dead_lettered +
/// returned + queued + in_flight + reserved`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TasksSection {
    /// Accepted tasks (including replays).
    pub submitted: u64,
    /// Finished successfully.
    pub completed: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Sent to the dead-letter store.
    pub dead_lettered: u64,
    /// Handed back unfinished at shutdown.
    pub returned: u64,
    /// Waiting: ready to run, or waiting for a retry.
    pub queued: u64,
    /// Tasks ready to run, by their current priority (after promotion;
    /// priorities with none waiting are left out). Retries waiting for
    /// their delay are not in it: they are `queued` minus its sum.
    #[serde(default)]
    pub ready_by_priority: BTreeMap<u8, u64>,
    /// Running on a worker (at most `concurrency` per worker).
    pub in_flight: u64,
    /// Handed to a busy worker in a batch, to run after its current ones.
    pub reserved: u64,
}

/// Speed and churn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerformanceSection {
    /// Share of attempts that ran on an already running worker
    /// (1 − worker starts / attempts).
    pub worker_reuse_rate: f64,
    /// Worker restarts by reason (`panic`, `liveness`, `memory`, `age`,
    /// `tasks`, ...; a breaker never restarts a worker, it takes it out of
    /// service).
    pub restarts_by_reason: BTreeMap<String, u64>,
    /// Submit-to-result latency of completed tasks.
    pub latency_ms: Percentiles,
    /// Time tasks waited in the queue before dispatch.
    pub queue_wait_ms: Percentiles,
}

/// Health of the pool's supervision tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSection {
    /// Worst health of any worker (critical if the pool failed).
    pub status: HealthStatus,
    /// Whether the pool can take work now: running, not failed, and with
    /// a worker in service.
    pub ready: bool,
    /// Why the pool can run no more work, if its worker supervisor gave up.
    pub failed: Option<String>,
    /// Alerts delivered recently (newest last).
    pub alerts: Vec<Alert>,
}

/// One worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Worker id.
    pub id: String,
    /// Current incarnation.
    pub incarnation: u64,
    /// Tasks running on it (at most `concurrency`).
    pub in_flight: usize,
    /// Tasks handed to it in a batch, not started yet.
    pub reserved: usize,
    /// Tasks it completed (all incarnations).
    pub completed: u64,
    /// Its health.
    pub health: HealthStatus,
    /// Isolated from new work.
    pub isolated: bool,
    /// Being removed by a scale-down.
    pub draining: bool,
    /// Capabilities it advertises.
    pub capabilities: Vec<String>,
    /// Its process's id (`isolation = "process"` only).
    #[serde(default)]
    pub pid: Option<u32>,
    /// Its process's resident set size in bytes, as last measured (every
    /// `process.memory_interval`; `isolation = "process"` only).
    #[serde(default)]
    pub rss_bytes: Option<u64>,
}

/// A snapshot of a pool's metrics (serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolMetrics {
    /// The pool.
    pub pool: PoolSection,
    /// Workers.
    pub workers: WorkersSection,
    /// Tasks.
    pub tasks: TasksSection,
    /// Performance.
    pub performance: PerformanceSection,
    /// Health.
    pub health: HealthSection,
    /// Per-worker status.
    pub per_worker: Vec<WorkerStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_set() {
        let mut s = Samples::default();
        for ms in 1..=100u64 {
            s.record(ms * 1000);
        }
        let p = s.summary();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (51.0, 90.0, 99.0, 100.0));
        assert_eq!(Samples::default().summary(), Percentiles::default());
    }
}
