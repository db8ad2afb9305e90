//! Which workers are in service: room for work, breakers tripping and
//! cooling down, the ejection limit on breakers, and the fail-over of tasks
//! held by a worker that leaves service for its health.

use std::sync::atomic::Ordering;

use candado::HealthStatus;
use tokio::time::Instant;

use super::keyset::KeySet;
use super::{Router, Slot};
use crate::messages::{Effect, ThreadTag, WorkerKey};
use crate::store::TaskStore;
use crate::{AttemptError, TaskHandler, TaskId};

impl<H: TaskHandler, S: TaskStore<H>> Router<H, S> {
    /// The most workers breakers may hold out of service now, across the
    /// pool's routers.
    fn ejection_limit(&self) -> usize {
        let live = self.gauges.live_workers.load(Ordering::SeqCst);
        live * usize::from(self.settings.max_ejected_percent.min(100)) / 100
    }

    /// Takes a place under the ejection limit, shared by the pool's
    /// routers; whether there was one.
    fn reserve_ejection(&self, limit: usize) -> bool {
        self.gauges
            .ejected
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |out| {
                (out < limit).then_some(out + 1)
            })
            .is_ok()
    }

    /// Brings every worker's `ejected` flag up to date: a worker whose
    /// breaker cooldown ended comes back; a tripped worker leaves service
    /// while fewer than the limit are out, the ones tripped earliest first;
    /// past the limit, tripped workers keep taking work, so breakers alone
    /// never stop the pool. Workers that leave fail over what they hold.
    pub(super) fn reconsider_ejections(&mut self) {
        let mut changed: Vec<WorkerKey> = Vec::new();
        for (key, slot) in self.workers.iter_mut().enumerate() {
            let Some(slot) = slot.slot.as_mut() else {
                continue;
            };
            if slot.ejected && slot.tripped.is_none() {
                slot.ejected = false;
                self.gauges.ejected.fetch_sub(1, Ordering::SeqCst);
                changed.push(key);
            }
        }
        let limit = self.ejection_limit();
        let waiting: Vec<WorkerKey> = self
            .tripped
            .iter()
            .map(|&(_, key)| key)
            .filter(|&key| self.slot(key).is_some_and(|s| !s.ejected))
            .collect();
        let mut ejected = Vec::new();
        let mut full = false;
        for key in waiting {
            if self.slot(key).is_none() {
                continue;
            }
            if !self.reserve_ejection(limit) {
                full = true;
                break;
            }
            if let Some(slot) = self.slot_mut(key) {
                slot.ejected = true;
                changed.push(key);
                ejected.push(key);
            }
        }
        if full {
            tracing::debug!(
                pool = %self.settings.name,
                limit,
                tripped = self.tripped.len(),
                "ejection limit reached: workers with open breakers keep taking work"
            );
        }
        for key in changed {
            self.refresh_room(key);
        }
        for key in ejected {
            self.fail_over(key, "breaker open");
        }
    }

    /// Worker `key` left service for its health while holding tasks: each
    /// fails over now (one attempt spent, then retried elsewhere or
    /// dead-lettered), whether or not its restart may run yet. The
    /// attempts are cancelled; should one still finish, its late result is
    /// ignored. A draining worker finishes what it holds.
    pub(super) fn fail_over(&mut self, key: WorkerKey, why: &str) {
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        if slot.draining || slot.in_flight.is_empty() {
            return;
        }
        let mut ids: Vec<TaskId> = slot.in_flight.drain().collect();
        let inbox = slot.inbox.clone();
        ids.sort_unstable();
        let name = self.name(key).clone();
        for id in ids {
            if let Some((_, running)) = self.store.running(id) {
                running.cancelled.store(true, Ordering::Relaxed);
            }
            self.effects.push(Effect::Cancel(inbox.clone(), id));
            self.fail_attempt(id, AttemptError::WorkerLost(format!("{name}: {why}")));
        }
        self.refresh_room(key);
        self.check_drains();
    }

    /// Whether `slot` may take a task now, whatever the task needs.
    pub(super) fn open(&self, slot: &Slot<H>) -> bool {
        self.in_service(slot) && slot.in_flight.len() < self.settings.concurrency
    }

    /// Whether `slot` takes work at all: not draining, held out, stuck,
    /// ejected or critical (whatever it holds now).
    pub(super) fn in_service(&self, slot: &Slot<H>) -> bool {
        !slot.draining && !self.unfit(slot)
    }

    /// Whether `slot` is out of service for its health (not for draining):
    /// the tasks it holds then fail over to other workers.
    pub(super) fn unfit(&self, slot: &Slot<H>) -> bool {
        slot.held_out || slot.stuck || slot.ejected || slot.health == HealthStatus::Critical
    }

    /// Task `id` leaves worker `worker`'s slot; returns whether that left a
    /// draining worker idle (the caller then checks the drains).
    pub(super) fn leave_slot(&mut self, worker: WorkerKey, id: TaskId) -> bool {
        self.slot_mut(worker).is_some_and(|slot| {
            slot.in_flight.remove(&id);
            slot.draining && slot.in_flight.is_empty()
        })
    }

    /// Takes worker `key` out of `free` while its breaker is open, and has
    /// the clock look again when the cooldown ends.
    pub(super) fn trip_if_open(&mut self, key: WorkerKey) {
        let now = self.now;
        let Some(until) = self.workers[key]
            .breaker
            .as_ref()
            .and_then(|b| b.open_until_at(now))
        else {
            return;
        };
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        if let Some(before) = slot.tripped.replace(until) {
            self.tripped.remove(&(before, key));
        }
        self.tripped.insert((until, key));
        self.wake_clock_by(until);
        self.reconsider_ejections();
    }

    /// Workers whose breaker cooldown has ended are back in `free` (their
    /// breaker is half-open: it lets its probes through).
    pub(crate) fn untrip_due(&mut self, now: Instant) {
        while let Some(&(until, key)) = self.tripped.first() {
            if until > now {
                return;
            }
            self.tripped.pop_first();
            if let Some(slot) = self.slot_mut(key).filter(|s| s.tripped == Some(until)) {
                slot.tripped = None;
                self.reconsider_ejections();
            }
        }
    }

    /// Brings `worker`'s place in `free` up to date after a change to its
    /// slot (or its removal).
    pub(super) fn refresh_room(&mut self, worker: WorkerKey) {
        match self.slot(worker) {
            Some(slot) => {
                let (open, thread) = (self.open(slot), slot.thread);
                if self.in_service(slot) {
                    self.serving.insert(worker);
                } else {
                    self.serving.remove(&worker);
                }
                self.set_free(worker, thread, open);
            }
            // Gone: its thread is unknown now, so out of every thread's set.
            None => {
                self.serving.remove(&worker);
                if self.free.remove(&worker) {
                    for on in &mut self.free_on {
                        on.remove(&worker);
                    }
                }
            }
        }
    }

    /// Puts worker `worker` (running on `thread`) in `free` and `free_on`,
    /// or takes it out of both.
    pub(super) fn set_free(&mut self, worker: WorkerKey, thread: ThreadTag, free: bool) {
        if free {
            if self.free.insert(worker) {
                let index = thread as usize;
                if self.free_on.len() <= index {
                    self.free_on.resize_with(index + 1, KeySet::default);
                }
                self.free_on[index].insert(worker);
            }
        } else if self.free.remove(&worker) {
            if let Some(on) = self.free_on.get_mut(thread as usize) {
                on.remove(&worker);
            }
        }
    }
}
