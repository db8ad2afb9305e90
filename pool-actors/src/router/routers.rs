//! A pool's routers: one per worker thread, each over the workers of its
//! thread, so a task submitted on a thread is usually accepted, run,
//! settled and answered there, and the books of one thread's tasks never
//! cross to another core. Work moves between them only when one has a
//! free worker and another has tasks waiting (see `balance.rs`).
//!
//! A pool with a rate limit has one router: its token bucket counts every
//! start of the pool. The breakers' ejection limit counts across the
//! routers (through the pool's gauges).
//!
//! Where things go:
//! - a worker belongs to the router of the thread it first registered
//!   from, for good (its later incarnations too, wherever they run);
//! - a plain task goes to its submitter's thread's router if that has
//!   room and its tasks are quick; else to a router with room (the
//!   submitter's thread going round them, so longer tasks run side by side
//!   on the threads); else it waits at home (or, from a thread with no
//!   workers, in the next router that has workers);
//! - a task for one worker (a broadcast's copy) goes to that worker's
//!   router; a keyed task goes to the router its key hashes to (among the
//!   routers with workers), whose sticky map sends it to one worker;
//! - what concerns the pool as a whole (shutdown, drains, books, metrics,
//!   the pool-wide events) is asked of every router and merged.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use actix::ArbiterHandle;
use parking_lot::RwLock;
use rustc_hash::FxHasher;
use smallvec::SmallVec;
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

use super::merge;
use super::shared::Sibling;
use super::{Router, SharedRouter, WorkerNews};
use crate::messages::ADDRESSED;
use crate::messages::{this_thread, ProcessGauge, Submit, ThreadTag, WorkerInbox, WorkerKey};
use crate::metrics::PoolMetrics;
use crate::store::{MemoryStore, TaskStore};
use crate::{PoolEvent, ShutdownMode, ShutdownReport, TaskHandler};

/// The most routers a pool has (siblings are tracked a bit each).
pub(crate) const MAX_ROUTERS: usize = 64;

/// No router (a thread that runs no worker).
const NOWHERE: usize = usize::MAX;

/// How many times a submitter of a `discard_oldest` pool looks for tasks
/// to discard while other submitters' tasks are on their way to a router
/// (it yields its thread in between).
const SHED_ROUNDS: usize = 1_000;

thread_local! {
    /// The calling thread's router in the pool it last asked about:
    /// (the pool's routers' number, the router or [`NOWHERE`]).
    static HOME: Cell<(u64, usize)> = const { Cell::new((0, NOWHERE)) };
    /// Where the calling thread's next longer task starts looking for a
    /// router with room.
    static ROTATION: Cell<usize> = const { Cell::new(0) };
}

/// Numbers the pools' router sets, for [`HOME`].
static NEXT_SET: AtomicU64 = AtomicU64::new(1);

struct Many<H: TaskHandler, S: TaskStore<H>> {
    /// The pool's name, for logs.
    name: String,
    routers: Vec<SharedRouter<H, S>>,
    /// For [`HOME`].
    number: u64,
    /// Each worker name's router, fixed when first needed.
    owners: RwLock<HashMap<Arc<str>, usize>>,
    /// Each thread workers registered from, and its router.
    threads: RwLock<HashMap<ThreadTag, usize>>,
    /// The router the next new thread gets.
    next_thread: AtomicUsize,
    /// Round-robin over the routers with workers, for submitters on
    /// threads without one.
    cursor: AtomicUsize,
    events: broadcast::Sender<PoolEvent>,
    /// Where the shutdown's books are gathered.
    control: ArbiterHandle,
    /// A shutdown was asked for (`DrainStarted` is said once).
    stopping: AtomicBool,
    /// `ShutDown` was said.
    announced: AtomicBool,
}

/// The routers of one pool (see the module docs). Cheap to clone.
pub(crate) struct Routers<H: TaskHandler, S: TaskStore<H> = MemoryStore<H>> {
    many: Arc<Many<H, S>>,
}

impl<H: TaskHandler, S: TaskStore<H>> Clone for Routers<H, S> {
    fn clone(&self) -> Self {
        Self {
            many: self.many.clone(),
        }
    }
}

/// [`Routers`] that do not keep the pool's routers alive.
pub(crate) struct WeakRouters<H: TaskHandler, S: TaskStore<H> = MemoryStore<H>>(Weak<Many<H, S>>);

impl<H: TaskHandler, S: TaskStore<H>> WeakRouters<H, S> {
    /// The routers, unless they are gone.
    pub(crate) fn upgrade(&self) -> Option<Routers<H, S>> {
        self.0.upgrade().map(|many| Routers { many })
    }
}

impl<H: TaskHandler, S: TaskStore<H>> Routers<H, S> {
    /// Starts `routers` (at least one, at most [`MAX_ROUTERS`]), their
    /// clocks on `control`, and makes them siblings.
    pub(crate) fn start(
        name: &str,
        routers: Vec<Router<H, S>>,
        events: broadcast::Sender<PoolEvent>,
        control: &ArbiterHandle,
    ) -> Self {
        debug_assert!((1..=MAX_ROUTERS).contains(&routers.len()));
        let routers: Vec<SharedRouter<H, S>> = routers
            .into_iter()
            .map(|router| SharedRouter::start(router, control))
            .collect();
        if routers.len() > 1 {
            for (index, router) in routers.iter().enumerate() {
                let siblings = routers
                    .iter()
                    .enumerate()
                    .filter(|&(other, _)| other != index)
                    .map(|(_, r)| Sibling {
                        public: r.shared.public.clone(),
                        shared: Arc::downgrade(&r.shared),
                    })
                    .collect();
                let _ = router.shared.siblings.set(siblings);
            }
        }
        Self {
            many: Arc::new(Many {
                name: name.to_owned(),
                routers,
                number: NEXT_SET.fetch_add(1, Ordering::Relaxed),
                owners: RwLock::default(),
                threads: RwLock::default(),
                next_thread: AtomicUsize::new(0),
                cursor: AtomicUsize::new(0),
                events,
                control: control.clone(),
                stopping: AtomicBool::new(false),
                announced: AtomicBool::new(false),
            }),
        }
    }

    /// Router `index`.
    pub(crate) fn get(&self, index: usize) -> &SharedRouter<H, S> {
        &self.many.routers[index]
    }

    fn all(&self) -> &[SharedRouter<H, S>] {
        &self.many.routers
    }

    /// A handle that does not keep the routers alive.
    pub(crate) fn downgrade(&self) -> WeakRouters<H, S> {
        WeakRouters(Arc::downgrade(&self.many))
    }

    /// The calling thread's router, if a worker registered from it.
    fn home(&self) -> Option<usize> {
        if self.all().len() == 1 {
            return Some(0);
        }
        let (number, cached) = HOME.get();
        let index = if number == self.many.number {
            cached
        } else {
            let index = self
                .many
                .threads
                .read()
                .get(&this_thread())
                .copied()
                .unwrap_or(NOWHERE);
            HOME.set((self.many.number, index));
            index
        };
        (index != NOWHERE).then_some(index)
    }

    /// The calling thread's router, given to it now if it has none (a
    /// worker registers from it).
    fn home_or_assign(&self) -> usize {
        if let Some(index) = self.home() {
            return index;
        }
        let n = self.all().len();
        let index = *self
            .many
            .threads
            .write()
            .entry(this_thread())
            .or_insert_with(|| self.many.next_thread.fetch_add(1, Ordering::Relaxed) % n);
        HOME.set((self.many.number, index));
        index
    }

    /// Worker `name`'s router, fixed now if it has none: `fallback`'s.
    fn owner(&self, name: &str, fallback: impl FnOnce() -> usize) -> usize {
        if self.all().len() == 1 {
            return 0;
        }
        if let Some(&index) = self.many.owners.read().get(name) {
            return index;
        }
        let index = fallback();
        *self.many.owners.write().entry(name.into()).or_insert(index)
    }

    /// The next router with workers, round-robin (router 0 with none).
    fn next_with_workers(&self) -> usize {
        let routers = self.all();
        let start = self.many.cursor.fetch_add(1, Ordering::Relaxed);
        (0..routers.len())
            .map(|k| (start + k) % routers.len())
            .find(|&i| routers[i].shared.public.workers.load(Ordering::Relaxed) > 0)
            .unwrap_or(0)
    }

    /// Where a plain task goes (see the module docs).
    fn plain_target(&self) -> usize {
        let routers = self.all();
        let home = self.home();
        let room = |i: usize| routers[i].shared.public.room.load(Ordering::SeqCst);
        if let Some(home) = home {
            // Quick tasks stay on their thread: handing one over and its
            // reply back then wake no other thread.
            if room(home) && routers[home].shared.public.quick.load(Ordering::SeqCst) {
                return home;
            }
        }
        // Longer tasks go round the routers with room, so that they run
        // side by side on the threads.
        let start = ROTATION.get();
        ROTATION.set(start.wrapping_add(1));
        if let Some(index) = (0..routers.len())
            .map(|k| (start + k) % routers.len())
            .find(|&i| room(i))
        {
            return index;
        }
        match home {
            Some(home) if routers[home].shared.public.workers.load(Ordering::Relaxed) > 0 => home,
            _ => self.next_with_workers(),
        }
    }

    /// The router a keyed task goes to: its key's, among those with workers.
    fn key_target(&self, key: &str) -> usize {
        let routers = self.all();
        let with: SmallVec<[usize; 8]> = (0..routers.len())
            .filter(|&i| routers[i].shared.public.workers.load(Ordering::Relaxed) > 0)
            .collect();
        let mut hasher = FxHasher::default();
        key.hash(&mut hasher);
        let hash = hasher.finish() as usize;
        match with.len() {
            0 => hash % routers.len(),
            n => with[hash % n],
        }
    }

    /// Where `submit` goes.
    fn target(&self, submit: &Submit<H>) -> usize {
        if self.all().len() == 1 {
            return 0;
        }
        if let Some(route) = &submit.route {
            let name = route.trim_start_matches(ADDRESSED);
            return self.owner(name, || self.next_with_workers());
        }
        if let Some(key) = submit.options.key.as_deref() {
            return self.key_target(key);
        }
        self.plain_target()
    }

    /// Accepts submissions (see [`SharedRouter::submit`]), each in its
    /// router, in order within each router.
    pub(crate) fn submit(&self, submits: impl IntoIterator<Item = Submit<H>>) {
        let mut submits = submits.into_iter();
        let Some(first) = submits.next() else {
            return;
        };
        // Its submission's time serves as the router's: one clock read
        // less per task.
        let now = first.submitted_at;
        let index = self.target(&first);
        if submits.size_hint() == (0, Some(0)) {
            // One task (the usual case): straight to its router.
            self.submit_to(index, std::iter::once(first), now);
            return;
        }
        // The next group's first task and its router (each task's router
        // is worked out once: a plain task's turns the rotation).
        let mut next = Some((index, first));
        while let Some((index, first)) = next.take() {
            let mut group: SmallVec<[Submit<H>; 1]> = SmallVec::new();
            group.push(first);
            for submit in submits.by_ref() {
                let target = self.target(&submit);
                if target != index {
                    next = Some((target, submit));
                    break;
                }
                group.push(submit);
            }
            self.submit_to(index, group, now);
        }
    }

    /// Hands `submits` to router `index` (see [`SharedRouter::submit`]).
    fn submit_to(&self, index: usize, submits: impl IntoIterator<Item = Submit<H>>, now: Instant) {
        let router = &self.all()[index];
        router.submit(submits, now);
        if self.all().len() > 1 {
            // Queued with no room: a sibling with room takes it.
            router.balance();
        }
    }

    /// Starts `submit` on a worker now (`None`), or hands it back: tried
    /// in its own router for a task for one worker or a keyed task, else
    /// at home first, then in every other router.
    pub(crate) fn hand_off(&self, mut submit: Submit<H>) -> Option<Submit<H>> {
        let routers = self.all();
        if routers.len() == 1 || submit.route.is_some() || submit.options.key.is_some() {
            return routers[self.target(&submit)].hand_off(submit);
        }
        let home = self.home();
        let order = home
            .into_iter()
            .chain((0..routers.len()).filter(|&i| Some(i) != home));
        for index in order {
            submit = routers[index].hand_off(submit)?;
        }
        Some(submit)
    }

    /// Makes room for `n` tasks on a full queue (see [`Router::shed`]),
    /// from the calling thread's router first.
    pub(crate) fn shed(&self, n: usize, least: u8, bound: usize) -> bool {
        let routers = self.all();
        let home = self.home();
        let unseen = &routers[0].shared.gauges.unseen;
        for _ in 0..SHED_ROUNDS {
            // Read before looking: a task whose submitter is no longer
            // counted is in a router's store or intake, where the look
            // finds it.
            let others_on_the_way = unseen.load(Ordering::SeqCst) > n;
            let shed = home
                .into_iter()
                .chain((0..routers.len()).filter(|&i| Some(i) != home))
                .any(|index| routers[index].shed(n, least, bound));
            // Nothing to discard, unless another submitter holds places
            // whose tasks were on their way (a few instructions away from
            // a router) as it looked: it looks again once they arrive.
            if shed || !others_on_the_way {
                return shed;
            }
            std::thread::yield_now();
        }
        false
    }

    /// A worker incarnation is up: it joins its name's router (the one of
    /// the thread it first registered from). Returns that router and its
    /// key there (`None` if it is stale).
    pub(crate) fn register(
        &self,
        worker: Arc<str>,
        incarnation: u64,
        inbox: WorkerInbox<H::Task>,
        capabilities: Vec<String>,
        process: Option<Arc<ProcessGauge>>,
    ) -> Option<(usize, WorkerKey)> {
        let index = self.owner(&worker, || self.home_or_assign());
        self.all()[index]
            .register(worker, incarnation, inbox, capabilities, process)
            .map(|key| (index, key))
    }

    /// A worker incarnation is gone.
    pub(crate) fn unregister(&self, worker: &str, incarnation: u64) {
        let index = self.owner(worker, || 0);
        self.all()[index].unregister(worker, incarnation);
    }

    /// News from the worker supervisor, to the router of the worker it is
    /// about (every router for the supervisor's end).
    pub(crate) fn news(&self, news: WorkerNews) {
        let routers = self.all();
        match news {
            WorkerNews::Health { ref worker, .. }
            | WorkerNews::Restarted { ref worker, .. }
            | WorkerNews::Exited { ref worker, .. }
            | WorkerNews::Zombie { ref worker, .. } => {
                let index = self.owner(worker, || 0);
                routers[index].news(news);
            }
            WorkerNews::Alert(_) => routers[0].news(news),
            WorkerNews::Resync(states) => {
                let mut by_router: Vec<Vec<_>> = routers.iter().map(|_| Vec::new()).collect();
                for state in states {
                    let index = self.owner(&state.worker, || 0);
                    by_router[index].push(state);
                }
                for (router, states) in routers.iter().zip(by_router) {
                    if !states.is_empty() {
                        router.news(WorkerNews::Resync(states));
                    }
                }
            }
            WorkerNews::SupervisorGone {
                stopped: true,
                reason,
            } => {
                // The runtime shut down under the pool: the pool shuts
                // down too, handing every unfinished task back. After the
                // pool's own shutdown this is only its workers going, as
                // asked.
                if !self.many.stopping.load(Ordering::SeqCst) {
                    tracing::warn!(
                        pool = %self.many.name,
                        reason,
                        "the pool's workers were stopped from outside: the pool shuts down"
                    );
                }
                let (books, _) = oneshot::channel();
                self.shutdown(
                    ShutdownMode::Immediate {
                        unfinished: crate::UnfinishedAction::Return,
                    },
                    books,
                );
            }
            WorkerNews::SupervisorGone { reason, stopped } => {
                for router in routers {
                    router.news(WorkerNews::SupervisorGone {
                        reason: reason.clone(),
                        stopped,
                    });
                }
            }
        }
    }

    /// Stops routing to `workers`; done once they hold no task (`Err`: a
    /// router stopped first).
    pub(crate) async fn drain(&self, workers: &[String]) -> Result<(), oneshot::error::RecvError> {
        let routers = self.all();
        let mut by_router: Vec<Vec<String>> = routers.iter().map(|_| Vec::new()).collect();
        for worker in workers {
            let index = match routers.len() {
                1 => 0,
                _ => match self.many.owners.read().get(worker.as_str()) {
                    Some(&index) => index,
                    // Never registered: it holds nothing.
                    None => continue,
                },
            };
            by_router[index].push(worker.clone());
        }
        let mut waits = Vec::new();
        for (router, workers) in routers.iter().zip(by_router) {
            if routers.len() > 1 && workers.is_empty() {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            router.drain(&workers, tx);
            waits.push(rx);
        }
        for wait in waits {
            wait.await?;
        }
        Ok(())
    }

    /// Starts the shutdown of every router; `reply` gets the pool's books
    /// once all have stopped. Says `DrainStarted` (graceful, the first call)
    /// and `ShutDown` (once) for the pool as a whole.
    pub(crate) fn shutdown(&self, mode: ShutdownMode, reply: oneshot::Sender<ShutdownReport>) {
        let routers = self.all();
        if !self.many.stopping.swap(true, Ordering::SeqCst) {
            if let ShutdownMode::Graceful { deadline } = mode {
                let (queued, in_flight) = routers
                    .iter()
                    .map(SharedRouter::load)
                    .fold((0, 0), |(q, f), (q2, f2)| (q + q2, f + f2));
                let _ = self.many.events.send(PoolEvent::DrainStarted {
                    deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                    queued,
                    in_flight,
                });
            }
        }
        let waits: Vec<_> = routers
            .iter()
            .map(|router| {
                let (tx, rx) = oneshot::channel();
                router.shutdown(mode, tx);
                (router.clone(), rx)
            })
            .collect();
        let many = self.many.clone();
        // Gathered on the control thread, so the books are said even if
        // nobody awaits them (a dropped pool).
        let _ = self.many.control.spawn(async move {
            let mut reports = Vec::with_capacity(waits.len());
            for (router, wait) in waits {
                // A router answers once it has stopped; should it ever
                // drop the reply, its books as they stand are the answer.
                reports.push(wait.await.unwrap_or_else(|_| router.books()));
            }
            let report = merge::books(reports);
            if !many.announced.swap(true, Ordering::SeqCst) {
                let _ = many.events.send(PoolEvent::ShutDown(report.clone()));
            }
            let _ = reply.send(report);
        });
    }

    /// The pool's books as they stand.
    pub(crate) fn books(&self) -> ShutdownReport {
        merge::books(self.all().iter().map(SharedRouter::books).collect())
    }

    /// A metrics snapshot of the pool.
    pub(crate) fn metrics(&self) -> PoolMetrics {
        let routers = self.all();
        if routers.len() == 1 {
            return routers[0].metrics();
        }
        merge::metrics(
            routers[0].metrics_part(),
            routers[1..].iter().map(SharedRouter::metrics_part),
        )
    }
}
