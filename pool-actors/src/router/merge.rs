//! The pool's books and metrics, merged from its routers' (see
//! `routers.rs`): counts add up, latency histograms add up slot by slot
//! (the routers share their origin), workers are listed by name.

use tokio::time::Instant;

use crate::latency::LatencyHistogram;
use crate::metrics::PoolMetrics;
use crate::ShutdownReport;

/// What one router adds to the pool's metrics: its own snapshot, and what
/// the snapshot's figures were computed from.
pub(crate) struct Part {
    pub(crate) metrics: PoolMetrics,
    pub(crate) latency: LatencyHistogram,
    pub(crate) queue_wait: LatencyHistogram,
    pub(crate) attempts: u64,
    pub(crate) worker_starts: u64,
}

/// How often an attempt found its worker already running: 1 − starts per
/// attempt (0 with no attempt yet).
pub(crate) fn reuse(worker_starts: u64, attempts: u64) -> f64 {
    if attempts == 0 {
        0.0
    } else {
        (1.0 - worker_starts as f64 / attempts as f64).max(0.0)
    }
}

/// The routers' books, added up (a task moved between routers counts once:
/// where it was submitted, and where it ended).
pub(crate) fn books(reports: Vec<ShutdownReport>) -> ShutdownReport {
    let mut total = ShutdownReport {
        submitted: 0,
        completed: 0,
        dead_lettered: 0,
        returned: 0,
        unfinished: Vec::new(),
    };
    for report in reports {
        total.submitted += report.submitted;
        total.completed += report.completed;
        total.dead_lettered += report.dead_lettered;
        total.returned += report.returned;
        total.unfinished.extend(report.unfinished);
    }
    total.unfinished.sort_unstable();
    total
}

/// The routers' metrics (the first router's, then the others'), merged
/// into the pool's.
pub(crate) fn metrics(first: Part, parts: impl IntoIterator<Item = Part>) -> PoolMetrics {
    let now = Instant::now();
    let (mut latency, mut queue_wait) = (first.latency, first.queue_wait);
    let (mut attempts, mut starts) = (first.attempts, first.worker_starts);
    let mut m = first.metrics;
    for part in parts {
        let o = part.metrics;
        latency.add(&part.latency);
        queue_wait.add(&part.queue_wait);
        attempts += part.attempts;
        starts += part.worker_starts;
        m.pool.size += o.pool.size;
        m.pool.uptime_ms = m.pool.uptime_ms.max(o.pool.uptime_ms);
        let w = &mut m.workers;
        w.total += o.workers.total;
        w.ready += o.workers.ready;
        w.busy += o.workers.busy;
        w.unhealthy += o.workers.unhealthy;
        w.isolated += o.workers.isolated;
        w.ejected += o.workers.ejected;
        let t = &mut m.tasks;
        t.submitted += o.tasks.submitted;
        t.completed += o.tasks.completed;
        t.failed += o.tasks.failed;
        t.retried += o.tasks.retried;
        t.dead_lettered += o.tasks.dead_lettered;
        t.returned += o.tasks.returned;
        t.queued += o.tasks.queued;
        t.in_flight += o.tasks.in_flight;
        t.reserved += o.tasks.reserved;
        for (priority, n) in o.tasks.ready_by_priority {
            *t.ready_by_priority.entry(priority).or_default() += n;
        }
        for (reason, n) in o.performance.restarts_by_reason {
            *m.performance.restarts_by_reason.entry(reason).or_default() += n;
        }
        let h = &mut m.health;
        h.status = h.status.max(o.health.status);
        h.ready |= o.health.ready;
        h.failed = h.failed.take().or(o.health.failed);
        h.alerts.extend(o.health.alerts);
        m.per_worker.extend(o.per_worker);
    }
    m.per_worker.sort_by(|a, b| a.id.cmp(&b.id));
    let p = &mut m.performance;
    p.worker_reuse_rate = reuse(starts, attempts);
    p.latency_ms = latency.recent(now);
    p.queue_wait_ms = queue_wait.recent(now);
    p.latency_lifetime_ms = latency.all_time();
    p.queue_wait_lifetime_ms = queue_wait.all_time();
    p.latency_buckets = latency.all_time_buckets();
    p.queue_wait_buckets = queue_wait.all_time_buckets();
    m
}
