//! Picking a worker for a task: eligibility, fair rotation, half-open
//! probes, and a dependency whose breaker is open.

use candado::BreakerState;
use tokio::time::Instant;

use super::{Router, Slot};
use crate::messages::{CallerWants, WorkerKey};
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
        self.free
            .rotation(self.cursor)
            .filter_map(|key| Some((key, self.slot(key)?)))
    }

    /// Records whether the calling worker's last attempts were quick.
    pub(super) fn note_quick(&mut self, wants: CallerWants) {
        if let Some(slot) = self
            .slot_mut(wants.worker)
            .filter(|s| s.incarnation == wants.incarnation)
        {
            slot.quick = wants.quick;
        }
        self.quick = wants.quick;
    }

    /// A free worker on the calling thread whose attempts are quick, for a
    /// task needing `capability`, in fair order (with `least_loaded`, only
    /// one among the least loaded), and whether taking it used a probe of
    /// its half-open breaker: handing it the task and sending its reply
    /// back wake no other thread. Longer tasks are not kept on one thread:
    /// they go round the workers, so that they run side by side.
    fn pick_here(&self, capability: Option<&str>) -> Option<(WorkerKey, bool)> {
        let here = self.free_on.get(self.here as usize)?;
        let least = match self.settings.dispatch {
            Dispatch::RoundRobin => 0,
            Dispatch::LeastLoaded => self
                .free
                .iter()
                .filter_map(|key| self.slot(key))
                .filter(|slot| self.eligible(slot, capability))
                .map(|slot| slot.in_flight.len())
                .min()?,
        };
        here.rotation(self.cursor).find_map(|key| {
            let slot = self.slot(key)?;
            let fits = slot.quick
                && self.eligible(slot, capability)
                && (self.settings.dispatch == Dispatch::RoundRobin
                    || slot.in_flight.len() == least);
            if !fits {
                return None;
            }
            // A half-open breaker lets the task through only as a probe.
            match self.breaker_state(key) {
                Some(BreakerState::HalfOpen) => self.workers[key]
                    .breaker
                    .as_ref()
                    .is_some_and(|b| b.allow_at(self.now))
                    .then_some((key, true)),
                _ => Some((key, false)),
            }
        })
    }

    /// The next worker for a task needing `capability`, and whether taking
    /// it used a probe of its half-open breaker. A quick worker on the
    /// calling thread goes first (see [`pick_here`](Self::pick_here)).
    pub(super) fn pick_worker(&mut self, capability: Option<&str>) -> Option<(WorkerKey, bool)> {
        if let Some((key, probe)) = self.pick_here(capability) {
            self.cursor = Some(key);
            return Some((key, probe));
        }
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
