//! What the worker actor shares with the tasks that run its attempts, and
//! what those tasks do between attempts: settle with the router, take the
//! next task, hold and send replies, stamp progress, hand back what they
//! did not start.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::WeakAddr;
use candado::{ChildLink, ExitReason};
use rustc_hash::FxHashMap;
use tracing::Instrument;

use super::{
    Crash, Exec, PoolWorker, Runner, Running, BURST, SHORT_TASK, STAMP_EVERY, UNREGISTERED,
};
use crate::messages::{Caller, CallerWants, Done, Effect, ProcessGauge, Run, Settled, WorkerKey};
use crate::router::{Routers, SharedRouter};
use crate::{AttemptError, TaskHandler, TaskId};
/// What the actor shares with its attempt tasks (all on the worker's thread).
pub(super) struct Local<H: TaskHandler> {
    pub(super) id: Arc<str>,
    pub(super) incarnation: u64,
    /// Its key in the router, once registered ([`UNREGISTERED`] before,
    /// or if the router found this incarnation stale).
    pub(super) key: Cell<WorkerKey>,
    pub(super) link: Arc<ChildLink>,
    pub(super) exec: Exec<H>,
    /// The pool's routers; this worker's is number `home` (known once it
    /// registered).
    pub(super) routers: Routers<H>,
    pub(super) home: Cell<usize>,
    pub(super) yield_every: u32,
    /// Tasks it may take at once while tasks queue up and its own are short.
    pub(super) batch: usize,
    pub(super) running: RefCell<FxHashMap<TaskId, Running<H::Task>>>,
    /// Runners parked until the worker hands them a task.
    pub(super) idle: RefCell<Vec<Rc<Runner<H::Task>>>>,
    /// The actor, to crash it from an attempt task.
    pub(super) actor: RefCell<Option<WeakAddr<PoolWorker<H>>>>,
    /// Finished attempts not yet added to the link's count.
    pub(super) unstamped: Cell<u64>,
    /// When progress was last stamped.
    pub(super) stamped: Cell<Option<tokio::time::Instant>>,
    /// Replies held until the worker pauses (see the module docs).
    pub(super) replies: RefCell<Vec<Effect<H>>>,
    /// Finished attempts not reported to the router yet: a worker running
    /// a batch reports the batch at once.
    pub(super) reports: RefCell<Vec<Done<H::Output>>>,
    /// Tasks handed over in a batch and not started yet, in order.
    pub(super) ahead: RefCell<VecDeque<Run<H::Task>>>,
    /// How fast its attempts have been going.
    pub(super) pace: Cell<Pace>,
    /// Its last attempt was quick (see [`QUICK_TASK`](super::QUICK_TASK)).
    pub(super) quick: Cell<bool>,
    /// Its process's pid and RSS, shared with the router (a worker
    /// process only).
    pub(super) process: Option<Arc<ProcessGauge>>,
}

/// How fast a worker's attempts go, measured between its calls to the
/// router (whose clock it reads anyway).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Pace {
    /// The router's time at the last call.
    settled_at: Option<tokio::time::Instant>,
    /// Attempts finished since.
    finished: u32,
    /// Whether they took under [`SHORT_TASK`] each, on average.
    short: bool,
}

impl Pace {
    fn finished_one(mut self) -> Self {
        self.finished += 1;
        self
    }

    fn settled(self, now: tokio::time::Instant) -> Self {
        let short = self
            .settled_at
            .is_some_and(|at| now.duration_since(at) < SHORT_TASK * self.finished.max(1));
        Self {
            settled_at: Some(now),
            finished: 0,
            short,
        }
    }
}

impl<H: TaskHandler> Local<H> {
    /// This worker's router.
    pub(super) fn router(&self) -> &SharedRouter<H> {
        self.routers.get(self.home.get())
    }
}

impl<H: TaskHandler> Drop for Local<H> {
    fn drop(&mut self) {
        // However the worker ends, the replies it holds are delivered, and
        // its parked runners end.
        self.send_replies();
        for runner in self.idle.get_mut().drain(..) {
            runner.abort();
        }
    }
}

/// Runs `run`, and keeps going with the tasks the router hands this worker
/// when it reports: one at a time, or, for short tasks while tasks queue up,
/// a batch, reported together once it is done. `true` when the worker ran
/// out of work (its runner may take the next task), `false` when this run
/// ended the worker's service (a crash, a process gone).
pub(super) async fn run_attempts<H: TaskHandler>(
    local: &Rc<Local<H>>,
    mut run: Run<H::Task>,
) -> bool {
    let mut in_a_row = 0;
    loop {
        let (id, attempt) = (run.id, run.attempt);
        // The attempt's span: the handler's own log lines carry the task,
        // the attempt, the worker and the priority.
        let span = tracing::info_span!(
            "task_attempt",
            task_id = id,
            attempt,
            worker = %local.id,
            incarnation = local.incarnation,
            priority = run.priority,
        );
        let result = match local.attempt(run).instrument(span).await {
            Ok(result) => result,
            Err(crash) => {
                // Like a panic in the actor: the worker dies, and the router
                // fails every attempt it held, this one included.
                let actor = local.actor.borrow().as_ref().and_then(WeakAddr::upgrade);
                if let Some(actor) = actor {
                    actor.do_send(Crash(crash));
                }
                return false;
            }
        };
        let failed = result.is_err();
        local.reports.borrow_mut().push(Done {
            worker: local.key.get(),
            incarnation: local.incarnation,
            id,
            attempt,
            result,
        });
        if failed {
            // A batch is for a streak of short successes: a failure ends it,
            // so the router weighs the failure (the worker's breaker may
            // open) before this worker runs anything more. The rest goes
            // back to the queue, costing no attempt.
            local.hand_back_unstarted();
        }
        local.unstamped.set(local.unstamped.get() + 1);
        local.pace.set(local.pace.get().finished_one());
        if local.condemned() {
            // Its process is gone or going: this worker takes no more tasks.
            local.running.borrow_mut().remove(&id);
            local.retire();
            return false;
        }
        let (next, settled) = match local.next_ahead() {
            Some(next) => (Some(next), None),
            None => {
                let settled = local.settle(local.wants(), &mut local.ahead.borrow_mut());
                (local.next_ahead(), settled)
            }
        };
        let Some(next) = local.carry_on(id, next, settled.as_ref()) else {
            return true;
        };
        run = next;
        in_a_row += 1;
        if settled.is_some_and(|s| s.queued < BURST as usize) {
            // The queue runs low: submitters need their replies to send more.
            local.send_replies();
        }
        if in_a_row == BURST {
            in_a_row = 0;
            local.send_replies();
            tokio::task::yield_now().await;
        }
    }
}

impl<H: TaskHandler> Local<H> {
    /// The next task handed over in a batch and not abandoned meanwhile
    /// (the router settled those itself), its timeout started now: it
    /// waited for the ones before it.
    fn next_ahead(&self) -> Option<Run<H::Task>> {
        let mut ahead = self.ahead.borrow_mut();
        while let Some(mut run) = ahead.pop_front() {
            if !run.cancelled.load(Ordering::Relaxed) {
                let fresh = crate::deadline::after(tokio::time::Instant::now(), run.timeout);
                run.deadline = run.deadline.max(fresh);
                return Some(run);
            }
        }
        None
    }

    /// Hands the tasks of a batch not started back to the router (they go
    /// back to the queue, costing no attempt).
    pub(super) fn hand_back_unstarted(&self) {
        let unstarted: Vec<(TaskId, u32)> = std::mem::take(&mut *self.ahead.borrow_mut())
            .into_iter()
            .map(|run| (run.id, run.attempt))
            .collect();
        if !unstarted.is_empty() {
            self.router()
                .hand_back(self.key.get(), self.incarnation, unstarted);
        }
    }

    /// What this worker asks of the router when it reports: a batch of
    /// tasks if its tasks are short, else one.
    fn wants(&self) -> CallerWants {
        let batch = if self.pace.get().short { self.batch } else { 1 };
        CallerWants {
            worker: self.key.get(),
            incarnation: self.incarnation,
            batch,
            quick: self.quick.get(),
        }
    }

    /// Reports the finished attempts held, asking for `wants` next tasks
    /// (added to `runs`); `None` if the reports were left to the lock's
    /// holder.
    fn settle(&self, wants: CallerWants, runs: &mut VecDeque<Run<H::Task>>) -> Option<Settled> {
        let settled = self.router().settle(
            &mut self.reports.borrow_mut(),
            Caller {
                wants,
                replies: &mut self.replies.borrow_mut(),
                runs,
            },
        );
        if let Some(settled) = &settled {
            self.pace.set(self.pace.get().settled(settled.now));
        }
        settled
    }

    /// Reports the finished attempts held, taking no task back (this
    /// worker is still busy, or going away), and delivers the replies.
    pub(super) fn report(&self) {
        if !self.reports.borrow().is_empty() {
            let wants = CallerWants {
                batch: 0,
                ..self.wants()
            };
            self.settle(wants, &mut VecDeque::new());
        }
        self.send_replies();
    }

    /// After attempt `id` ended: moves its slot to `next` and returns it,
    /// or, with no next task (or the reports left for the lock's holder to
    /// settle), does the bookkeeping of a worker that runs out of work;
    /// its next task comes as a message. `settled` is the router's answer
    /// if the worker just called it.
    fn carry_on(
        &self,
        id: TaskId,
        next: Option<Run<H::Task>>,
        settled: Option<&Settled>,
    ) -> Option<Run<H::Task>> {
        let mut running = self.running.borrow_mut();
        // Cancelling an attempt aborts this task, so its entry is still here.
        let Some(this) = running.remove(&id) else {
            drop(running);
            // Should it be gone all the same, no task is left without a
            // run of attempts to start it: the rest of the batch goes back.
            if let Some(next) = next {
                self.ahead.borrow_mut().push_front(next);
            }
            self.report();
            self.hand_back_unstarted();
            return None;
        };
        match next {
            Some(next) => {
                let cancelled = next.cancelled.clone();
                running.insert(
                    next.id,
                    Running {
                        runner: this.runner,
                        cancelled,
                        attempt: next.attempt,
                    },
                );
                drop(running);
                if let Some(&Settled { now, .. }) = settled {
                    if self.stamped.get().is_none_or(|at| now >= at + STAMP_EVERY) {
                        self.stamp(now);
                    }
                }
                Some(next)
            }
            None => {
                let left = running.len();
                drop(running);
                self.report();
                self.link.set_in_flight(left as u64);
                if left == 0 {
                    // The work ends: only the count of finished attempts
                    // matters, not progress (no clock read, one lock less).
                    self.link.add_tasks_done(self.unstamped.replace(0));
                    self.link.end_work();
                } else {
                    let now = settled.map_or_else(tokio::time::Instant::now, |s| s.now);
                    self.stamp(now);
                }
                None
            }
        }
    }

    /// Delivers the replies held.
    fn send_replies(&self) {
        let mut replies = std::mem::take(&mut *self.replies.borrow_mut());
        for reply in replies.drain(..) {
            reply.apply();
        }
        // The buffer goes back with its capacity: the next burst of replies
        // fills it without growing it again.
        let mut held = self.replies.borrow_mut();
        if held.is_empty() {
            *held = replies;
        }
    }

    /// Reports progress and the finished attempts not reported yet.
    fn stamp(&self, now: tokio::time::Instant) {
        self.link.add_tasks_done(self.unstamped.replace(0));
        self.link.progress();
        self.stamped.set(Some(now));
    }

    /// The process is gone: every attempt running fails with its exit
    /// reason (reported when the worker drops, with the finished ones).
    pub(super) fn lose_running(&self, reason: &ExitReason) {
        let mut reports = self.reports.borrow_mut();
        for (id, running) in self.running.borrow_mut().drain() {
            running.cancelled.store(true, Ordering::Relaxed);
            running.runner.abort();
            reports.push(Done {
                worker: self.key.get(),
                incarnation: self.incarnation,
                id,
                attempt: running.attempt,
                result: Err(AttemptError::WorkerLost(reason.to_string())),
            });
        }
    }

    /// Whether this worker's process is gone or going, so that it must
    /// take no more tasks.
    pub(super) fn condemned(&self) -> bool {
        matches!(&self.exec, Exec::Remote(remote) if !remote.serving())
    }

    /// Leaves the router before the worker ends, so that no task is sent
    /// to a worker whose process is gone: the attempts finished are
    /// reported, the tasks of a batch not started are handed back, and the
    /// router forgets this incarnation.
    pub(super) fn retire(&self) {
        let reports = std::mem::take(&mut *self.reports.borrow_mut());
        let unstarted = std::mem::take(&mut *self.ahead.borrow_mut())
            .into_iter()
            .map(|run| (run.id, run.attempt))
            .collect();
        let key = self.key.replace(UNREGISTERED);
        if key != UNREGISTERED {
            let me = (&*self.id, key, self.incarnation);
            self.router().retire(reports, me, unstarted);
        }
        self.send_replies();
        self.link.set_in_flight(0);
        self.link.end_work();
    }

    /// Reports the worker process's measured memory to the supervisor.
    pub(super) fn measure(&self) {
        if let Exec::Remote(remote) = &self.exec {
            if let Some(rss) = remote.rss() {
                self.link.set_memory(rss);
                if let Some(gauge) = &self.process {
                    gauge.rss.store(rss, Ordering::Relaxed);
                }
            }
        }
    }
}
