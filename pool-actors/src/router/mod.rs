//! The router: priority queues, dispatch, retries, dead-lettering and the
//! accounting that makes sure every accepted task ends exactly once.
//!
//! The router is shared state behind one lock ([`SharedRouter`]), not an
//! actor on the control thread: a submitter queues and dispatches its task
//! on its own thread, and a worker that finishes an attempt settles it and
//! takes the next task on its own thread. A pool has a router per worker
//! thread, over the workers of that thread ([`Routers`]): a task submitted
//! on a worker thread is usually accepted, run, settled and answered there,
//! crossing no thread; tasks move between routers only to keep every
//! worker busy (`balance.rs`). The lock is
//! never held while task code runs: messages to workers and replies to
//! callers are collected as [`Effect`]s and delivered after it is released.
//! Nobody on the task path waits for the lock: a submission or an attempt
//! report that finds it taken is queued, and the holder deals with it.
//! A clock task on the control thread drives the timers (retries, promotion,
//! the shutdown deadline).
//!
//! Every task the router accepts stays in its [`TaskStore`] (payload and
//! reply channel included) until it completes, is dead-lettered, or is
//! returned at shutdown; a worker only ever gets a clone of the payload for
//! one attempt.
//!
//! - `dispatch.rs`: the pump, batches for the calling worker, dispatch;
//! - `pick.rs`: picking a worker for a task;
//! - `settle.rs`: an attempt ends;
//! - `service.rs`: which workers are in service;
//! - `lifecycle.rs`: workers coming and going, draining, shutdown, the clock;
//! - `news.rs`: what the worker supervisor tells the router;
//! - `snapshot.rs`: the metrics snapshot;
//! - `keyset.rs`: the free workers as bit sets;
//! - `routers.rs`: [`Routers`], a pool's routers, one per worker thread;
//! - `balance.rs`: work moving between them;
//! - `merge.rs`: the pool's books and metrics, merged from theirs;
//! - `shared.rs`: [`SharedRouter`], the lock, and the inboxes that spare
//!   the task path from waiting for it (`inbox.rs`);
//! - `calls.rs`: what each caller asks through it;
//! - `clock.rs`: the clock task;
//! - `admission.rs`: load shedding, the hand-off, time to live, the rate
//!   limit;
//! - `rate.rs`: the token bucket of the rate limit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candado::{Alert, Breakers, ChildBreaker, HealthStatus};
use rustc_hash::FxHashSet;
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

use crate::latency::LatencyHistogram;
use crate::messages::{
    CallerWants, DiscardHook, Effect, ProcessGauge, Run, Submit, TaskResult, ThreadTag,
    WorkerInbox, WorkerKey,
};
use crate::retry::RetryConfig;
use crate::store::{MemoryStore, TaskStore};
use crate::{
    Dispatch, PoolEvent, RateLimitSettings, ShutdownReport, TaskFailure, TaskHandler, TaskId,
};
use keyset::KeySet;
use rate::TokenBucket;

mod admission;
mod balance;
mod calls;
mod clock;
mod dispatch;
mod drain_tests;
mod inbox;
mod keyset;
mod lifecycle;
mod merge;
mod news;
mod pick;
mod rate;
mod routers;
mod service;
mod settle;
mod shared;
mod snapshot;

pub(crate) use news::{WorkerNews, WorkerState};
pub(crate) use routers::{Routers, MAX_ROUTERS};
pub(crate) use shared::SharedRouter;

/// How long after the last call the clock leaves due retries to callers.
const RETRY_SLACK: Duration = Duration::from_millis(10);

/// Knobs the router needs (from the pool config).
#[derive(Debug, Clone)]
pub(crate) struct RouterSettings {
    pub(crate) name: String,
    pub(crate) concurrency: usize,
    pub(crate) dispatch: Dispatch,
    pub(crate) task_timeout: Duration,
    pub(crate) retry: RetryConfig,
    pub(crate) tick: Duration,
    /// The most workers (percent of the pool) breakers may take out.
    pub(crate) max_ejected_percent: u8,
    /// The token bucket on task starts, if any.
    pub(crate) rate_limit: Option<RateLimitSettings>,
}

/// State shared with the pool facade, read without taking the router's lock.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    /// Accepted tasks not yet dispatched (ready or waiting for a retry).
    /// On a cache line of its own: every submission and every dispatch,
    /// on every thread, writes it; the rest is read on the task path.
    pub(crate) waiting: crossbeam_utils::CachePadded<AtomicUsize>,
    /// Whether new submissions are accepted.
    pub(crate) closed: AtomicBool,
    /// Live event subscriptions (events are not built without one).
    pub(crate) subscribers: AtomicUsize,
    /// Why the pool can run no more work (its worker supervisor gave up).
    pub(crate) failed: std::sync::OnceLock<String>,
    /// Live worker incarnations, across the pool's routers (for the
    /// ejection limit, which counts across them).
    pub(crate) live_workers: AtomicUsize,
    /// Workers breakers hold out of service, across the pool's routers.
    pub(crate) ejected: AtomicUsize,
    /// Submitters of a `discard_oldest` pool between taking or seeking
    /// their places in the queue and handing their tasks to a router, by
    /// tasks. A submitter that finds the queue full and nothing to discard
    /// waits for these to arrive: they hold places it may discard.
    pub(crate) unseen: AtomicUsize,
}

/// A worker name the router has seen.
struct Worker<H: TaskHandler> {
    name: Arc<str>,
    /// Its live incarnation, if any.
    slot: Option<Slot<H>>,
    /// Tasks it completed, across incarnations.
    completed: u64,
    /// Its circuit breaker, if the pool has breakers.
    breaker: Option<ChildBreaker>,
    /// The last exit its supervisor reported: (incarnation, cause key),
    /// for the next incarnation's `WorkerRestarted`.
    last_exit: Option<(u64, String)>,
}

struct Slot<H: TaskHandler> {
    incarnation: u64,
    /// The thread it runs on.
    thread: ThreadTag,
    /// Its last attempts were quick, as it said when it last settled: a
    /// dispatch from its own thread prefers it (see [`Router::pick_worker`]).
    quick: bool,
    /// Where its attempts go.
    inbox: WorkerInbox<H::Task>,
    capabilities: HashSet<String>,
    in_flight: FxHashSet<TaskId>,
    health: HealthStatus,
    /// Isolated by its supervisor (as its events say).
    isolated: bool,
    /// Isolated by its supervisor for a reason other than its breaker (a
    /// brake, a deferred restart): out of service. Isolation by the
    /// breaker is the router's own call (`tripped`, `ejected`).
    held_out: bool,
    /// Its liveness strategy ordered a restart (stuck, silent): out of
    /// service until a new incarnation replaces it, or it recovers.
    stuck: bool,
    draining: bool,
    /// Its breaker opened (seen by the router as it recorded the outcome
    /// that opened it): until when. It asks to leave service until then.
    tripped: Option<Instant>,
    /// Out of service for its open breaker: a tripped worker within the
    /// ejection limit (see [`Router::reconsider_ejections`]).
    ejected: bool,
    /// Its process's pid and RSS, for a worker process.
    process: Option<Arc<ProcessGauge>>,
}

enum Phase {
    Running,
    /// Every caller of `shutdown` so far, waiting for the one report.
    Draining {
        replies: Vec<oneshot::Sender<ShutdownReport>>,
    },
    Stopped(ShutdownReport),
}

#[derive(Default)]
struct Stats {
    submitted: u64,
    completed: u64,
    failed: u64,
    retried: u64,
    dead_lettered: u64,
    returned: u64,
    attempts: u64,
    worker_starts: u64,
    /// Ready tasks taken from siblings, and given to them (see `balance.rs`).
    moved_in: u64,
    moved_out: u64,
    latency: LatencyHistogram,
    queue_wait: LatencyHistogram,
    restarts: BTreeMap<String, u64>,
    /// Each worker's restarts counted so far (the supervisor's totals).
    restarts_seen: HashMap<String, u32>,
    last_exit: HashMap<String, String>,
    alerts: VecDeque<Alert>,
}

pub(crate) struct Router<H: TaskHandler, S: TaskStore<H> = MemoryStore<H>> {
    settings: RouterSettings,
    gauges: Arc<Gauges>,
    events: broadcast::Sender<PoolEvent>,
    breakers: Option<Breakers>,
    /// Every task accepted, until it ends: its record, the ready queue, the
    /// tasks waiting for their time (the router only ever calls the trait).
    store: S,
    /// Every worker name seen, by [`WorkerKey`].
    workers: Vec<Worker<H>>,
    /// Worker keys by name.
    keys: BTreeMap<Arc<str>, WorkerKey>,
    /// Workers that may take a task now (see [`Router::has_room`]), so a
    /// dispatch looks at those only, not at every worker.
    free: KeySet,
    /// Workers in service (see [`Router::in_service`]), whether or not
    /// they have room: how many its siblings may count on (see
    /// `balance.rs`).
    serving: KeySet,
    /// `free` by the thread each worker runs on, indexed by [`ThreadTag`]
    /// (small numbers, given in order: a vector is cheaper than a map).
    free_on: Vec<KeySet>,
    /// Workers whose breaker is open, by the end of its cooldown.
    tripped: BTreeSet<(Instant, WorkerKey)>,
    /// Last worker chosen, for round-robin and fair tie-breaking.
    cursor: Option<WorkerKey>,
    drains: Vec<(HashSet<WorkerKey>, oneshot::Sender<()>)>,
    phase: Phase,
    /// Ending every held task at shutdown; the shutdown finishes afterwards.
    abandoning: bool,
    /// Why the pool can run no more work (its worker supervisor gave up).
    failed: Option<String>,
    /// When a graceful shutdown gives up on the tasks still held.
    deadline: Option<Instant>,
    /// When the clock task looks next (`None` while it is not asleep).
    clock_at: Option<Instant>,
    /// The clock must look earlier than it planned.
    nudge_clock: bool,
    /// When a submitter or a worker last called. Callers release due
    /// retries themselves, so the clock need not wake for them while the
    /// router is busy (see [`Router::clock_time`]).
    busy_at: Option<Instant>,
    epoch: Instant,
    /// The time of the current call (read once per lock taken).
    now: Instant,
    /// The thread making the current call.
    here: ThreadTag,
    stats: Stats,
    /// Delivered once the lock is released.
    effects: Vec<Effect<H>>,
    /// The worker incarnation making the current call (settling attempts):
    /// its next tasks are handed back directly, not sent.
    caller: Option<CallerWants>,
    /// The next tasks for `caller`.
    handback: Vec<Run<H::Task>>,
    /// The rate limit's bucket, if the pool has one.
    bucket: Option<TokenBucket>,
    /// Tasks with a time to live, by when they expire (entries of tasks
    /// that ended since are skipped).
    expiries: BTreeSet<(Instant, TaskId)>,
    /// Told of every task load shedding discards.
    on_discard: Option<DiscardHook<H::Task>>,
    /// Sticky routing: each key's worker incarnation.
    sticky: HashMap<String, (WorkerKey, u64)>,
    /// Live worker incarnations (slots), published for the pool's other
    /// routers.
    live: usize,
    /// The last worker to settle said its attempts are quick: a plain task
    /// submitted on this router's thread stays here (see `routers.rs`).
    quick: bool,
    /// It says the pool-wide events that every router would otherwise
    /// say alike (`Failed`): the first of the pool's routers.
    lead: bool,
    /// It has siblings: a graceful drain that empties it ends only once
    /// they hold no ready task its workers could take (see `balance.rs`).
    siblings: bool,
}

impl<H: TaskHandler, S: TaskStore<H>> Router<H, S> {
    pub(crate) fn new(
        settings: RouterSettings,
        gauges: Arc<Gauges>,
        events: broadcast::Sender<PoolEvent>,
        store: S,
        breakers: Option<Breakers>,
    ) -> Self {
        let bucket = settings
            .rate_limit
            .map(|limit| TokenBucket::new(limit, Instant::now()));
        Self {
            settings,
            gauges,
            events,
            breakers,
            store,
            workers: Vec::new(),
            keys: BTreeMap::new(),
            free: KeySet::default(),
            free_on: Vec::new(),
            serving: KeySet::default(),
            tripped: BTreeSet::new(),
            cursor: None,
            drains: Vec::new(),
            phase: Phase::Running,
            abandoning: false,
            failed: None,
            deadline: None,
            clock_at: None,
            nudge_clock: false,
            busy_at: None,
            epoch: Instant::now(),
            now: Instant::now(),
            here: 0,
            stats: Stats::default(),
            effects: Vec::new(),
            caller: None,
            handback: Vec::new(),
            bucket,
            expiries: BTreeSet::new(),
            on_discard: None,
            sticky: HashMap::new(),
            live: 0,
            quick: false,
            lead: true,
            siblings: false,
        }
    }

    /// Router `index` of a pool's `count` (see `routers.rs`): its time
    /// (uptime, the latency window) counts from `epoch`, the pool's start,
    /// like its siblings', and only the first (`lead`) says pool-wide
    /// events.
    pub(crate) fn in_pool(mut self, epoch: Instant, index: usize, count: usize) -> Self {
        self.epoch = epoch;
        self.stats.latency = LatencyHistogram::since(epoch);
        self.stats.queue_wait = LatencyHistogram::since(epoch);
        self.lead = index == 0;
        self.siblings = count > 1;
        self
    }

    /// Registers the hook told of every task load shedding discards.
    pub(crate) fn with_discard_hook(mut self, hook: Option<DiscardHook<H::Task>>) -> Self {
        self.on_discard = hook;
        self
    }

    /// The gauges it shares with the pool facade.
    pub(crate) fn gauges(&self) -> Arc<Gauges> {
        self.gauges.clone()
    }

    /// The live incarnation of worker `key`.
    fn slot(&self, key: WorkerKey) -> Option<&Slot<H>> {
        self.workers.get(key)?.slot.as_ref()
    }

    fn slot_mut(&mut self, key: WorkerKey) -> Option<&mut Slot<H>> {
        self.workers.get_mut(key)?.slot.as_mut()
    }

    /// Worker `key`'s name.
    fn name(&self, key: WorkerKey) -> &Arc<str> {
        &self.workers[key].name
    }

    /// Live incarnations, with their keys.
    fn slots(&self) -> impl Iterator<Item = (WorkerKey, &Slot<H>)> + Clone {
        self.workers
            .iter()
            .enumerate()
            .filter_map(|(key, w)| Some((key, w.slot.as_ref()?)))
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether anyone listens to events (they are not built otherwise).
    fn observed(&self) -> bool {
        self.gauges.subscribers.load(Ordering::Relaxed) > 0
    }

    fn emit(&self, event: PoolEvent) {
        let _ = self.events.send(event);
    }

    fn reply(&mut self, reply: Option<oneshot::Sender<TaskResult<H>>>, result: TaskResult<H>) {
        if let Some(reply) = reply {
            self.effects.push(Effect::Reply(reply, result));
        }
    }

    /// When the clock should look for a retry due at `due`: then, unless
    /// the router is busy — called in the last [`RETRY_SLACK`] — in which
    /// case its callers release the retry on time and the clock only checks
    /// once the calls stop. A retry is never early, and late by at most
    /// [`RETRY_SLACK`] only if every caller fell silent just before it.
    fn clock_time(&self, due: Instant) -> Instant {
        self.busy_at.map_or(due, |busy| due.max(busy + RETRY_SLACK))
    }

    /// Makes sure the clock looks again by `due`.
    fn wake_clock_by(&mut self, due: Instant) {
        if self.clock_at.is_none_or(|at| due < at) {
            self.clock_at = Some(due);
            self.nudge_clock = true;
        }
    }

    /// Task `id` waits until `due` (its dependency's breaker is open).
    fn delay(&mut self, due: Instant, id: TaskId) {
        self.store.delay(id, due);
        self.wake_clock_by(self.clock_time(due));
    }

    pub(crate) fn accept(&mut self, mut submit: Submit<H>) {
        let now = self.now;
        self.stats.submitted += 1;
        if !matches!(self.phase, Phase::Running) || self.failed.is_some() {
            // Raced with shutdown (or the pool failed): hand it back, and
            // count it so the books balance.
            self.gauges.waiting.fetch_sub(1, Ordering::Relaxed);
            self.stats.returned += 1;
            let returned = TaskFailure::Returned {
                id: submit.id,
                task: submit.task,
            };
            self.reply(submit.reply, Err(returned));
            return;
        }
        self.route_key(&mut submit);
        if let Some(ttl) = submit.options.ttl {
            self.note_expiry(submit.id, submit.submitted_at, ttl);
        }
        if self.skips_queue(&submit) {
            self.dispatch_at_once(submit);
        } else {
            self.store.enqueue(submit, now);
        }
    }
}
