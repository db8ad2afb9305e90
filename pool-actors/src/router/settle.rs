//! An attempt ends: it is settled (completed, retried or dead-lettered),
//! or handed back unstarted; the router's books follow.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::Router;
use crate::messages::{Done, WorkerKey};
use crate::store::{DeadLettered, TaskStore};
use crate::{AttemptError, PoolEvent, TaskFailure, TaskHandler, TaskId};

impl<H: TaskHandler, S: TaskStore<H>> Router<H, S> {
    /// Whether `attempt` of task `id` is the one the router waits for from
    /// worker incarnation (`worker`, `incarnation`).
    pub(super) fn is_current(
        &self,
        id: TaskId,
        attempt: u32,
        worker: WorkerKey,
        incarnation: u64,
    ) -> bool {
        self.store.running(id).is_some_and(|(number, run)| {
            number == attempt && run.worker == worker && run.incarnation == incarnation
        })
    }

    /// A task handed to a worker in a batch was never started (the worker
    /// is going away): back to the queue in its place, as if never sent.
    pub(crate) fn unstarted(
        &mut self,
        worker: WorkerKey,
        incarnation: u64,
        id: TaskId,
        attempt: u32,
    ) {
        if !self.is_current(id, attempt, worker, incarnation) {
            return;
        }
        let freed_drain = self.leave_slot(worker, id);
        self.refresh_room(worker);
        if freed_drain {
            self.check_drains();
        }
        self.stats.attempts -= 1;
        self.gauges.waiting.fetch_add(1, Ordering::Relaxed);
        let now = self.now;
        self.store.release(id, now);
    }

    /// An attempt ended: settle it, then hand its worker more work.
    pub(crate) fn on_done(&mut self, done: Done<H::Output>) {
        // Only the attempt the router is waiting for counts: a late report
        // from a lost worker, or of a cancelled attempt, is ignored.
        if !self.is_current(done.id, done.attempt, done.worker, done.incarnation) {
            return;
        }
        let freed_drain = self.leave_slot(done.worker, done.id);
        // The router sees every outcome first-hand: it feeds the breakers
        // itself, sparing the supervisor a message per task, and takes a
        // worker whose breaker a failure opened out of service at once.
        // Whose fault a failure is decides which breaker hears of it: the
        // task's own failure counts against its dependency (if it names
        // one), never against the worker; only a failure blamed on the
        // worker counts against the worker.
        if let Some(breaker) = self
            .workers
            .get(done.worker)
            .and_then(|w| w.breaker.as_ref())
        {
            let dependency = self
                .store
                .options(done.id)
                .and_then(|o| o.dependency.as_deref());
            match &done.result {
                Ok(_) => breaker.record_outcome_at(dependency, true, self.now),
                Err(error) if error.blames_worker() => {
                    breaker.record_outcome_at(None, false, self.now);
                    self.trip_if_open(done.worker);
                }
                // Bad input says nothing of the dependency or the worker.
                Err(error) if !error.retryable() => breaker.release_probe_at(self.now),
                Err(_) => match dependency {
                    Some(_) => breaker.record_outcome_at(dependency, false, self.now),
                    // Says nothing of the worker: a probe it held is free.
                    None => breaker.release_probe_at(self.now),
                },
            }
        }
        self.refresh_room(done.worker);
        match done.result {
            Ok(output) => self.complete(done.id, output, done.worker, done.attempt),
            Err(error) => self.fail_attempt(done.id, error),
        }
        if freed_drain {
            self.check_drains();
        }
    }

    pub(super) fn complete(
        &mut self,
        id: TaskId,
        output: H::Output,
        worker: WorkerKey,
        attempt: u32,
    ) {
        self.forget_expiry(id);
        let Some(record) = self.store.complete(id) else {
            return;
        };
        let latency = self.now.duration_since(record.submitted_at);
        self.stats.completed += 1;
        self.stats.latency.record(self.now, latency);
        tracing::debug!(task_id = id, attempt, ?latency, "task completed");
        if self.observed() {
            self.emit(PoolEvent::TaskCompleted {
                id,
                worker: self.name(worker).to_string(),
                attempt,
                latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            });
        }
        if let Some(worker) = self.workers.get_mut(worker) {
            worker.completed += 1;
        }
        self.reply(record.reply, Ok(output));
        self.check_finished();
    }

    /// An attempt failed: retry later, or dead-letter.
    pub(super) fn fail_attempt(&mut self, id: TaskId, error: AttemptError) {
        let now = self.now;
        let ended = self.ms(now);
        let workers = &self.workers;
        let name = |key: WorkerKey| workers[key].name.to_string();
        let Some(failed) = self.store.fail(id, &error, ended, name) else {
            return;
        };
        let number = failed.number;
        let retryable = error.retryable();
        let budget = self
            .store
            .options(id)
            .and_then(|o| o.max_retries)
            .unwrap_or(self.settings.retry.max_retries);
        self.stats.failed += 1;
        tracing::debug!(task_id = id, attempt = number, %error, "attempt failed");
        let observed = self.observed();
        if observed {
            self.emit(PoolEvent::TaskFailed {
                id,
                worker: failed.worker,
                attempt: number,
                error,
            });
        }
        if !retryable {
            self.dead_letter(id, "not retryable");
            return;
        }
        if number > budget {
            self.dead_letter(id, "retries exhausted");
            return;
        }
        if self.expired(id) {
            // Its time to live ran out while it ran: no attempt may start.
            self.dead_letter(id, super::admission::EXPIRED);
            return;
        }
        let backoff = self.settings.retry.backoff();
        let Some((delay, due)) = self.store.schedule_retry(id, now, &backoff) else {
            return;
        };
        self.stats.retried += 1;
        tracing::debug!(
            task_id = id,
            next_attempt = number + 1,
            ?delay,
            "retry scheduled"
        );
        self.gauges.waiting.fetch_add(1, Ordering::Relaxed);
        self.wake_clock_by(self.clock_time(due));
        if observed {
            self.emit(PoolEvent::TaskRetried {
                id,
                next_attempt: number + 1,
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            });
        }
    }

    /// [`dead_letter`](Self::dead_letter) for a task still waiting (ready,
    /// or for its time): it leaves the count of waiting tasks too.
    pub(super) fn dead_letter_waiting(&mut self, id: TaskId, reason: &str) {
        self.gauges.waiting.fetch_sub(1, Ordering::Relaxed);
        self.dead_letter(id, reason);
    }

    pub(super) fn dead_letter(&mut self, id: TaskId, reason: &str) {
        self.forget_expiry(id);
        let Some(DeadLettered { reply, attempts }) = self.store.dead_letter(id, reason) else {
            return;
        };
        self.stats.dead_lettered += 1;
        let count = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
        tracing::warn!(task_id = id, attempts = count, reason, "task dead-lettered");
        self.reply(reply, Err(TaskFailure::DeadLettered { id, attempts }));
        if self.observed() {
            self.emit(PoolEvent::TaskDeadLettered {
                id,
                attempts: count,
                reason: reason.to_owned(),
            });
        }
        self.check_finished();
    }

    /// Retries whose time has come go back to the ready queue.
    pub(crate) fn release_due(&mut self, now: Instant) {
        self.store.requeue_due(now);
    }
}
