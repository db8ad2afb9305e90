//! The recent past of each pool, for the dashboard's charts: one point a
//! second, the last five minutes, sampled on the observer's own thread.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use candado_pool::PoolMetrics;
use serde::{Deserialize, Serialize};

use crate::observer::Inner;

/// How often a pool is sampled.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);

/// How many points are kept per pool: five minutes at one a second.
pub(crate) const POINTS: usize = 300;

/// One sample of a pool, as the dashboard charts it.
///
/// Rates are per second since the previous point (0 for the first); the
/// latencies are the pool's percentiles over its most recent tasks when
/// the point was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Tasks waiting: ready to run, or waiting for a retry.
    pub queued: u64,
    /// Tasks running on a worker.
    pub in_flight: u64,
    /// Workers in service and idle.
    pub workers_ready: usize,
    /// Tasks completed per second.
    pub completed_per_s: f64,
    /// Failed attempts per second.
    pub failed_per_s: f64,
    /// Tasks dead-lettered per second.
    pub dead_lettered_per_s: f64,
    /// Median submit-to-result latency, in milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile of the same.
    pub latency_p99_ms: f64,
}

/// The totals a rate is computed from.
#[derive(Debug, Clone, Copy)]
struct Totals {
    at_ms: u64,
    completed: u64,
    failed: u64,
    dead_lettered: u64,
}

#[derive(Debug, Default)]
struct Series {
    points: VecDeque<HistoryPoint>,
    last: Option<Totals>,
}

/// Every pool's recent points, by pool name.
#[derive(Debug, Default)]
pub(crate) struct History {
    pools: Mutex<BTreeMap<String, Series>>,
}

impl History {
    fn pools(&self) -> MutexGuard<'_, BTreeMap<String, Series>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the point of `metrics`, read at `at_ms`, to `pool`'s series
    /// (dropping the oldest past [`POINTS`]).
    pub(crate) fn record(&self, pool: &str, at_ms: u64, metrics: &PoolMetrics) {
        let tasks = &metrics.tasks;
        let totals = Totals {
            at_ms,
            completed: tasks.completed,
            failed: tasks.failed,
            dead_lettered: tasks.dead_lettered,
        };
        let mut pools = self.pools();
        let series = pools.entry(pool.to_owned()).or_default();
        let (completed, failed, dead) = match series.last {
            Some(last) if at_ms > last.at_ms => {
                let seconds = (at_ms - last.at_ms) as f64 / 1000.0;
                let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds;
                (
                    rate(totals.completed, last.completed),
                    rate(totals.failed, last.failed),
                    rate(totals.dead_lettered, last.dead_lettered),
                )
            }
            _ => (0.0, 0.0, 0.0),
        };
        series.last = Some(totals);
        if series.points.len() == POINTS {
            series.points.pop_front();
        }
        series.points.push_back(HistoryPoint {
            at_ms,
            queued: tasks.queued,
            in_flight: tasks.in_flight,
            workers_ready: metrics.workers.ready,
            completed_per_s: completed,
            failed_per_s: failed,
            dead_lettered_per_s: dead,
            latency_p50_ms: metrics.performance.latency_ms.p50,
            latency_p99_ms: metrics.performance.latency_ms.p99,
        });
    }

    /// `pool`'s points, oldest first.
    pub(crate) fn points(&self, pool: &str) -> Vec<HistoryPoint> {
        self.pools()
            .get(pool)
            .map(|s| s.points.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Samples every pool of the observer each [`PERIOD`] (the first at once),
/// until the observer is gone. A pool that does not answer within the probe
/// timeout gets no point this time.
pub(crate) async fn sample(observer: Weak<Inner>) {
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = observer.upgrade() else {
            return;
        };
        for pool in &inner.pools {
            let read = tokio::time::timeout(inner.probe_timeout, pool.metrics()).await;
            if let Ok(Ok(metrics)) = read {
                inner.history.record(pool.name(), now_ms(), &metrics);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::pool_metrics;

    #[test]
    fn rates_are_per_second_between_points_and_the_oldest_point_goes_first() {
        let history = History::default();
        let mut m = pool_metrics();
        m.tasks.completed = 10;
        m.tasks.queued = 7;
        history.record("p", 1_000, &m);
        m.tasks.completed = 30;
        m.tasks.failed = 4;
        history.record("p", 3_000, &m);
        let points = history.points("p");
        assert_eq!(points.len(), 2);
        assert_eq!(
            points[0].completed_per_s, 0.0,
            "no rate without a previous point"
        );
        assert_eq!(points[0].queued, 7);
        assert_eq!(points[1].completed_per_s, 10.0);
        assert_eq!(points[1].failed_per_s, 2.0);
        assert!(history.points("other").is_empty());

        for i in 0..POINTS as u64 {
            history.record("p", 4_000 + i * 1_000, &m);
        }
        let points = history.points("p");
        assert_eq!(points.len(), POINTS);
        assert_eq!(points[0].at_ms, 4_000, "the two first points were dropped");
    }
}
