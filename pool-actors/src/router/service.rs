//! Which workers are in service: the ejection limit on breakers, and the
//! fail-over of tasks held by a worker that leaves service for its health.

use std::sync::atomic::Ordering;

use super::{Effect, Router, WorkerKey};
use crate::{AttemptError, TaskHandler, TaskId};

impl<H: TaskHandler> Router<H> {
    /// The most workers breakers may hold out of service now.
    fn ejection_limit(&self) -> usize {
        let live = self.slots().count();
        live * usize::from(self.settings.max_ejected_percent.min(100)) / 100
    }

    /// Brings every worker's `ejected` flag up to date: a worker whose
    /// breaker cooldown ended comes back; a tripped worker leaves service
    /// while fewer than the limit are out, the ones tripped earliest first;
    /// past the limit, tripped workers keep taking work, so breakers alone
    /// never stop the pool. Workers that leave fail over what they hold.
    pub(super) fn reconsider_ejections(&mut self) {
        let mut changed: Vec<WorkerKey> = Vec::new();
        let mut out = 0;
        for (key, slot) in self.workers.iter_mut().enumerate() {
            let Some(slot) = slot.slot.as_mut() else {
                continue;
            };
            if slot.ejected && slot.tripped.is_none() {
                slot.ejected = false;
                changed.push(key);
            }
            out += usize::from(slot.ejected);
        }
        let limit = self.ejection_limit();
        let waiting: Vec<WorkerKey> = self
            .tripped
            .iter()
            .map(|&(_, key)| key)
            .filter(|&key| self.slot(key).is_some_and(|s| !s.ejected))
            .collect();
        let mut ejected = Vec::new();
        for key in waiting {
            if out >= limit {
                break;
            }
            if let Some(slot) = self.slot_mut(key) {
                slot.ejected = true;
                out += 1;
                changed.push(key);
                ejected.push(key);
            }
        }
        if out >= limit && !self.tripped.is_empty() && out < self.tripped.len() {
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
        let addr = slot.addr.clone();
        ids.sort_unstable();
        let name = self.name(key).clone();
        for id in ids {
            if let Some(running) = self.tasks.get(&id).and_then(|r| r.running.as_ref()) {
                running.cancelled.store(true, Ordering::Relaxed);
            }
            self.effects.push(Effect::Cancel(addr.clone(), id));
            self.fail_attempt(id, AttemptError::WorkerLost(format!("{name}: {why}")));
        }
        self.refresh_room(key);
        self.check_drains();
    }
}
