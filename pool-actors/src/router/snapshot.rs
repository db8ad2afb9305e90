//! The metrics snapshot, built from the router's books.

use candado::HealthStatus;
use tokio::time::Instant;

use super::Router;
use crate::metrics::{
    HealthSection, PerformanceSection, PoolMetrics, PoolSection, TasksSection, WorkerStatus,
    WorkersSection,
};
use crate::store::TaskStore;
use crate::TaskHandler;

impl<H: TaskHandler, S: TaskStore<H>> Router<H, S> {
    /// What it adds to the pool's metrics (see `merge.rs`).
    pub(crate) fn metrics_part(&self) -> super::merge::Part {
        super::merge::Part {
            metrics: self.metrics(),
            latency: self.stats.latency.clone(),
            queue_wait: self.stats.queue_wait.clone(),
            attempts: self.stats.attempts,
            worker_starts: self.stats.worker_starts,
        }
    }

    pub(crate) fn metrics(&self) -> PoolMetrics {
        let now = Instant::now();
        let slots = self.slots().map(|(_, slot)| slot);
        // A worker runs at most `concurrency` tasks at once; the rest of
        // what it holds was handed over in a batch and waits its turn.
        let concurrency = self.settings.concurrency;
        let running = |s: &super::Slot<H>| s.in_flight.len().min(concurrency);
        let in_flight: usize = slots.clone().map(running).sum();
        let held: usize = slots.clone().map(|s| s.in_flight.len()).sum();
        let reuse = super::merge::reuse(self.stats.worker_starts, self.stats.attempts);
        PoolMetrics {
            pool: PoolSection {
                name: self.settings.name.clone(),
                size: slots.clone().filter(|s| !s.draining).count(),
                uptime_ms: self.ms(now),
            },
            workers: WorkersSection {
                total: slots.clone().count(),
                ready: slots
                    .clone()
                    .filter(|s| s.in_flight.is_empty() && self.eligible(s, None))
                    .count(),
                busy: slots.clone().filter(|s| !s.in_flight.is_empty()).count(),
                unhealthy: slots
                    .clone()
                    .filter(|s| s.health == HealthStatus::Critical)
                    .count(),
                isolated: slots.clone().filter(|s| s.isolated || s.draining).count(),
                ejected: slots.clone().filter(|s| s.ejected).count(),
            },
            tasks: TasksSection {
                submitted: self.stats.submitted,
                completed: self.stats.completed,
                failed: self.stats.failed,
                retried: self.stats.retried,
                dead_lettered: self.stats.dead_lettered,
                returned: self.stats.returned,
                queued: (self.store.ready() + self.store.delayed()) as u64,
                ready_by_priority: self.store.ready_by_priority(),
                in_flight: in_flight as u64,
                reserved: (held - in_flight) as u64,
            },
            performance: PerformanceSection {
                worker_reuse_rate: reuse,
                restarts_by_reason: self.stats.restarts.clone(),
                latency_ms: self.stats.latency.recent(now),
                queue_wait_ms: self.stats.queue_wait.recent(now),
                latency_lifetime_ms: self.stats.latency.all_time(),
                queue_wait_lifetime_ms: self.stats.queue_wait.all_time(),
                latency_buckets: self.stats.latency.all_time_buckets(),
                queue_wait_buckets: self.stats.queue_wait.all_time_buckets(),
            },
            health: HealthSection {
                status: if self.failed.is_some() {
                    HealthStatus::Critical
                } else {
                    slots
                        .clone()
                        .map(|s| s.health)
                        .max()
                        .unwrap_or(HealthStatus::Healthy)
                },
                ready: self.failed.is_none()
                    && matches!(self.phase, super::Phase::Running)
                    && self.slots().any(|(_, s)| self.in_service(s)),
                failed: self.failed.clone(),
                alerts: self.stats.alerts.iter().cloned().collect(),
            },
            // By name, like every listing of workers.
            per_worker: self
                .keys
                .iter()
                .filter_map(|(name, &key)| {
                    let worker = &self.workers[key];
                    Some((name, worker.completed, worker.slot.as_ref()?))
                })
                .map(|(id, completed, s)| WorkerStatus {
                    id: id.to_string(),
                    incarnation: s.incarnation,
                    in_flight: running(s),
                    reserved: s.in_flight.len() - running(s),
                    completed,
                    health: s.health,
                    isolated: s.isolated,
                    draining: s.draining,
                    pid: s.process.as_ref().and_then(|p| p.read().0),
                    rss_bytes: s.process.as_ref().and_then(|p| p.read().1),
                    capabilities: {
                        let mut c: Vec<String> = s
                            .capabilities
                            .iter()
                            .filter(|c| !c.starts_with(crate::messages::ADDRESSED))
                            .cloned()
                            .collect();
                        c.sort();
                        c
                    },
                })
                .collect(),
        }
    }
}
