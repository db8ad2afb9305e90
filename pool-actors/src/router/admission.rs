//! Work beyond the pool's means: load shedding on a full queue
//! (`overflow = "discard_oldest"`), the hand-off that never queues, tasks
//! whose time to live ran out, and the rate limit on starts.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::{Phase, Router};
use crate::messages::{addressed_to, Effect, Submit, WorkerKey};
use crate::store::TaskStore;
use crate::{deadline, TaskHandler, TaskId};

/// Keys the router remembers for sticky routing before it forgets the
/// ones whose worker is gone (and, should that not be enough, all of them:
/// they are mapped again as their tasks come).
pub(crate) const MAX_KEYS: usize = 100_000;

/// The reason a task whose time to live ran out is dead-lettered with.
pub(crate) const EXPIRED: &str = "expired";
/// The reason a task discarded by load shedding is dead-lettered with.
pub(crate) const DISCARDED: &str = "discarded";

/// Why a broadcast copy whose worker `scale_down` removed is dead-lettered.
pub(crate) const WORKER_REMOVED: &str = "worker_removed";

impl<H: TaskHandler, S: TaskStore<H>> Router<H, S> {
    fn running(&self) -> bool {
        matches!(self.phase, Phase::Running) && self.failed.is_none()
    }

    /// Makes room for `n` new tasks, none more important than priority
    /// `least` (the least important of them), in a queue holding `bound`:
    /// the room that freed up since the caller looked, or else the `n`
    /// least important ready tasks, discarded (dead-lettered with reason
    /// `discarded`, and handed to the discard hook). Their places in the
    /// queue pass to the new tasks. All or nothing: `false` (nothing
    /// discarded) if fewer than `n` ready tasks are no more important than
    /// the newcomers.
    pub(crate) fn shed(&mut self, n: usize, least: u8, bound: usize) -> bool {
        if !self.running() {
            return false;
        }
        let room = self
            .gauges
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                w.checked_add(n).filter(|&t| t <= bound)
            });
        if room.is_ok() {
            return true;
        }
        let victims = self.store.worst_ready(n);
        if victims.len() < n || victims.iter().any(|&(_, priority)| priority < least) {
            return false;
        }
        for (id, _) in victims {
            if let Some(hook) = &self.on_discard {
                if let Some(copy) = self.store.dead_task(id, DISCARDED) {
                    self.effects.push(Effect::Discarded(hook.clone(), copy));
                }
            }
            tracing::warn!(task_id = id, "queue full: task discarded to make room");
            self.forget_expiry(id);
            self.dead_letter(id, DISCARDED);
        }
        true
    }

    /// Starts `submit` on a worker now (`None`), or hands it back
    /// (`Some`): accepted only if
    /// a worker in service has room for it at once (its capability, its
    /// dependency's breaker and the rate limit allowing). It never waits
    /// in the queue.
    pub(crate) fn hand_off(&mut self, submit: Submit<H>) -> Option<Submit<H>> {
        if !self.running() {
            return Some(submit);
        }
        let mut submit = submit;
        self.route_key(&mut submit);
        // What waits goes first.
        self.pump();
        if !self.has_room() || !self.rate_allows() {
            return Some(submit);
        }
        if let (Some(breakers), Some(dependency)) =
            (&self.breakers, submit.options.dependency.as_deref())
        {
            if !breakers.allow_dependency(dependency) {
                return Some(submit);
            }
        }
        let queue = submit
            .route
            .as_deref()
            .or(submit.options.capability.as_deref());
        let Some((worker, _probe)) = self.pick_worker(queue) else {
            return Some(submit);
        };
        let id = submit.id;
        self.stats.submitted += 1;
        // `dispatch` takes it off the waiting count.
        self.gauges.waiting.fetch_add(1, Ordering::Relaxed);
        let now = self.now;
        self.store.enqueue(submit, now);
        self.dispatch(id, worker, 1);
        None
    }

    /// Sticky routing: a task with a key is addressed to the worker its
    /// key maps to (the worker's own capability), mapping the key to the
    /// least loaded worker in service (with the task's capability) if it
    /// is new, or its worker restarted or retired. With no such worker,
    /// the task goes by its capability alone, and its key is mapped by
    /// the next task.
    pub(crate) fn route_key(&mut self, submit: &mut Submit<H>) {
        if submit.route.is_some() {
            return;
        }
        let Some(key) = submit.options.key.as_deref() else {
            return;
        };
        submit.route = self.key_route(key, submit.options.capability.as_deref());
    }

    /// The address of the worker `key` maps to, mapping it first if it is
    /// new or its worker restarted or is leaving (see
    /// [`route_key`](Self::route_key)); `None` with no worker in service.
    fn key_route(&mut self, key: &str, capability: Option<&str>) -> Option<String> {
        let live = |router: &Self, (worker, incarnation): (WorkerKey, u64)| {
            router
                .slot(worker)
                .is_some_and(|s| s.incarnation == incarnation && !s.draining)
        };
        let mapped = self.sticky.get(key).copied().filter(|&m| live(self, m));
        let target = match mapped {
            Some((worker, _)) => Some(worker),
            None => {
                let chosen = self
                    .slots()
                    .filter(|(_, s)| self.in_service(s))
                    .filter(|(_, s)| capability.is_none_or(|c| s.capabilities.contains(c)))
                    .min_by_key(|(_, s)| s.in_flight.len())
                    .map(|(worker, s)| (worker, s.incarnation));
                if let Some(mapping) = chosen {
                    if self.sticky.len() >= MAX_KEYS {
                        let stale: Vec<String> = self
                            .sticky
                            .iter()
                            .filter(|(_, &m)| !live(self, m))
                            .map(|(k, _)| k.clone())
                            .collect();
                        for k in stale {
                            self.sticky.remove(&k);
                        }
                        if self.sticky.len() >= MAX_KEYS {
                            self.sticky.clear();
                        }
                    }
                    self.sticky.insert(key.to_owned(), mapping);
                }
                chosen.map(|(worker, _)| worker)
            }
        };
        target.map(|worker| addressed_to(self.name(worker)))
    }

    /// Worker `worker` is leaving for good (drained by `scale_down`): the
    /// tasks waiting for it alone must not wait for ever. A keyed task is
    /// mapped to another worker (its key follows); a broadcast copy, which
    /// only that worker may run, is dead-lettered (reason
    /// `worker_removed`), so its broadcast ends.
    pub(super) fn readdress_leaving(&mut self, worker: WorkerKey) {
        let address = addressed_to(self.name(worker));
        for id in self.store.waiting_in(&address) {
            let Some(options) = self.store.options(id) else {
                continue;
            };
            let (key, capability) = (options.key.clone(), options.capability.clone());
            match key {
                Some(key) => {
                    let route = self.key_route(&key, capability.as_deref());
                    let now = self.now;
                    self.store.readdress(id, route.or(capability), now);
                }
                None => {
                    tracing::warn!(task_id = id, worker = %self.name(worker), "the worker a broadcast copy waits for is leaving: dead-lettered");
                    self.dead_letter_waiting(id, WORKER_REMOVED);
                }
            }
        }
    }

    /// Notes when task `id` (submitted at `submitted_at` with a time to
    /// live) expires.
    pub(super) fn note_expiry(
        &mut self,
        id: TaskId,
        submitted_at: Instant,
        ttl: std::time::Duration,
    ) {
        let at = deadline::after(submitted_at, ttl);
        self.expiries.insert((at, id));
        self.wake_clock_by(at);
    }

    /// Task `id` ends: its expiry is no longer watched.
    pub(super) fn forget_expiry(&mut self, id: TaskId) {
        if self.expiries.is_empty() {
            return;
        }
        if let Some(at) = self.store.expires_at(id) {
            self.expiries.remove(&(at, id));
        }
    }

    /// Whether task `id` may no longer start: its time to live ran out.
    pub(super) fn expired(&self, id: TaskId) -> bool {
        !self.expiries.is_empty() && self.store.expires_at(id).is_some_and(|at| at <= self.now)
    }

    /// Tasks whose time to live ran out while they waited in the queue are
    /// dead-lettered (reason `expired`), never run. One waiting for a
    /// retry or for its dependency's breaker, or running, is looked at
    /// again a `router_tick` later: it never starts (the dispatch checks
    /// too), and is dead-lettered once it is back in the queue.
    pub(crate) fn expire_due(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.expiries.first() {
            if at > now {
                return;
            }
            self.expiries.pop_first();
            if self.store.options(id).is_none() {
                continue;
            }
            if self.store.is_ready(id) {
                self.dead_letter_waiting(id, EXPIRED);
            } else {
                let again = deadline::after(now, self.settings.tick);
                self.expiries.insert((again, id));
                self.wake_clock_by(again);
            }
        }
    }

    /// Whether the rate limit lets an attempt start now; if not, the clock
    /// looks again when the next token is there.
    pub(super) fn rate_allows(&mut self) -> bool {
        let now = self.now;
        let Some(bucket) = &mut self.bucket else {
            return true;
        };
        if bucket.ready(now) {
            return true;
        }
        let at = bucket.next_token(now);
        // A sleeping clock is moved earlier; an awake one (`clock_at` is
        // `None` while it works) plans for the token itself (`clock_plan`):
        // nudging it from here would wake it again at once, for ever.
        if self.clock_at.is_some_and(|planned| at < planned) {
            self.clock_at = Some(at);
            self.nudge_clock = true;
        }
        false
    }
}
