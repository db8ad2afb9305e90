//! Dispatch: the pump that hands waiting tasks to workers with room, best
//! first; the batch handed back to a worker that settles while tasks queue
//! up; and the claim of one task for one worker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candado::BreakerState;

use super::keyset::KeySet;
use super::{Phase, Router};
use crate::deadline;
use crate::messages::{Effect, Run, Submit, ThreadTag, WorkerKey};
use crate::store::{Ready, Running, TaskStore};
use crate::{TaskHandler, TaskId, DEFAULT_PRIORITY};

impl<H: TaskHandler, S: TaskStore<H>> Router<H, S> {
    /// Dispatches waiting tasks, best first, while some worker can take them.
    pub(crate) fn pump(&mut self) {
        'dispatch: while self.store.ready() > 0 && self.has_room() {
            if !self.rate_allows() {
                return;
            }
            // Each capability's best task, best first.
            let mut below = None;
            while let Some(Ready {
                id,
                capability,
                rank,
            }) = self.store.next_ready(below)
            {
                below = Some(rank);
                if let Some((worker, probe)) = self.pick_worker(capability.as_deref()) {
                    if let Some(until) = self.dependency_closed(id) {
                        // Its dependency's breaker is open: park it until the
                        // cooldown ends (then probes may go through), and give
                        // back the worker's probe if it took one.
                        if probe {
                            if let Some(breaker) = &self.workers[worker].breaker {
                                breaker.release_probe_at(self.now);
                            }
                        }
                        self.delay(until, id);
                    } else {
                        self.dispatch(id, worker, 1);
                    }
                    continue 'dispatch;
                }
            }
            return;
        }
    }

    /// Whether `submit` may go to a worker without joining the ready queue:
    /// no task waits (none can be ahead of it), some worker is free, and it
    /// asks for nothing a dispatch from the queue would check (a
    /// capability or a route, a dependency, a token of the rate limit).
    /// Under light load (as many workers as callers, one caller) every task
    /// goes this way, and the queue's bookkeeping is spared.
    pub(super) fn skips_queue(&self, submit: &Submit<H>) -> bool {
        self.store.ready() == 0
            && self.has_room()
            && self.bucket.is_none()
            && submit.route.is_none()
            && submit.options.capability.is_none()
            && submit.options.dependency.is_none()
    }

    /// Hands `submit` (see [`skips_queue`](Self::skips_queue)) to the next
    /// worker, as the pump would; should no worker take it after all (a
    /// half-open breaker refusing a probe), it joins the queue.
    pub(super) fn dispatch_at_once(&mut self, submit: Submit<H>) {
        let (id, now) = (submit.id, self.now);
        self.store.hold(submit, now);
        match self.pick_worker(None) {
            Some((worker, _)) => self.dispatch(id, worker, 1),
            None => self.store.release(id, now),
        }
    }

    /// While every worker is busy and tasks still wait, hands the calling
    /// worker (which was just given its next task) more of the best ones, up
    /// to the batch it asked for: it runs them one after another and
    /// reports them together, so the lock is taken once per batch instead
    /// of once per task. Stops at the first task it may not take without
    /// the checks a normal dispatch makes (a capability it lacks, a
    /// dependency behind a breaker, its own breaker not closed).
    pub(crate) fn top_up_caller(&mut self) {
        let Some(caller) = self.caller else {
            return;
        };
        if self.handback.is_empty() || caller.batch <= 1 || !self.free.is_empty() {
            return;
        }
        if self
            .breaker_state(caller.worker)
            .is_some_and(|state| state != BreakerState::Closed)
        {
            return;
        }
        while self.handback.len() < caller.batch {
            if !self.rate_allows() {
                return;
            }
            let Some(Ready { id, capability, .. }) = self.store.next_ready(None) else {
                return;
            };
            let Some(slot) = self.slot(caller.worker) else {
                return;
            };
            let takes = self.in_service(slot)
                && capability.is_none_or(|c| slot.capabilities.contains(&c))
                && self
                    .store
                    .options(id)
                    .is_some_and(|o| o.dependency.is_none());
            if !takes {
                return;
            }
            let before = self.handback.len();
            self.dispatch(id, caller.worker, caller.batch);
            if self.handback.len() == before {
                return;
            }
        }
    }

    /// Tasks ready and waiting for a worker.
    pub(crate) fn queued(&self) -> usize {
        self.store.ready()
    }

    /// Whether some worker may take a task now (cheap: no breaker or
    /// capability checks). Under load every worker is full, and submitters
    /// only queue their tasks.
    pub(crate) fn has_room(&self) -> bool {
        !matches!(self.phase, Phase::Stopped(_)) && !self.free.is_empty()
    }

    /// Debug builds check after every call that `free` is exactly the set of
    /// open workers (the property tests run through here).
    pub(crate) fn debug_check_free(&self) {
        if cfg!(debug_assertions) {
            let open: KeySet = self
                .slots()
                .filter(|(_, slot)| self.open(slot))
                .map(|(key, _)| key)
                .collect();
            debug_assert_eq!(self.free, open, "the free set is out of date");
            let on: KeySet = self.free_on.iter().flat_map(KeySet::iter).collect();
            debug_assert_eq!(self.free, on, "the free sets by thread are out of date");
            for (thread, keys) in self.free_on.iter().enumerate() {
                for key in keys.iter() {
                    let thread = ThreadTag::try_from(thread).ok();
                    debug_assert_eq!(self.slot(key).map(|s| s.thread), thread);
                }
            }
        }
    }

    /// Starts task `id`'s next attempt on `worker`. The attempt goes back to
    /// the calling worker with the result of its call if it is that worker
    /// and fewer than `handback_room` tasks are handed back so far, and
    /// goes as a message otherwise.
    pub(super) fn dispatch(&mut self, id: TaskId, worker: WorkerKey, handback_room: usize) {
        self.gauges.waiting.fetch_sub(1, Ordering::Relaxed);
        if self.expired(id) {
            // Its time to live ran out: it never starts.
            self.dead_letter(id, super::admission::EXPIRED);
            return;
        }
        let now = self.now;
        let started_ms = self.ms(now);
        let Some(slot) = self.workers.get_mut(worker).and_then(|w| w.slot.as_mut()) else {
            return;
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let running = Running {
            worker,
            incarnation: slot.incarnation,
            started_ms,
            cancelled: cancelled.clone(),
        };
        let priority = self
            .store
            .options(id)
            .and_then(|o| o.priority)
            .unwrap_or(DEFAULT_PRIORITY);
        let Some(claimed) = self.store.claim(id, running) else {
            return;
        };
        if let Some(bucket) = &mut self.bucket {
            bucket.take(now);
        }
        self.stats
            .queue_wait
            .record(now, now.saturating_duration_since(claimed.queued_at));
        self.stats.attempts += 1;
        let timeout = claimed.timeout.unwrap_or(self.settings.task_timeout);
        slot.in_flight.insert(id);
        let full = slot.in_flight.len() >= self.settings.concurrency;
        let run = Run {
            id,
            attempt: claimed.attempt,
            priority,
            task: claimed.task,
            timeout,
            deadline: deadline::after(now, timeout),
            cancelled,
        };
        let to_caller = self.handback.len() < handback_room
            && self.caller.is_some_and(|c| {
                c.batch > 0 && c.incarnation == slot.incarnation && c.worker == worker
            });
        if to_caller {
            self.handback.push(run);
        } else {
            self.effects.push(Effect::Run(slot.inbox.clone(), run));
        }
        if full {
            let thread = slot.thread;
            self.set_free(worker, thread, false);
        }
    }
}
