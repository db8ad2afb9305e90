//! The handle every thread uses to reach the router: its lock, and the
//! inboxes that spare the task path from ever waiting for it. What
//! each caller asks through it is in `calls.rs`; the clock task that drives
//! the timers is in `clock.rs`.

use std::sync::atomic::{fence, AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use actix::ArbiterHandle;
use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::inbox::Inbox;
use super::{clock, Gauges, Router};
use crate::messages::{this_thread, Caller, Done, Effect, Submit};
use crate::store::{MemoryStore, TaskStore};
use crate::TaskHandler;

/// Rounds of queued work a thread serves after letting go of the lock before
/// it hands the rest to the clock task.
const HOLDER_ROUNDS: usize = 4;

/// Times a worker tries the lock again before it leaves its report queued.
const SPINS: usize = 100;

pub(super) struct Shared<H: TaskHandler, S: TaskStore<H>> {
    pub(super) router: Mutex<Router<H, S>>,
    /// Submissions not yet accepted, oldest first. While every worker is
    /// busy, submitters only queue here and never contend for the router's
    /// lock; whoever takes that lock next (usually a worker finishing an
    /// attempt) accepts them first, so priority order is kept.
    pub(super) intake: CachePadded<Inbox<Submit<H>>>,
    /// Attempts settled by workers that found the lock taken; whoever holds
    /// it settles them before letting go. No thread ever waits for the lock
    /// on the task path, so none can be starved of it.
    pub(super) settled: CachePadded<Inbox<Done<H::Output>>>,
    /// What it publishes for its submitters and siblings.
    pub(super) public: Arc<Public>,
    /// Shared with the facade; once `closed` (shutdown started), submitters
    /// settle their tasks at once rather than leave them in the intake.
    pub(super) gauges: Arc<Gauges>,
    /// Wakes the clock task when a timer moves earlier, or when a thread
    /// has served queued work long enough and hands the rest over.
    pub(super) clock: Arc<Notify>,
    /// The clock task still runs (until the router stops).
    pub(super) clock_running: AtomicBool,
    /// The other routers of the pool (none for a pool with one router).
    pub(super) siblings: OnceLock<Vec<Sibling<H, S>>>,
}

/// What a router publishes for its submitters and its siblings (see
/// `balance.rs`), each written only when it changes. An allocation of its
/// own: a sibling reads it on every call without taking a reference to the
/// router, whose count shares a cache line with the router's lock.
pub(super) struct Public {
    /// Its intake or its settled queue may hold something (set after each
    /// push, cleared by the lock's holder as it accepts them). Siblings
    /// read it to tell whether tasks wait behind busy workers.
    pub(super) pending: CachePadded<AtomicBool>,
    /// Some worker may take a task now: submitters must dispatch
    /// themselves. Written under the router's lock after each pump.
    pub(super) room: CachePadded<AtomicBool>,
    /// Ready tasks any worker may take.
    pub(super) plain: CachePadded<AtomicUsize>,
    /// Ready tasks that need a capability or a worker of their own.
    pub(super) other: AtomicUsize,
    /// Its workers' attempts are quick.
    pub(super) quick: AtomicBool,
    /// Live workers.
    pub(super) workers: AtomicUsize,
    /// Workers in service.
    pub(super) serving: AtomicUsize,
    /// The best priority among the plain ready tasks
    /// ([`NO_PRIORITY`](super::balance::NO_PRIORITY) with none).
    pub(super) best: AtomicU16,
    /// Drained in a graceful shutdown, it waits to end until its siblings
    /// hold no ready task it could take: they poke it as they unlock.
    pub(super) lingering: AtomicBool,
}

/// Another router of the pool: what it publishes, and the router itself
/// (reached only to take its tasks or wake it).
pub(super) struct Sibling<H: TaskHandler, S: TaskStore<H>> {
    pub(super) public: Arc<Public>,
    pub(super) shared: Weak<Shared<H, S>>,
}

impl<H: TaskHandler, S: TaskStore<H>> Sibling<H, S> {
    /// The router, unless it is gone.
    pub(super) fn router(&self) -> Option<SharedRouter<H, S>> {
        self.shared.upgrade().map(|shared| SharedRouter { shared })
    }
}

/// What one call delivers once it lets go of the lock.
type Outbox<H> = SmallVec<[Effect<H>; 4]>;

/// A cheap, clonable handle to the router. Each call takes the router's lock
/// for a short, bounded piece of bookkeeping (never task code), then
/// delivers the messages and replies it produced with the lock released.
pub(crate) struct SharedRouter<H: TaskHandler, S: TaskStore<H> = MemoryStore<H>> {
    pub(super) shared: Arc<Shared<H, S>>,
}

impl<H: TaskHandler, S: TaskStore<H>> Clone for SharedRouter<H, S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<H: TaskHandler, S: TaskStore<H>> SharedRouter<H, S> {
    /// Shares `router` and starts its clock on `arbiter` (the control thread).
    pub(crate) fn start(router: Router<H, S>, arbiter: &ArbiterHandle) -> Self {
        let tick = router.tick();
        let gauges = router.gauges();
        let shared = Arc::new(Shared {
            router: Mutex::new(router),
            intake: CachePadded::new(Inbox::new()),
            settled: CachePadded::new(Inbox::new()),
            public: Arc::new(Public {
                pending: CachePadded::new(AtomicBool::new(false)),
                room: CachePadded::new(AtomicBool::new(false)),
                plain: CachePadded::new(AtomicUsize::new(0)),
                quick: AtomicBool::new(false),
                workers: AtomicUsize::new(0),
                serving: AtomicUsize::new(0),
                other: AtomicUsize::new(0),
                best: AtomicU16::new(super::balance::NO_PRIORITY),
                lingering: AtomicBool::new(false),
            }),
            gauges,
            clock: Arc::new(Notify::new()),
            clock_running: AtomicBool::new(true),
            siblings: OnceLock::new(),
        });
        let weak = Arc::downgrade(&shared);
        arbiter.spawn(clock::run(weak, tick));
        Self { shared }
    }

    /// Runs `f` under the lock (after accepting what waits in the intake,
    /// and followed by a dispatch), then delivers what it produced.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut Router<H, S>) -> R) -> R {
        let now = Instant::now();
        let router = self.shared.router.lock();
        let out = self.locked(router, now, None, f);
        self.after_unlock();
        out
    }

    /// The router's lock if nobody holds it. Whoever holds it deals with
    /// everything queued before letting go (see [`after_unlock`](Self::after_unlock)),
    /// so a caller that finds it taken leaves its work queued and carries on.
    pub(super) fn try_lock(&self) -> Option<MutexGuard<'_, Router<H, S>>> {
        self.shared.router.try_lock()
    }

    /// [`try_lock`](Self::try_lock), trying again for about as long as the
    /// lock is usually held before giving up. It watches the lock with
    /// plain reads and tries to take it only once it looks free, so the
    /// holder keeps the lock's cache line while it works.
    pub(super) fn try_lock_spinning(&self) -> Option<MutexGuard<'_, Router<H, S>>> {
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
    pub(super) fn locked<R>(
        &self,
        mut router: MutexGuard<'_, Router<H, S>>,
        now: Instant,
        caller: Option<Caller<'_, H>>,
        f: impl FnOnce(&mut Router<H, S>) -> R,
    ) -> R {
        let (caller, replies, runs) = match caller {
            Some(c) => (Some(c.wants), Some(c.replies), Some(c.runs)),
            None => (None, None, None),
        };
        router.now = router.now.max(now);
        router.here = this_thread();
        if let Some(wants) = caller {
            router.note_quick(wants);
        }
        router.caller = caller;
        self.accept_waiting(&mut router);
        // Retries whose time has come go back to the queue with whoever
        // calls first; the clock only covers a router nobody calls.
        let now = router.now;
        router.release_due(now);
        router.expire_due(now);
        router.untrip_due(now);
        let out = f(&mut router);
        // Siblings asked for tasks in this call (a bit each).
        let mut asked = 0;
        loop {
            // A sibling's better task first, then its own, best first.
            self.take_from_siblings(&mut router, &mut asked, true);
            router.pump();
            // Publish the room, then look at the queues once more: a
            // submitter that queued while we pumped either sees the room
            // and dispatches itself, or is seen here. Likewise, a free
            // worker looks at its siblings' tasks after saying it has room.
            // Written only when it changes: other threads read it on
            // every submission, and a write, even of the same value, takes
            // its cache line away from them.
            self.publish(&router);
            if self.take_from_siblings(&mut router, &mut asked, false) {
                continue;
            }
            if !self.shared.public.pending.load(Ordering::SeqCst) {
                break;
            }
            self.accept_waiting(&mut router);
        }
        self.finish_or_linger(&mut router);
        router.top_up_caller();
        router.caller = None;
        router.debug_check_free();
        let nudge = std::mem::take(&mut router.nudge_clock);
        if let Some(runs) = runs {
            runs.extend(router.handback.drain(..));
        }
        // Keep the router's buffer (and its capacity): a call usually
        // produces a message or two, which leave it without an allocation.
        let effects: Outbox<H> = match replies {
            // Hand the replies to the worker, and deliver the rest here.
            Some(replies) => {
                let mut others = Outbox::new();
                for effect in router.effects.drain(..) {
                    match effect {
                        Effect::Reply(..) => replies.push(effect),
                        other => others.push(other),
                    }
                }
                others
            }
            None => router.effects.drain(..).collect(),
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
    pub(super) fn announce(&self) {
        self.shared.public.pending.store(true, Ordering::SeqCst);
        // Pairs with the fence in `after_unlock`: either the holder sees
        // the flag, or the `try_lock` that follows this sees the lock free.
        fence(Ordering::SeqCst);
    }

    /// After letting go of the lock: anything queued while it was held
    /// whose author found the lock taken is dealt with here. Gives up on
    /// the lock if someone else took it (they check in turn), and after a
    /// few rounds hands what keeps coming to the clock task, so a thread
    /// never stays stuck serving everyone else.
    pub(super) fn after_unlock(&self) {
        self.after_unlock_once();
        self.balance();
    }

    /// [`after_unlock`](Self::after_unlock) without the look at the
    /// siblings (for calls made on a sibling's behalf).
    pub(super) fn after_unlock_once(&self) {
        let mut rounds = 0;
        loop {
            fence(Ordering::SeqCst);
            if !self.shared.public.pending.load(Ordering::SeqCst) {
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
    fn accept_waiting(&self, router: &mut Router<H, S>) {
        // A plain read first: the swap writes (taking the flag's cache line
        // from the threads that raise it) only when something waits.
        if !self.shared.public.pending.load(Ordering::SeqCst)
            || !self.shared.public.pending.swap(false, Ordering::SeqCst)
        {
            return;
        }
        self.shared.settled.drain(|done| router.on_done(done));
        self.shared.intake.drain(|submit| router.accept(submit));
    }
}

/// A [`SharedRouter`] that does not keep the router alive.
pub(crate) struct WeakRouter<H: TaskHandler, S: TaskStore<H> = MemoryStore<H>>(
    pub(super) Weak<Shared<H, S>>,
);

impl<H: TaskHandler, S: TaskStore<H>> WeakRouter<H, S> {
    /// The router, unless it is gone.
    pub(crate) fn upgrade(&self) -> Option<SharedRouter<H, S>> {
        self.0.upgrade().map(|shared| SharedRouter { shared })
    }
}

/// The router's lock held by a test, as another thread would hold it; let
/// go (dropped) the way every holder lets go.
#[cfg(test)]
pub(crate) struct Held<'a, H: TaskHandler, S: TaskStore<H>> {
    router: &'a SharedRouter<H, S>,
    guard: Option<MutexGuard<'a, Router<H, S>>>,
}

#[cfg(test)]
impl<H: TaskHandler, S: TaskStore<H>> Drop for Held<'_, H, S> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.router.after_unlock();
    }
}

#[cfg(test)]
impl<H: TaskHandler, S: TaskStore<H>> SharedRouter<H, S> {
    /// Holds the lock until the result is dropped.
    pub(crate) fn hold(&self) -> Held<'_, H, S> {
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
                let held = pool.router().get(0).hold();
                tokio::time::sleep(Duration::from_millis(10)).await;
                settle().await;
                assert_eq!(pool.router().get(0).settled_waiting(), 1);
                drop(held);
            }
            // The holder settled it on letting go and dispatched the next
            // task to the worker, which had gone idle.
            assert_eq!(pool.router().get(0).settled_waiting(), 0);
            assert_eq!(first.await, Ok(10));
            assert_eq!(second.await, Ok(20));
            let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
            assert!(report.balanced(), "{report:?}");
            assert_eq!(report.completed, 2);
        });
    }
}
