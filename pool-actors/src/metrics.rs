//! Pool metrics: counters, percentiles and the serde snapshot.

use std::collections::BTreeMap;

use candado::{Alert, HealthStatus};
use serde::{Deserialize, Serialize};

/// Percentiles of a set of durations, in milliseconds, from an
/// HdrHistogram: p50, p90 and p99 are within 0.1% of the true value
/// (3 significant digits; hdr reports the highest value equivalent to
/// it), `max` is exact. Durations longer than a day count as a day.
/// All zero when nothing was recorded.
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
    /// How many durations these are computed from.
    #[serde(default)]
    pub count: u64,
}

/// Upper bounds, in milliseconds, of the buckets of [`DurationBuckets`]:
/// from 1 ms to a minute, about three per decade.
pub const BUCKET_BOUNDS_MS: [f64; 15] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0,
    30_000.0, 60_000.0,
];

/// A histogram of durations in fixed buckets (bounds
/// [`BUCKET_BOUNDS_MS`]), for exporters that want buckets rather than
/// percentiles (an OpenMetrics histogram). Read from the same
/// HdrHistogram as [`Percentiles`], so a duration counts in a bucket by its
/// value to 3 significant digits, and `sum_ms` is exact to 0.1%.
///
/// ```
/// use candado_pool::{DurationBuckets, BUCKET_BOUNDS_MS};
///
/// let none = DurationBuckets::default();
/// assert_eq!(none.count, 0);
/// // One count per bound, then the durations above the largest bound.
/// assert_eq!(DurationBuckets::empty().counts.len(), BUCKET_BOUNDS_MS.len() + 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DurationBuckets {
    /// Durations in each bucket (not cumulative): `counts[i]` are those
    /// above `BUCKET_BOUNDS_MS[i - 1]` and at most `BUCKET_BOUNDS_MS[i]`;
    /// the last entry, those above the largest bound. Empty when nothing
    /// was read.
    pub counts: Vec<u64>,
    /// How many durations.
    pub count: u64,
    /// Their sum, in milliseconds.
    pub sum_ms: f64,
}

impl DurationBuckets {
    /// No durations, one zero count per bucket.
    pub fn empty() -> Self {
        Self {
            counts: vec![0; BUCKET_BOUNDS_MS.len() + 1],
            count: 0,
            sum_ms: 0.0,
        }
    }

    /// Counts `n` durations of `ms` milliseconds.
    pub(crate) fn add(&mut self, ms: f64, n: u64) {
        let bucket = BUCKET_BOUNDS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(BUCKET_BOUNDS_MS.len());
        if self.counts.len() <= bucket {
            self.counts.resize(BUCKET_BOUNDS_MS.len() + 1, 0);
        }
        self.counts[bucket] += n;
        self.count += n;
        self.sum_ms += ms * n as f64;
    }
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
    /// Submit-to-result latency of tasks completed in the recent window
    /// (the last 50 to 60 seconds on the pool's clock, in 10-second steps).
    pub latency_ms: Percentiles,
    /// Time tasks dispatched in the recent window waited in the queue.
    pub queue_wait_ms: Percentiles,
    /// Submit-to-result latency of every task completed since the pool
    /// started.
    #[serde(default)]
    pub latency_lifetime_ms: Percentiles,
    /// Queue wait of every dispatch since the pool started.
    #[serde(default)]
    pub queue_wait_lifetime_ms: Percentiles,
    /// Submit-to-result latency of every task completed since the pool
    /// started, in buckets (what `candado-observe` exports as a histogram).
    #[serde(default)]
    pub latency_buckets: DurationBuckets,
    /// Queue wait of every dispatch since the pool started, in buckets.
    #[serde(default)]
    pub queue_wait_buckets: DurationBuckets,
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
