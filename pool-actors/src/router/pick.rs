//! Picking a worker for a task: eligibility, fair rotation, half-open
//! probes, and a dependency whose breaker is open.

use std::ops::Bound;

use candado::BreakerState;
use tokio::time::Instant;

use super::{Router, Slot};
use crate::messages::WorkerKey;
use crate::store::TaskStore;
use crate::{deadline, Dispatch, TaskHandler, TaskId};

impl<H: TaskHandler, S: TaskStore<H>> Router<H, S> {
    /// `Some(retry time)` if the task's dependency may not be called now.
    pub(super) fn dependency_closed(&self, id: TaskId) -> Option<Instant> {
        let breakers = self.breakers.as_ref()?;
        let dependency = self.store.options(id)?.dependency.as_deref()?;
        if breakers.allow_dependency(dependency) {
            return None;
        }
        // Half-open with every probe out: look again a tick later.
        Some(
            breakers
                .dependency_open_until(dependency)
                .unwrap_or_else(|| deadline::after(self.now, self.settings.tick)),
        )
    }

    pub(super) fn eligible(&self, slot: &Slot<H>, capability: Option<&str>) -> bool {
        self.open(slot) && capability.is_none_or(|c| slot.capabilities.contains(c))
    }

    /// Workers that may take a task, in fair order: the ones after the
    /// cursor first, then from the start.
    pub(super) fn rotation(&self) -> impl Iterator<Item = (WorkerKey, &Slot<H>)> {
        let (after, before) = match self.cursor {
            Some(c) => (
                self.free.range((Bound::Excluded(c), Bound::Unbounded)),
                self.free.range(..=c).take(usize::MAX),
            ),
            None => (self.free.range(..), self.free.range(..).take(0)),
        };
        after
            .chain(before)
            .filter_map(|&key| Some((key, self.slot(key)?)))
    }

    /// The next worker for a task needing `capability`, and whether taking
    /// it used a probe of its half-open breaker.
    pub(super) fn pick_worker(&mut self, capability: Option<&str>) -> Option<(WorkerKey, bool)> {
        // Half-open workers that refused a probe; rare, so no allocation up front.
        let mut refused: Vec<WorkerKey> = Vec::new();
        loop {
            let (candidate, state) = {
                let mut candidates = self
                    .rotation()
                    .filter(|(key, slot)| !refused.contains(key) && self.eligible(slot, capability))
                    // An open breaker is in service only past the ejection
                    // limit: it takes work as if closed.
                    .map(|(key, slot)| (key, slot, self.breaker_state(key)));
                match self.settings.dispatch {
                    Dispatch::RoundRobin => candidates.next(),
                    // `min_by_key` keeps the first minimum: the first after the cursor.
                    Dispatch::LeastLoaded => candidates.min_by_key(|(_, s, _)| s.in_flight.len()),
                }
                .map(|(key, _, state)| (key, state))
            }?;
            let half_open = state == Some(BreakerState::HalfOpen);
            if half_open
                && !self.workers[candidate]
                    .breaker
                    .as_ref()
                    .is_some_and(|b| b.allow_at(self.now))
            {
                refused.push(candidate);
                continue;
            }
            self.cursor = Some(candidate);
            return Some((candidate, half_open));
        }
    }

    pub(super) fn breaker_state(&self, worker: WorkerKey) -> Option<BreakerState> {
        let breaker = self.workers[worker].breaker.as_ref()?;
        Some(breaker.state_at(self.now))
    }
}
