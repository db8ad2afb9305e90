//! Workers coming and going, their health, draining, shutdown, and the
//! router's clock (retries, promotion, the shutdown deadline).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use candado::HealthStatus;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Phase, Router, Slot, Worker};
use crate::messages::{Effect, ProcessGauge, WorkerInbox, WorkerKey};
use crate::store::{Failed, TaskStore, Withdrawn};
use crate::{
    AttemptError, PoolEvent, ShutdownMode, ShutdownReport, TaskFailure, TaskHandler, TaskId,
    UnfinishedAction,
};

impl<H: TaskHandler, S: TaskStore<H>> Router<H, S> {
    /// A worker incarnation is up; returns its key (`None` if a newer
    /// incarnation already registered: this one is stale).
    pub(crate) fn register(
        &mut self,
        worker: Arc<str>,
        incarnation: u64,
        inbox: WorkerInbox<H::Task>,
        capabilities: Vec<String>,
        process: Option<Arc<ProcessGauge>>,
    ) -> Option<WorkerKey> {
        let key = match self.keys.get(&worker) {
            Some(&key) => key,
            None => {
                let key = self.workers.len();
                self.workers.push(Worker {
                    name: worker.clone(),
                    slot: None,
                    completed: 0,
                    breaker: self.breakers.as_ref().map(|b| b.child(&worker)),
                    last_exit: None,
                });
                self.keys.insert(worker, key);
                key
            }
        };
        if let Some(existing) = self.slot(key) {
            if existing.incarnation >= incarnation {
                return None;
            }
            // A new incarnation while the old one never said goodbye (a zombie).
            self.lose_worker(key, "replaced by a new incarnation");
        }
        self.stats.worker_starts += 1;
        self.live += 1;
        self.gauges.live_workers.fetch_add(1, Ordering::SeqCst);
        let own = crate::messages::addressed_to(self.name(key));
        self.workers[key].slot = Some(Slot {
            incarnation,
            // Workers register from their own thread.
            thread: self.here,
            quick: false,
            inbox,
            // Its own name as a capability too, for the copies of a
            // broadcast addressed to it.
            capabilities: capabilities
                .into_iter()
                .chain(std::iter::once(own))
                .collect(),
            in_flight: Default::default(),
            health: HealthStatus::Healthy,
            isolated: false,
            held_out: false,
            stuck: false,
            draining: false,
            tripped: None,
            ejected: false,
            process,
        });
        // Its breaker outlives incarnations: a replacement whose breaker is
        // open waits out the cooldown like its predecessor.
        self.trip_if_open(key);
        self.refresh_room(key);
        // One more worker: the ejection limit may have room again (only
        // tripped workers can be ejected: nothing to do without one, which
        // keeps starting many workers linear).
        if !self.tripped.is_empty() {
            self.reconsider_ejections();
        }
        let name = self.name(key).to_string();
        self.emit(PoolEvent::WorkerStarted {
            worker: name.clone(),
            incarnation,
        });
        if incarnation > 1 {
            // The exit of the incarnation before this one, if heard of.
            let reason = match self.workers[key].last_exit.take() {
                Some((exited, reason)) if exited + 1 == incarnation => Some(reason),
                _ => None,
            };
            self.emit(PoolEvent::WorkerRestarted {
                worker: name,
                incarnation,
                reason,
            });
        }
        // A replacement takes work from the queue at once, in priority
        // order: every call through `SharedRouter` ends with a dispatch.
        Some(key)
    }

    /// A worker incarnation is gone (its drop guard says so).
    pub(crate) fn unregister(&mut self, worker: &str, incarnation: u64) {
        let Some(&key) = self.keys.get(worker) else {
            return;
        };
        if self.slot(key).is_some_and(|s| s.incarnation == incarnation) {
            self.lose_worker(key, "exited");
        }
    }

    /// A worker incarnation is gone: every attempt it held failed.
    fn lose_worker(&mut self, worker: WorkerKey, reason: &str) {
        let Some(slot) = self.workers.get_mut(worker).and_then(|w| w.slot.take()) else {
            return;
        };
        self.live -= 1;
        self.serving.remove(&worker);
        self.gauges.live_workers.fetch_sub(1, Ordering::SeqCst);
        if slot.ejected {
            self.gauges.ejected.fetch_sub(1, Ordering::SeqCst);
        }
        self.set_free(worker, slot.thread, false);
        if let Some(until) = slot.tripped {
            self.tripped.remove(&(until, worker));
        }
        let name = self.name(worker).clone();
        let lost = slot.in_flight.len();
        let mut ids: Vec<TaskId> = slot.in_flight.into_iter().collect();
        ids.sort_unstable();
        for id in ids {
            self.fail_attempt(id, AttemptError::WorkerLost(format!("{name}: {reason}")));
        }
        self.emit(PoolEvent::WorkerExited {
            worker: name.to_string(),
            incarnation: slot.incarnation,
            lost_attempts: u32::try_from(lost).unwrap_or(u32::MAX),
        });
        self.check_drains();
        if !self.tripped.is_empty() {
            self.reconsider_ejections();
        }
    }

    /// Stops routing to `workers`; `reply` is answered once they hold no task.
    pub(crate) fn drain(&mut self, workers: &[String], reply: oneshot::Sender<()>) {
        // Names never registered hold no task: nothing to wait for.
        let set: HashSet<WorkerKey> = workers
            .iter()
            .filter_map(|w| self.keys.get(w.as_str()).copied())
            .collect();
        for &worker in &set {
            if let Some(slot) = self.slot_mut(worker) {
                slot.draining = true;
            }
            self.refresh_room(worker);
            self.readdress_leaving(worker);
        }
        self.drains.push((set, reply));
        self.check_drains();
    }

    pub(super) fn check_drains(&mut self) {
        if self.drains.is_empty() {
            return;
        }
        let drains = std::mem::take(&mut self.drains);
        let idle = |&w: &WorkerKey| self.slot(w).is_none_or(|s| s.in_flight.is_empty());
        let (done, pending): (Vec<_>, Vec<_>) = drains
            .into_iter()
            .partition(|(set, _)| set.iter().all(idle));
        self.drains = pending;
        for (set, reply) in done {
            // What was retried for them during the drain.
            for worker in set {
                self.readdress_leaving(worker);
            }
            let _ = reply.send(());
        }
    }

    /// Stops: graceful or immediate. `reply` gets the books. A call while
    /// a shutdown runs joins it (every caller gets the one report): a
    /// graceful call keeps the earlier of the two deadlines, an immediate
    /// one ends the drain now.
    pub(crate) fn shutdown(&mut self, mode: ShutdownMode, reply: oneshot::Sender<ShutdownReport>) {
        match &mut self.phase {
            Phase::Stopped(report) => {
                let _ = reply.send(report.clone());
                return;
            }
            Phase::Draining { replies } => replies.push(reply),
            // The pool says `DrainStarted` (see `Routers::shutdown`).
            Phase::Running => {
                self.phase = Phase::Draining {
                    replies: vec![reply],
                };
            }
        }
        self.gauges.closed.store(true, Ordering::SeqCst);
        match mode {
            ShutdownMode::Graceful { deadline } => {
                let at = crate::deadline::after(self.now, deadline);
                if self.deadline.is_none_or(|d| at < d) {
                    self.deadline = Some(at);
                    self.wake_clock_by(at);
                }
                self.check_finished();
            }
            ShutdownMode::Immediate { unfinished } => {
                let ids = self.abandon(unfinished);
                self.finish(ids);
            }
        }
    }

    /// The worker supervisor gave up (its restart intensity was exceeded):
    /// no worker will come back. Every task held is dead-lettered with its
    /// history, and tasks that arrive later are handed back; the pool says
    /// so (an event, critical health) instead of holding work for ever.
    pub(super) fn workers_gone(&mut self, reason: &str) {
        if !matches!(self.phase, Phase::Running) || self.failed.is_some() {
            return;
        }
        tracing::error!(
            pool = %self.settings.name,
            reason,
            "the pool's worker supervisor gave up: the pool takes no more work"
        );
        self.failed = Some(reason.to_owned());
        let _ = self.gauges.failed.set(reason.to_owned());
        self.gauges.closed.store(true, Ordering::SeqCst);
        let why = format!("pool failed: {reason}");
        self.abandon_for(
            UnfinishedAction::DeadLetter,
            AttemptError::WorkerLost(why.clone()),
            &why,
        );
        if self.lead {
            self.emit(PoolEvent::Failed {
                reason: reason.to_owned(),
            });
        }
    }

    /// In graceful shutdown, finishes once no task is left.
    pub(super) fn check_finished(&mut self) {
        // With siblings, the end of the call decides (`SharedRouter::locked`).
        if self.drained() && !self.siblings {
            self.finish(Vec::new());
        }
    }

    /// In a graceful drain, and holding no task.
    pub(super) fn drained(&self) -> bool {
        !self.abandoning && matches!(self.phase, Phase::Draining { .. }) && self.store.is_empty()
    }

    /// Ends a graceful drain that left it holding no task.
    pub(super) fn finish_drain(&mut self) {
        if self.drained() {
            self.finish(Vec::new());
        }
    }

    /// Ends every task still held, by `action`; returns their ids.
    fn abandon(&mut self, action: UnfinishedAction) -> Vec<TaskId> {
        self.abandon_for(action, AttemptError::Shutdown, "shutdown")
    }

    /// Ends every task still held, by `action`: a running attempt fails
    /// with `error`, a dead-lettered task gets `reason`. Returns their ids.
    fn abandon_for(
        &mut self,
        action: UnfinishedAction,
        error: AttemptError,
        reason: &str,
    ) -> Vec<TaskId> {
        self.abandoning = true;
        let now = self.ms(self.now);
        // What this router held leaves the pool's count of waiting tasks;
        // a sibling's tasks stay counted until it abandons them itself.
        let unqueued = self.store.ready() + self.store.delayed();
        self.store.unqueue_all();
        self.gauges.waiting.fetch_sub(unqueued, Ordering::Relaxed);
        let ids = self.store.held();
        for &id in &ids {
            let workers = &self.workers;
            let name = |key: WorkerKey| workers[key].name.to_string();
            if let Some(Failed { running, .. }) = self.store.fail(id, &error, now, name) {
                running.cancelled.store(true, Ordering::Relaxed);
                if let Some(slot) = self
                    .slot_mut(running.worker)
                    .filter(|s| s.incarnation == running.incarnation)
                {
                    slot.in_flight.remove(&id);
                    let cancel = Effect::Cancel(slot.inbox.clone(), id);
                    self.effects.push(cancel);
                    self.refresh_room(running.worker);
                }
            }
            match action {
                UnfinishedAction::Return => {
                    let Some(Withdrawn { task, reply }) = self.store.withdraw(id) else {
                        continue;
                    };
                    self.stats.returned += 1;
                    self.reply(reply, Err(TaskFailure::Returned { id, task }));
                }
                UnfinishedAction::DeadLetter => self.dead_letter(id, reason),
            }
        }
        self.abandoning = false;
        ids
    }

    /// What waits (ready, or for its time) and what runs, for the pool's
    /// `DrainStarted`.
    pub(crate) fn load(&self) -> (u64, u64) {
        let queued = (self.store.ready() + self.store.delayed()) as u64;
        let in_flight = self.slots().map(|(_, s)| s.in_flight.len() as u64).sum();
        (queued, in_flight)
    }

    /// The books as they stand, with the tasks the shutdown ended.
    pub(crate) fn books(&self, unfinished: Vec<TaskId>) -> ShutdownReport {
        ShutdownReport {
            submitted: self.stats.submitted,
            completed: self.stats.completed,
            dead_lettered: self.stats.dead_lettered,
            returned: self.stats.returned,
            unfinished,
        }
    }

    fn finish(&mut self, unfinished: Vec<TaskId>) {
        // The pool says `ShutDown`, with every router's books (see
        // `Routers::shutdown`).
        let report = self.books(unfinished);
        self.deadline = None;
        if let Phase::Draining { replies } =
            std::mem::replace(&mut self.phase, Phase::Stopped(report.clone()))
        {
            for reply in replies {
                let _ = reply.send(report.clone());
            }
        }
    }

    /// When the clock should look next, given its next housekeeping tick;
    /// `None` once the router has stopped (the clock ends).
    pub(super) fn clock_plan(&mut self, next_tick: Instant) -> Option<Instant> {
        if matches!(self.phase, Phase::Stopped(_)) {
            return None;
        }
        let retry = self.store.next_due().map(|due| self.clock_time(due));
        let untrip = self.tripped.first().map(|&(until, _)| until);
        let expiry = self.expiries.first().map(|&(at, _)| at);
        // Work held back by the rate limit goes when the next token is there.
        let token = match &mut self.bucket {
            Some(bucket) if self.store.ready() > 0 && !self.free.is_empty() => {
                Some(bucket.next_token(self.now))
            }
            _ => None,
        };
        let at = [retry, self.deadline, untrip, expiry, token]
            .into_iter()
            .flatten()
            .fold(next_tick, Instant::min);
        self.clock_at = Some(at);
        self.nudge_clock = false;
        Some(at)
    }

    /// The clock woke: the shutdown deadline, and on a housekeeping `tick`,
    /// starvation promotion. Like every call through `SharedRouter`, it also
    /// releases due retries and dispatches afterwards (which covers
    /// half-open probes freed by the clock alone: they announce themselves
    /// to nobody).
    pub(super) fn on_clock(&mut self, tick: bool) {
        let now = self.now;
        self.clock_at = None;
        if matches!(self.phase, Phase::Stopped(_)) {
            return;
        }
        if self.deadline.is_some_and(|d| d <= now) && matches!(self.phase, Phase::Draining { .. }) {
            let unfinished = self.abandon(UnfinishedAction::Return);
            self.finish(unfinished);
            return;
        }
        if tick {
            self.store.promote(now);
            // Room under the ejection limit may have come from another
            // router of the pool.
            if !self.tripped.is_empty() {
                self.reconsider_ejections();
            }
        }
    }

    /// The housekeeping period.
    pub(super) fn tick(&self) -> Duration {
        self.settings.tick
    }
}
