//! What the router learns from the worker supervisor: health, isolation,
//! stuck workers, restarts and alerts. Restart counts come from the
//! supervisor's own running totals, so news that was missed (a lagging
//! subscription) is made good by the next news or by a resync.

use candado::{Alert, HealthStatus};

use super::Router;
use crate::store::TaskStore;
use crate::{PoolEvent, TaskHandler};

/// One worker as its supervisor sees it (for a resync).
#[derive(Debug)]
pub(crate) struct WorkerState {
    pub(crate) worker: String,
    pub(crate) status: HealthStatus,
    pub(crate) isolated: bool,
    /// Its restarts so far.
    pub(crate) restarts: u32,
    /// The metric key of its last exit's cause, if it exited.
    pub(crate) last_exit: Option<String>,
}

/// News from the worker supervisor.
#[derive(Debug)]
pub(crate) enum WorkerNews {
    Health {
        worker: String,
        status: HealthStatus,
        isolated: bool,
    },
    Restarted {
        worker: String,
        /// Its restarts so far (the supervisor's running total).
        restarts: u32,
    },
    Exited {
        worker: String,
        /// The incarnation that exited.
        incarnation: u64,
        reason: String,
    },
    Zombie {
        worker: String,
        reason: String,
    },
    Alert(Alert),
    /// Every worker's state, after news was missed.
    Resync(Vec<WorkerState>),
    /// The worker supervisor stopped for good, while the pool ran.
    SupervisorGone {
        reason: String,
        /// Stopped normally (the runtime shut down), not gave up.
        stopped: bool,
    },
}

impl<H: TaskHandler, S: TaskStore<H>> Router<H, S> {
    /// News from the worker supervisor's event stream.
    pub(crate) fn news(&mut self, news: WorkerNews) {
        match news {
            WorkerNews::Health {
                worker,
                status,
                isolated,
            } => self.health(&worker, status, isolated),
            WorkerNews::Exited {
                worker,
                incarnation,
                reason,
            } => {
                if let Some(&key) = self.keys.get(worker.as_str()) {
                    self.workers[key].last_exit = Some((incarnation, reason.clone()));
                }
                self.stats.last_exit.insert(worker, reason);
            }
            WorkerNews::Restarted { worker, restarts } => {
                let reason = self.stats.last_exit.remove(&worker);
                self.count_restarts(worker, restarts, reason);
            }
            WorkerNews::Zombie { worker, reason } => {
                if let Some(&key) = self.keys.get(worker.as_str()) {
                    if let Some(slot) = self.slot_mut(key) {
                        slot.stuck = true;
                    }
                    self.refresh_room(key);
                    self.fail_over(key, &format!("liveness: {reason}"));
                }
                self.emit(PoolEvent::ZombieDetected { worker, reason })
            }
            WorkerNews::Alert(alert) => {
                if self.stats.alerts.len() == 32 {
                    self.stats.alerts.pop_front();
                }
                self.stats.alerts.push_back(alert);
            }
            WorkerNews::Resync(states) => {
                for state in states {
                    self.health(&state.worker, state.status, state.isolated);
                    self.count_restarts(state.worker, state.restarts, state.last_exit);
                }
            }
            // The pool's routers shut down together (`Routers::news`).
            WorkerNews::SupervisorGone { stopped: true, .. } => {}
            WorkerNews::SupervisorGone { reason, .. } => self.workers_gone(&reason),
        }
    }

    /// Worker `worker`'s health and isolation, as its supervisor judges them.
    fn health(&mut self, worker: &str, status: HealthStatus, isolated: bool) {
        let Some(&key) = self.keys.get(worker) else {
            return;
        };
        // Isolation while its breaker is not closed is the breaker's: the
        // router judges that itself, within the ejection limit.
        let by_breaker = self
            .breaker_state(key)
            .is_some_and(|s| s != candado::BreakerState::Closed);
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        slot.health = status;
        slot.isolated = isolated;
        slot.held_out = isolated && !by_breaker;
        if status != HealthStatus::Critical && !isolated {
            // Recovered (a blocked thread let go): back in service.
            slot.stuck = false;
        }
        if isolated && by_breaker {
            // A breaker opened without the router seeing it (restored from
            // a snapshot, say): track it like one the router opened.
            self.trip_if_open(key);
        }
        self.refresh_room(key);
        if self.slot(key).is_some_and(|s| self.unfit(s)) {
            self.fail_over(key, "out of service");
        }
    }

    /// Counts worker `worker`'s restarts up to its supervisor's running
    /// `total` (restarts already counted are not counted again), under
    /// `reason`.
    fn count_restarts(&mut self, worker: String, total: u32, reason: Option<String>) {
        let seen = self.stats.restarts_seen.entry(worker).or_default();
        if total <= *seen {
            return;
        }
        let new = u64::from(total - *seen);
        *seen = total;
        let reason = reason.unwrap_or_else(|| "unknown".into());
        *self.stats.restarts.entry(reason).or_default() += new;
    }
}
