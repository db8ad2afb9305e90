//! The handle every thread uses to reach the router, and the clock task
//! that drives its timers.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use actix::ArbiterHandle;
use crossbeam_queue::SegQueue;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::{Gauges, Router, WorkerNews};
use crate::messages::{Caller, Done, Effect, Settled, Submit, WorkerInbox, WorkerKey};
use crate::metrics::PoolMetrics;
use crate::{ShutdownMode, ShutdownReport, TaskHandler, TaskId};

/// Rounds of queued work a thread serves after letting go of the lock before
/// it hands the rest to the clock task.
const HOLDER_ROUNDS: usize = 4;

/// Times a worker tries the lock again before it leaves its report queued.
const SPINS: usize = 100;

struct Shared<H: TaskHandler> {
    router: Mutex<Router<H>>,
    /// Submissions not yet accepted, oldest first. While every worker is
    /// busy, submitters only queue here and never contend for the router's
    /// lock; whoever takes that lock next (usually a worker finishing an
    /// attempt) accepts them first, so priority order is kept.
    intake: SegQueue<Submit<H>>,
    /// Attempts settled by workers that found the lock taken; whoever holds
    /// it settles them before letting go. No thread ever waits for the lock
    /// on the task path, so none can be starved of it.
    settled: SegQueue<Done<H::Output>>,
    /// The intake or `settled` may hold something (set after each push).
    pending: AtomicBool,
    /// Some worker may take a task now: submitters must dispatch
    /// themselves. Written under the router's lock after each pump.
    room: AtomicBool,
    /// Shared with the facade; once `closed` (shutdown started), submitters
    /// settle their tasks at once rather than leave them in the intake.
    gauges: Arc<Gauges>,
    /// Wakes the clock task when a timer moves earlier, or when a thread
    /// has served queued work long enough and hands the rest over.
    clock: Arc<Notify>,
    /// The clock task still runs (until the router stops).
    clock_running: AtomicBool,
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
            settled: SegQueue::new(),
            pending: AtomicBool::new(false),
            room: AtomicBool::new(false),
            gauges,
            clock: Arc::new(Notify::new()),
            clock_running: AtomicBool::new(true),
        });
        let weak = Arc::downgrade(&shared);
        arbiter.spawn(run_clock(weak, tick));
        Self { shared }
    }

    /// Runs `f` under the lock (after accepting what waits in the intake,
    /// and followed by a dispatch), then delivers what it produced.
    fn with<R>(&self, f: impl FnOnce(&mut Router<H>) -> R) -> R {
        let now = Instant::now();
        let router = self.shared.router.lock();
        let out = self.locked(router, now, None, f);
        self.after_unlock();
        out
    }

    /// The router's lock if nobody holds it. Whoever holds it deals with
    /// everything queued before letting go (see [`after_unlock`](Self::after_unlock)),
    /// so a caller that finds it taken leaves its work queued and carries on.
    fn try_lock(&self) -> Option<MutexGuard<'_, Router<H>>> {
        self.shared.router.try_lock()
    }

    /// [`try_lock`](Self::try_lock), trying again for about as long as the
    /// lock is usually held before giving up. It watches the lock with
    /// plain reads and tries to take it only once it looks free, so the
    /// holder keeps the lock's cache line while it works.
    fn try_lock_spinning(&self) -> Option<MutexGuard<'_, Router<H>>> {
        for _ in 0..SPINS {
            if !self.shared.router.is_locked() {
                if let Some(router) = self.try_lock() {
                    return Some(router);
                }
            }
            std::hint::spin_loop();
        }
        self.try_lock()
    }

    /// Runs `f` on the locked `router`, made by worker incarnation `caller`
    /// if any (its next task comes back with the result instead of as a
    /// message): accepts what waits in the intake and the settled queue,
    /// releases due retries, runs `f`, dispatches, then unlocks and
    /// delivers what it produced. `now` is read before the lock is taken,
    /// to keep the system call out of the time the lock is held; the
    /// router's time never goes back.
    fn locked<R>(
        &self,
        mut router: MutexGuard<'_, Router<H>>,
        now: Instant,
        caller: Option<Caller<'_, H>>,
        f: impl FnOnce(&mut Router<H>) -> R,
    ) -> R {
        let (caller, replies, runs) = match caller {
            Some(c) => (Some(c.wants), Some(c.replies), Some(c.runs)),
            None => (None, None, None),
        };
        router.now = router.now.max(now);
        router.caller = caller;
        self.accept_waiting(&mut router);
        // Retries whose time has come go back to the queue with whoever
        // calls first; the clock only covers a router nobody calls.
        let now = router.now;
        router.release_due(now);
        router.untrip_due(now);
        let out = f(&mut router);
        loop {
            router.pump();
            // Publish the room, then look at the queues once more: a
            // submitter that queued while we pumped either sees the room
            // and dispatches itself, or is seen here.
            self.shared.room.store(router.has_room(), Ordering::SeqCst);
            if !self.shared.pending.load(Ordering::SeqCst) {
                break;
            }
            self.accept_waiting(&mut router);
        }
        router.top_up_caller();
        router.caller = None;
        router.debug_check_free();
        let nudge = std::mem::take(&mut router.nudge_clock);
        if let Some(runs) = runs {
            runs.extend(router.handback.drain(..));
        }
        let effects = match replies {
            // Keep the router's buffer (and its capacity); hand the replies
            // to the worker, and deliver the rest here.
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
        drop(router);
        if nudge {
            self.shared.clock.notify_one();
        }
        for effect in effects {
            effect.apply();
        }
        out
    }

    /// Something was queued for the holder of the lock: raise the flag every
    /// holder checks before and after letting go.
    fn announce(&self) {
        self.shared.pending.store(true, Ordering::SeqCst);
        // Pairs with the fence in `after_unlock`: either the holder sees
        // the flag, or the `try_lock` that follows this sees the lock free.
        fence(Ordering::SeqCst);
    }

    /// After letting go of the lock: anything queued while it was held
    /// whose author found the lock taken is dealt with here. Gives up on
    /// the lock if someone else took it (they check in turn), and after a
    /// few rounds hands what keeps coming to the clock task, so a thread
    /// never stays stuck serving everyone else.
    fn after_unlock(&self) {
        let mut rounds = 0;
        loop {
            fence(Ordering::SeqCst);
            if !self.shared.pending.load(Ordering::SeqCst) {
                return;
            }
            // Once the clock has ended (the router stopped), nobody else
            // would come: serve it all.
            if rounds >= HOLDER_ROUNDS && self.shared.clock_running.load(Ordering::SeqCst) {
                self.shared.clock.notify_one();
                return;
            }
            let now = Instant::now();
            let Some(router) = self.try_lock() else {
                return;
            };
            self.locked(router, now, None, |router| {
                router.busy_at = Some(router.now)
            });
            rounds += 1;
        }
    }

    /// Accepts what waits: settled attempts first (they free workers), then
    /// submissions, oldest first.
    fn accept_waiting(&self, router: &mut Router<H>) {
        if !self.shared.pending.swap(false, Ordering::SeqCst) {
            return;
        }
        while let Some(done) = self.shared.settled.pop() {
            router.on_done(done);
        }
        while let Some(submit) = self.shared.intake.pop() {
            router.accept(submit);
        }
    }

    /// Accepts submissions, in order, and dispatches what it can. While
    /// every worker is busy they only join the intake (a lock-free queue);
    /// the submitter never waits for the lock.
    pub(crate) fn submit(&self, submits: impl IntoIterator<Item = Submit<H>>) {
        for submit in submits {
            self.shared.intake.push(submit);
        }
        self.announce();
        if self.shared.room.load(Ordering::SeqCst)
            || self.shared.gauges.closed.load(Ordering::SeqCst)
        {
            let now = Instant::now();
            if let Some(router) = self.try_lock() {
                self.locked(router, now, None, |router| {
                    router.busy_at = Some(router.now)
                });
            }
            self.after_unlock();
        }
    }

    /// Settles a worker's finished attempts (emptying `reports`) and
    /// dispatches what they freed; the worker's own next tasks are added to
    /// `caller.runs`. Replies to submitters are added to `caller.replies`
    /// for the worker to deliver (see [`Effect::apply`]): a busy worker
    /// sends them in bursts, so one wake-up of a submitter's thread carries
    /// many.
    ///
    /// Never waits for the lock: if another thread holds it, the reports
    /// are queued for that thread to settle, and `None` comes back (the
    /// worker's next task, if any, then comes as a message).
    pub(crate) fn settle(
        &self,
        reports: &mut Vec<Done<H::Output>>,
        caller: Caller<'_, H>,
    ) -> Option<Settled> {
        let report = |router: &mut Router<H>| {
            router.busy_at = Some(router.now);
            Settled {
                now: router.now,
                queued: router.queued(),
            }
        };
        let now = Instant::now();
        let settled = match self.try_lock_spinning() {
            Some(router) => self.locked(router, now, Some(caller), |router| {
                for done in reports.drain(..) {
                    router.on_done(done);
                }
                report(router)
            }),
            None => {
                for done in reports.drain(..) {
                    self.shared.settled.push(done);
                }
                self.announce();
                // The holder may have let go in the meantime.
                let router = self.try_lock()?;
                self.locked(router, now, Some(caller), report)
            }
        };
        self.after_unlock();
        Some(settled)
    }

    /// A worker incarnation is up; returns its key (`None` if it is stale).
    pub(crate) fn register(
        &self,
        worker: Arc<str>,
        incarnation: u64,
        inbox: WorkerInbox<H::Task>,
        capabilities: Vec<String>,
    ) -> Option<WorkerKey> {
        self.with(|router| router.register(worker, incarnation, inbox, capabilities))
    }

    /// Tasks (id, attempt) handed to worker incarnation `worker` in a batch
    /// that it never started: they go back to the queue, costing no
    /// attempt.
    pub(crate) fn hand_back(&self, worker: WorkerKey, incarnation: u64, runs: Vec<(TaskId, u32)>) {
        self.with(|router| {
            for (id, attempt) in runs {
                router.unstarted(worker, incarnation, id, attempt);
            }
        });
    }

    /// A worker incarnation leaves before it ends (its process is gone):
    /// its finished attempts are settled, the tasks it never started go
    /// back to the queue, and it is forgotten, under one lock, so that no
    /// dispatch in between sends it a task.
    pub(crate) fn retire(
        &self,
        reports: Vec<Done<H::Output>>,
        (worker, key, incarnation): (&str, WorkerKey, u64),
        unstarted: Vec<(TaskId, u32)>,
    ) {
        self.with(|router| {
            for done in reports {
                router.on_done(done);
            }
            for (id, attempt) in unstarted {
                router.unstarted(key, incarnation, id, attempt);
            }
            router.unregister(worker, incarnation);
        });
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

    /// The books as they stand.
    pub(crate) fn books(&self) -> ShutdownReport {
        self.with(|router| router.books(Vec::new()))
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
    let mut next_tick = crate::deadline::after(Instant::now(), tick);
    loop {
        let Some(router) = WeakRouter(shared.clone()).upgrade() else {
            return;
        };
        let Some(wake_at) = router.with(|r| r.clock_plan(next_tick)) else {
            // Holders now serve what is queued themselves, however long.
            router.shared.clock_running.store(false, Ordering::SeqCst);
            router.after_unlock();
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
        if next_tick <= now {
            // The next tick after `now` on the grid of ticks (a late wake
            // skips the ticks it missed, without a loop per tick).
            let late = now.duration_since(next_tick).as_nanos();
            let step = tick.as_nanos().max(1);
            let skipped = u32::try_from(late / step + 1).unwrap_or(u32::MAX);
            next_tick = crate::deadline::after(next_tick, tick.saturating_mul(skipped));
        }
        router.with(|r| r.on_clock(tick_due));
    }
}

/// The router's lock held by a test, as another thread would hold it; let
/// go (dropped) the way every holder lets go.
#[cfg(test)]
pub(crate) struct Held<'a, H: TaskHandler> {
    router: &'a SharedRouter<H>,
    guard: Option<MutexGuard<'a, Router<H>>>,
}

#[cfg(test)]
impl<H: TaskHandler> Drop for Held<'_, H> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.router.after_unlock();
    }
}

#[cfg(test)]
impl<H: TaskHandler> SharedRouter<H> {
    /// Holds the lock until the result is dropped.
    pub(crate) fn hold(&self) -> Held<'_, H> {
        Held {
            router: self,
            guard: self.try_lock(),
        }
    }

    /// Reports left for the lock's holder.
    pub(crate) fn settled_waiting(&self) -> usize {
        self.shared.settled.len()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Duration;

    use candado::Runtime;

    use crate::{PoolBuilder, PoolConfig, TaskContext, TaskHandler};

    /// Sleeps its task's number of (virtual) milliseconds.
    struct Sleeper;

    impl TaskHandler for Sleeper {
        type Task = u64;
        type Output = u64;
        type Error = String;

        // The future must be `'static`: an `async fn` would borrow `self`.
        #[allow(clippy::manual_async_fn)]
        fn handle(
            &mut self,
            ms: u64,
            _: TaskContext,
        ) -> impl Future<Output = Result<u64, String>> + 'static {
            async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(ms)
            }
        }
    }

    async fn settle() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn a_worker_that_finds_the_lock_taken_leaves_its_report_to_the_holder() {
        crate::test_support::paused_system().block_on(async {
            let runtime = Runtime::builder().current_thread().build().unwrap();
            let pool = PoolBuilder::new(|| Sleeper)
                .config(PoolConfig {
                    size: 1,
                    ..PoolConfig::default()
                })
                .start(&runtime)
                .await
                .unwrap();
            let first = pool.submit(10).unwrap();
            let second = pool.submit(20).unwrap();
            settle().await;
            {
                // Another thread holds the lock while the first task ends:
                // its worker must neither wait for the lock nor lose the
                // report, which waits for the holder.
                let held = pool.router().hold();
                tokio::time::sleep(Duration::from_millis(10)).await;
                settle().await;
                assert_eq!(pool.router().settled_waiting(), 1);
                drop(held);
            }
            // The holder settled it on letting go and dispatched the next
            // task to the worker, which had gone idle.
            assert_eq!(pool.router().settled_waiting(), 0);
            assert_eq!(first.await, Ok(10));
            assert_eq!(second.await, Ok(20));
            let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
            assert!(report.balanced(), "{report:?}");
            assert_eq!(report.completed, 2);
        });
    }
}
