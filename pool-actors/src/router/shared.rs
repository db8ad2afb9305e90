//! The handle every thread uses to reach the router, and the clock task
//! that drives its timers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use actix::{Addr, ArbiterHandle};
use crossbeam_queue::SegQueue;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::{Done, Effect, Gauges, Router, Submit, WorkerNews};
use crate::metrics::PoolMetrics;
use crate::worker::{PoolWorker, Run};
use crate::{ShutdownMode, ShutdownReport, TaskHandler};

struct Shared<H: TaskHandler> {
    router: Mutex<Router<H>>,
    /// Submissions not yet accepted, oldest first. While every worker is
    /// busy, submitters only queue here and never contend for the router's
    /// lock; whoever takes that lock next (usually a worker finishing an
    /// attempt) accepts them first, so priority order is kept.
    intake: SegQueue<Submit<H>>,
    /// The intake may hold something (set after each push).
    pending: AtomicBool,
    /// Some worker may take a task now: submitters must dispatch
    /// themselves. Written under the router's lock after each pump.
    room: AtomicBool,
    /// Shared with the facade; once `closed` (shutdown started), submitters
    /// settle their tasks at once rather than leave them in the intake.
    gauges: Arc<Gauges>,
    /// Wakes the clock task when a timer moves earlier.
    clock: Arc<Notify>,
}

/// A cheap, clonable handle to the router. Each call takes the router's lock
/// for a short, bounded piece of bookkeeping (never task code), then
/// delivers the messages and replies it produced with the lock released.
pub(crate) struct SharedRouter<H: TaskHandler> {
    shared: Arc<Shared<H>>,
}

impl<H: TaskHandler> Clone for SharedRouter<H> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<H: TaskHandler> SharedRouter<H> {
    /// Shares `router` and starts its clock on `arbiter` (the control thread).
    pub(crate) fn start(router: Router<H>, arbiter: &ArbiterHandle) -> Self {
        let tick = router.tick();
        let gauges = router.gauges();
        let shared = Arc::new(Shared {
            router: Mutex::new(router),
            intake: SegQueue::new(),
            pending: AtomicBool::new(false),
            room: AtomicBool::new(false),
            gauges,
            clock: Arc::new(Notify::new()),
        });
        let weak = Arc::downgrade(&shared);
        arbiter.spawn(run_clock(weak, tick));
        Self { shared }
    }

    /// Runs `f` under the lock (after accepting what waits in the intake,
    /// and followed by a dispatch), then delivers what it produced.
    fn with<R>(&self, f: impl FnOnce(&mut Router<H>) -> R) -> R {
        self.with_caller(None, f).0
    }

    /// [`with`](Self::with), made by worker incarnation `caller`: its next
    /// task comes back with the result instead of as a message.
    fn with_caller<R>(
        &self,
        caller: Option<Caller<'_, H>>,
        f: impl FnOnce(&mut Router<H>) -> R,
    ) -> (R, Option<Run<H::Task>>) {
        let (caller, replies) = match caller {
            Some(c) => (Some((c.worker, c.incarnation)), Some(c.replies)),
            None => (None, None),
        };
        let (out, effects, nudge, handback) = {
            let mut router = self
                .shared
                .router
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            router.now = Instant::now();
            router.caller = caller;
            self.accept_intake(&mut router);
            // Retries whose time has come go back to the queue with whoever
            // calls first; the clock only covers a router nobody calls.
            let now = router.now;
            router.release_due(now);
            let out = f(&mut router);
            loop {
                router.pump();
                // Publish the room, then look at the intake once more: a
                // submitter that queued while we pumped either sees the
                // room and dispatches itself, or is seen here.
                self.shared.room.store(router.has_room(), Ordering::SeqCst);
                if !self.shared.pending.load(Ordering::SeqCst) {
                    break;
                }
                self.accept_intake(&mut router);
            }
            router.caller = None;
            router.debug_check_free();
            let nudge = std::mem::take(&mut router.nudge_clock);
            let handback = router.handback.take();
            let effects = match replies {
                // Keep the router's buffer (and its capacity); hand the
                // replies to the worker, and deliver the rest here.
                Some(replies) => {
                    let mut others = Vec::new();
                    for effect in router.effects.drain(..) {
                        match effect {
                            Effect::Reply(..) => replies.push(effect),
                            other => others.push(other),
                        }
                    }
                    others
                }
                None => std::mem::take(&mut router.effects),
            };
            (out, effects, nudge, handback)
        };
        if nudge {
            self.shared.clock.notify_one();
        }
        for effect in effects {
            effect.apply();
        }
        (out, handback)
    }

    /// Accepts what waits in the intake, oldest first.
    fn accept_intake(&self, router: &mut Router<H>) {
        if !self.shared.pending.swap(false, Ordering::SeqCst) {
            return;
        }
        while let Some(submit) = self.shared.intake.pop() {
            router.accept(submit);
        }
    }

    /// Accepts submissions, in order, and dispatches what it can. While
    /// every worker is busy they only join the intake (a lock-free queue).
    pub(crate) fn submit(&self, submits: impl IntoIterator<Item = Submit<H>>) {
        for submit in submits {
            self.shared.intake.push(submit);
        }
        self.shared.pending.store(true, Ordering::SeqCst);
        if self.shared.room.load(Ordering::SeqCst)
            || self.shared.gauges.closed.load(Ordering::SeqCst)
        {
            self.with(|router| router.busy_at = Some(router.now));
        }
    }

    /// Settles an attempt and dispatches what its worker freed. Replies to
    /// submitters are added to `replies` for the worker to deliver (see
    /// [`Effect::apply`]): a busy worker sends them in bursts, so one
    /// wake-up of a submitter's thread carries many.
    pub(crate) fn done(&self, done: Done<H::Output>, replies: &mut Vec<Effect<H>>) -> Settled<H> {
        let caller = Caller {
            worker: done.worker.clone(),
            incarnation: done.incarnation,
            replies,
        };
        let ((now, queued), next) = self.with_caller(Some(caller), |router| {
            router.busy_at = Some(router.now);
            router.on_done(done);
            (router.now, router.queued())
        });
        Settled { next, now, queued }
    }

    /// A worker incarnation is up.
    pub(crate) fn register(
        &self,
        worker: Arc<str>,
        incarnation: u64,
        addr: Addr<PoolWorker<H>>,
        capabilities: Vec<String>,
    ) {
        self.with(|router| router.register(worker, incarnation, addr, capabilities));
    }

    /// A worker incarnation is gone.
    pub(crate) fn unregister(&self, worker: &str, incarnation: u64) {
        self.with(|router| router.unregister(worker, incarnation));
    }

    /// News from the worker supervisor.
    pub(crate) fn news(&self, news: WorkerNews) {
        self.with(|router| router.news(news));
    }

    /// Stops routing to `workers`; `reply` is answered once they are idle.
    pub(crate) fn drain(&self, workers: &[String], reply: oneshot::Sender<()>) {
        self.with(|router| router.drain(workers, reply));
    }

    /// Starts the shutdown; `reply` gets the books.
    pub(crate) fn shutdown(&self, mode: ShutdownMode, reply: oneshot::Sender<ShutdownReport>) {
        self.with(|router| router.shutdown(mode, reply));
    }

    /// A metrics snapshot.
    pub(crate) fn metrics(&self) -> PoolMetrics {
        self.with(|router| router.metrics())
    }

    /// A handle that does not keep the router alive.
    pub(crate) fn downgrade(&self) -> WeakRouter<H> {
        WeakRouter(Arc::downgrade(&self.shared))
    }
}

/// What a worker learns when it settles an attempt.
pub(crate) struct Settled<H: TaskHandler> {
    /// Its own next task, if the router picked it for one.
    pub(crate) next: Option<Run<H::Task>>,
    /// The router's time of the call.
    pub(crate) now: Instant,
    /// Tasks left waiting for a worker.
    pub(crate) queued: usize,
}

/// The worker incarnation settling an attempt, and where its replies go.
struct Caller<'a, H: TaskHandler> {
    worker: Arc<str>,
    incarnation: u64,
    replies: &'a mut Vec<Effect<H>>,
}

/// A [`SharedRouter`] that does not keep the router alive.
pub(crate) struct WeakRouter<H: TaskHandler>(Weak<Shared<H>>);

impl<H: TaskHandler> WeakRouter<H> {
    /// The router, unless it is gone.
    pub(crate) fn upgrade(&self) -> Option<SharedRouter<H>> {
        self.0.upgrade().map(|shared| SharedRouter { shared })
    }
}

/// The router's timers: due retries, the shutdown deadline, and the
/// housekeeping tick. Sleeps until the earliest, or until a call moves a
/// timer earlier; ends when the router stops or is dropped.
async fn run_clock<H: TaskHandler>(shared: Weak<Shared<H>>, tick: std::time::Duration) {
    let mut next_tick = Instant::now() + tick;
    loop {
        let Some(router) = WeakRouter(shared.clone()).upgrade() else {
            return;
        };
        let Some(wake_at) = router.with(|r| r.clock_plan(next_tick)) else {
            return;
        };
        let nudge = router.shared.clock.clone();
        drop(router);
        tokio::select! {
            () = tokio::time::sleep_until(wake_at) => {}
            () = nudge.notified() => {}
        }
        let Some(router) = WeakRouter(shared.clone()).upgrade() else {
            return;
        };
        let now = Instant::now();
        let tick_due = now >= next_tick;
        while next_tick <= now {
            next_tick += tick;
        }
        router.with(|r| r.on_clock(tick_due));
    }
}
