//! The router: priority queues, dispatch, retries, dead-lettering and the
//! accounting that makes sure every accepted task ends exactly once.
//!
//! It runs on the runtime's control thread and never runs task code. Every
//! task it accepts stays in `tasks` (payload and reply channel included)
//! until it completes, is dead-lettered, or is returned at shutdown; a worker
//! only ever gets a clone of the payload for one attempt.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, SpawnHandle};
use candado::{Alert, Backoff, BreakerState, Breakers, HealthStatus};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

use crate::dead_letter::{DeadLetters, DeadTask, Store};
use crate::inbox::Inbox;
use crate::metrics::{
    HealthSection, PerformanceSection, PoolMetrics, PoolSection, Samples, TasksSection,
    WorkerStatus, WorkersSection,
};
use crate::queue::ReadyQueues;
use crate::retry::{DelayedRetries, RetryConfig};
use crate::worker::{Cancel, PoolWorker, Run};
use crate::{
    Attempt, AttemptError, Dispatch, PoolEvent, ShutdownMode, ShutdownReport, TaskFailure,
    TaskHandler, TaskId, TaskOptions, UnfinishedAction, DEFAULT_PRIORITY,
};

/// What a task's submitter eventually receives.
pub(crate) type TaskResult<H> =
    Result<<H as TaskHandler>::Output, TaskFailure<<H as TaskHandler>::Task>>;

/// Knobs the router needs (from the pool config).
#[derive(Debug, Clone)]
pub(crate) struct RouterSettings {
    pub(crate) name: String,
    pub(crate) concurrency: usize,
    pub(crate) dispatch: Dispatch,
    pub(crate) task_timeout: Duration,
    pub(crate) retry: RetryConfig,
    pub(crate) promote_after: Option<Duration>,
    pub(crate) tick: Duration,
}

/// State shared with the pool facade, read without a round trip.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    /// Accepted tasks not yet dispatched (ready or waiting for a retry).
    pub(crate) waiting: AtomicUsize,
    /// Whether new submissions are accepted.
    pub(crate) closed: AtomicBool,
}

struct TaskRecord<H: TaskHandler> {
    task: H::Task,
    options: TaskOptions,
    priority: u8,
    seq: u64,
    reply: Option<oneshot::Sender<TaskResult<H>>>,
    attempts: Vec<Attempt>,
    backoff: Backoff,
    submitted_at: Instant,
    queued_at: Instant,
    /// Where its current attempt runs: (worker, incarnation, started at ms).
    running: Option<(Arc<str>, u64, u64)>,
}

struct Slot<H: TaskHandler> {
    incarnation: u64,
    addr: Addr<PoolWorker<H>>,
    capabilities: HashSet<String>,
    in_flight: HashSet<TaskId>,
    health: HealthStatus,
    isolated: bool,
    draining: bool,
}

enum Phase {
    Running,
    Draining {
        reply: oneshot::Sender<ShutdownReport>,
    },
    Stopped(ShutdownReport),
}

pub(crate) struct Router<H: TaskHandler> {
    settings: RouterSettings,
    gauges: Arc<Gauges>,
    events: broadcast::Sender<PoolEvent>,
    dead: Addr<DeadLetters<H::Task>>,
    breakers: Option<Breakers>,
    queues: ReadyQueues,
    delayed: DelayedRetries,
    retry_timer: Option<(Instant, SpawnHandle)>,
    tasks: HashMap<TaskId, TaskRecord<H>>,
    workers: BTreeMap<Arc<str>, Slot<H>>,
    /// Completed tasks per worker, across incarnations.
    completed_by: HashMap<Arc<str>, u64>,
    /// Last worker chosen, for round-robin and fair tie-breaking.
    cursor: Option<Arc<str>>,
    drains: Vec<(HashSet<Arc<str>>, oneshot::Sender<()>)>,
    phase: Phase,
    /// Ending every held task at shutdown; the shutdown finishes afterwards.
    abandoning: bool,
    /// Housekeeping timer; cancelled once stopped, so the router can end
    /// when the pool lets go of it.
    tick: Option<SpawnHandle>,
    seq: u64,
    rng: SmallRng,
    epoch: Instant,
    stats: Stats,
    mail: Arc<Mailboxes<H>>,
}

/// Submissions and attempt results, delivered in batches (see [`Inbox`]):
/// one [`Wake`] message per batch instead of one message per task.
pub(crate) struct Mailboxes<H: TaskHandler> {
    pub(crate) submits: Inbox<Submit<H>>,
    pub(crate) dones: Inbox<Done<H::Output>>,
}

impl<H: TaskHandler> Default for Mailboxes<H> {
    fn default() -> Self {
        Self {
            submits: Inbox::default(),
            dones: Inbox::default(),
        }
    }
}

/// Something waits in the router's [`Mailboxes`].
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Wake;

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
    latency: Samples,
    queue_wait: Samples,
    restarts: BTreeMap<String, u64>,
    last_exit: HashMap<String, String>,
    alerts: VecDeque<Alert>,
}

impl<H: TaskHandler> Router<H> {
    pub(crate) fn new(
        settings: RouterSettings,
        gauges: Arc<Gauges>,
        events: broadcast::Sender<PoolEvent>,
        dead: Addr<DeadLetters<H::Task>>,
        breakers: Option<Breakers>,
        mail: Arc<Mailboxes<H>>,
    ) -> Self {
        Self {
            mail,
            queues: ReadyQueues::new(settings.promote_after),
            settings,
            gauges,
            events,
            dead,
            breakers,
            delayed: DelayedRetries::default(),
            retry_timer: None,
            tasks: HashMap::new(),
            workers: BTreeMap::new(),
            completed_by: HashMap::new(),
            cursor: None,
            drains: Vec::new(),
            phase: Phase::Running,
            abandoning: false,
            tick: None,
            seq: 0,
            rng: SmallRng::seed_from_u64(0x5eed),
            epoch: Instant::now(),
            stats: Stats::default(),
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn emit(&self, event: PoolEvent) {
        let _ = self.events.send(event);
    }

    fn enqueue(&mut self, id: TaskId, now: Instant) {
        let Some(record) = self.tasks.get_mut(&id) else {
            return;
        };
        record.queued_at = now;
        self.queues.push(
            now,
            id,
            record.priority,
            record.seq,
            record.options.capability.clone(),
        );
    }

    fn accept(&mut self, submit: Submit<H>, now: Instant) {
        self.stats.submitted += 1;
        if !matches!(self.phase, Phase::Running) {
            // Raced with shutdown: hand it back, and count it so the books balance.
            self.gauges.waiting.fetch_sub(1, Ordering::Relaxed);
            self.stats.returned += 1;
            if let Some(reply) = submit.reply {
                let _ = reply.send(Err(TaskFailure::Returned {
                    id: submit.id,
                    task: submit.task,
                }));
            }
            return;
        }
        self.seq += 1;
        let priority = submit.options.priority.unwrap_or(DEFAULT_PRIORITY);
        self.tasks.insert(
            submit.id,
            TaskRecord {
                task: submit.task,
                options: submit.options,
                priority,
                seq: self.seq,
                reply: submit.reply,
                attempts: Vec::new(),
                backoff: Backoff::new(),
                submitted_at: submit.submitted_at,
                queued_at: now,
                running: None,
            },
        );
        self.enqueue(submit.id, now);
    }

    /// Dispatches waiting tasks, best first, while some worker can take them.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Stopped(_)) {
            return;
        }
        'dispatch: loop {
            for (capability, id, _) in self.queues.heads() {
                if let Some((worker, probe)) = self.pick_worker(capability.as_deref()) {
                    if let Some(until) = self.dependency_closed(id) {
                        // Its dependency's breaker is open: park it until the
                        // cooldown ends (then probes may go through), and give
                        // back the worker's probe if it took one.
                        if probe {
                            if let Some(breakers) = &self.breakers {
                                breakers.release_child(&worker);
                            }
                        }
                        self.queues.remove(id);
                        self.delayed.push(until, id);
                        self.arm_retry_timer(ctx);
                    } else {
                        self.dispatch(id, worker);
                    }
                    continue 'dispatch;
                }
            }
            return;
        }
    }

    /// `Some(retry time)` if the task's dependency may not be called now.
    fn dependency_closed(&self, id: TaskId) -> Option<Instant> {
        let breakers = self.breakers.as_ref()?;
        let dependency = self.tasks.get(&id)?.options.dependency.as_deref()?;
        if breakers.allow_dependency(dependency) {
            return None;
        }
        // Half-open with every probe out: look again a tick later.
        Some(
            breakers
                .dependency_open_until(dependency)
                .unwrap_or_else(|| Instant::now() + self.settings.tick),
        )
    }

    fn eligible(&self, slot: &Slot<H>, capability: Option<&str>) -> bool {
        !slot.draining
            && !slot.isolated
            && slot.health != HealthStatus::Critical
            && slot.in_flight.len() < self.settings.concurrency
            && capability.is_none_or(|c| slot.capabilities.contains(c))
    }

    /// Workers in fair order: the ones after the cursor first, then from the start.
    fn rotation(&self) -> impl Iterator<Item = (&Arc<str>, &Slot<H>)> {
        let (after, before) = match &self.cursor {
            Some(c) => (
                self.workers
                    .range::<Arc<str>, _>((Bound::Excluded(c), Bound::Unbounded)),
                self.workers
                    .range::<Arc<str>, _>((Bound::Unbounded, Bound::Included(c)))
                    .take(usize::MAX),
            ),
            None => (
                self.workers.range::<Arc<str>, _>(..),
                self.workers.range::<Arc<str>, _>(..).take(0),
            ),
        };
        after.chain(before)
    }

    /// The next worker for a task needing `capability`, and whether taking
    /// it used a probe of its half-open breaker.
    fn pick_worker(&mut self, capability: Option<&str>) -> Option<(Arc<str>, bool)> {
        // Half-open workers that refused a probe; rare, so no allocation up front.
        let mut refused: Vec<Arc<str>> = Vec::new();
        loop {
            let candidate = {
                let mut candidates = self
                    .rotation()
                    .filter(|(id, slot)| !refused.contains(*id) && self.eligible(slot, capability))
                    .filter(|(id, _)| self.breaker_state(id) != Some(BreakerState::Open));
                match self.settings.dispatch {
                    Dispatch::RoundRobin => candidates.next().map(|(id, _)| id.clone()),
                    // `min_by_key` keeps the first minimum: the first after the cursor.
                    Dispatch::LeastLoaded => candidates
                        .min_by_key(|(_, s)| s.in_flight.len())
                        .map(|(id, _)| id.clone()),
                }
            }?;
            let half_open = self.breaker_state(&candidate) == Some(BreakerState::HalfOpen);
            if half_open
                && !self
                    .breakers
                    .as_ref()
                    .is_some_and(|b| b.allow_child(&candidate))
            {
                refused.push(candidate);
                continue;
            }
            self.cursor = Some(candidate.clone());
            return Some((candidate, half_open));
        }
    }

    fn breaker_state(&self, worker: &str) -> Option<BreakerState> {
        self.breakers.as_ref().and_then(|b| b.child_state(worker))
    }

    fn dispatch(&mut self, id: TaskId, worker: Arc<str>) {
        self.queues.remove(id);
        self.gauges.waiting.fetch_sub(1, Ordering::Relaxed);
        let now = Instant::now();
        let started = self.ms(now);
        let timeout = self.settings.task_timeout;
        let (Some(record), Some(slot)) = (self.tasks.get_mut(&id), self.workers.get_mut(&worker))
        else {
            return;
        };
        self.stats.queue_wait.record(
            u64::try_from(now.duration_since(record.queued_at).as_micros()).unwrap_or(u64::MAX),
        );
        self.stats.attempts += 1;
        record.running = Some((worker.clone(), slot.incarnation, started));
        slot.in_flight.insert(id);
        slot.addr.do_send(Run {
            id,
            attempt: u32::try_from(record.attempts.len() + 1).unwrap_or(u32::MAX),
            task: record.task.clone(),
            timeout: record.options.timeout.unwrap_or(timeout),
        });
    }

    fn complete(&mut self, id: TaskId, output: H::Output, worker: Arc<str>, attempt: u32) {
        let Some(record) = self.tasks.remove(&id) else {
            return;
        };
        let now = Instant::now();
        let latency = now.duration_since(record.submitted_at);
        self.stats.completed += 1;
        self.stats
            .latency
            .record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        *self.completed_by.entry(worker.clone()).or_default() += 1;
        if let Some(reply) = record.reply {
            let _ = reply.send(Ok(output));
        }
        self.emit(PoolEvent::TaskCompleted {
            id,
            worker: worker.to_string(),
            attempt,
            latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        });
        self.check_finished();
    }

    /// An attempt failed: retry later, or dead-letter.
    fn fail_attempt(&mut self, id: TaskId, error: AttemptError, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let ended = self.ms(now);
        let Some(record) = self.tasks.get_mut(&id) else {
            return;
        };
        let Some((worker, _, started)) = record.running.take() else {
            return;
        };
        let number = u32::try_from(record.attempts.len() + 1).unwrap_or(u32::MAX);
        record.attempts.push(Attempt {
            number,
            worker: worker.to_string(),
            started_ms: started,
            ended_ms: ended,
            error: error.clone(),
        });
        let retry = record.attempts.len() <= self.settings.retry.max_retries as usize;
        let delay = retry.then(|| {
            record
                .backoff
                .next_delay(&self.settings.retry.backoff(), &mut self.rng)
        });
        self.stats.failed += 1;
        self.emit(PoolEvent::TaskFailed {
            id,
            worker: worker.to_string(),
            attempt: number,
            error,
        });
        if let Some(delay) = delay {
            self.stats.retried += 1;
            self.gauges.waiting.fetch_add(1, Ordering::Relaxed);
            self.delayed.push(now + delay, id);
            self.emit(PoolEvent::TaskRetried {
                id,
                next_attempt: number + 1,
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            });
            self.arm_retry_timer(ctx);
        } else {
            self.dead_letter(id, "retries exhausted");
        }
    }

    fn dead_letter(&mut self, id: TaskId, reason: &str) {
        let Some(record) = self.tasks.remove(&id) else {
            return;
        };
        self.stats.dead_lettered += 1;
        if let Some(reply) = record.reply {
            let _ = reply.send(Err(TaskFailure::DeadLettered {
                id,
                attempts: record.attempts.clone(),
            }));
        }
        self.emit(PoolEvent::TaskDeadLettered {
            id,
            attempts: u32::try_from(record.attempts.len()).unwrap_or(u32::MAX),
            reason: reason.to_owned(),
        });
        self.dead.do_send(Store(DeadTask {
            id,
            task: record.task,
            options: record.options,
            attempts: record.attempts,
            reason: reason.to_owned(),
        }));
        self.check_finished();
    }

    fn arm_retry_timer(&mut self, ctx: &mut Context<Self>) {
        let Some(due) = self.delayed.next_due() else {
            return;
        };
        if let Some((armed, handle)) = self.retry_timer {
            if armed <= due {
                return;
            }
            ctx.cancel_future(handle);
        }
        let wait = due.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(wait, |act, ctx| {
            act.retry_timer = None;
            let now = Instant::now();
            for id in act.delayed.take_due(now) {
                act.enqueue(id, now);
            }
            act.arm_retry_timer(ctx);
            act.pump(ctx);
        });
        self.retry_timer = Some((due, handle));
    }

    /// A worker incarnation is gone: every attempt it held failed.
    fn lose_worker(&mut self, worker: &Arc<str>, reason: &str, ctx: &mut Context<Self>) {
        let Some(slot) = self.workers.remove(worker) else {
            return;
        };
        let lost = slot.in_flight.len();
        for id in slot.in_flight {
            self.fail_attempt(
                id,
                AttemptError::WorkerLost(format!("{worker}: {reason}")),
                ctx,
            );
        }
        self.emit(PoolEvent::WorkerExited {
            worker: worker.to_string(),
            incarnation: slot.incarnation,
            lost_attempts: u32::try_from(lost).unwrap_or(u32::MAX),
        });
        self.check_drains();
    }

    fn check_drains(&mut self) {
        let workers = &self.workers;
        let idle = |w: &Arc<str>| workers.get(w).is_none_or(|s| s.in_flight.is_empty());
        let (done, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.drains)
            .into_iter()
            .partition(|(set, _)| set.iter().all(idle));
        self.drains = pending;
        for (_, reply) in done {
            let _ = reply.send(());
        }
    }

    /// In graceful shutdown, finishes once no task is left.
    fn check_finished(&mut self) {
        if !self.abandoning && matches!(self.phase, Phase::Draining { .. }) && self.tasks.is_empty()
        {
            self.finish(Vec::new());
        }
    }

    /// Ends every task still held, by `action`; returns their ids.
    fn abandon(&mut self, action: UnfinishedAction) -> Vec<TaskId> {
        self.abandoning = true;
        let now = self.ms(Instant::now());
        self.queues.drain();
        self.delayed.drain();
        self.gauges.waiting.store(0, Ordering::Relaxed);
        let mut ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        ids.sort_unstable();
        for id in &ids {
            let Some(mut record) = self.tasks.remove(id) else {
                continue;
            };
            if let Some((worker, incarnation, started)) = record.running.take() {
                if let Some(slot) = self
                    .workers
                    .get_mut(&worker)
                    .filter(|s| s.incarnation == incarnation)
                {
                    slot.in_flight.remove(id);
                    slot.addr.do_send(Cancel(*id));
                }
                record.attempts.push(Attempt {
                    number: u32::try_from(record.attempts.len() + 1).unwrap_or(u32::MAX),
                    worker: worker.to_string(),
                    started_ms: started,
                    ended_ms: now,
                    error: AttemptError::Shutdown,
                });
            }
            match action {
                UnfinishedAction::Return => {
                    self.stats.returned += 1;
                    if let Some(reply) = record.reply.take() {
                        let _ = reply.send(Err(TaskFailure::Returned {
                            id: *id,
                            task: record.task,
                        }));
                    }
                }
                UnfinishedAction::DeadLetter => {
                    self.tasks.insert(*id, record);
                    self.dead_letter(*id, "shutdown");
                }
            }
        }
        self.abandoning = false;
        ids
    }

    fn finish(&mut self, unfinished: Vec<TaskId>) {
        let report = ShutdownReport {
            submitted: self.stats.submitted,
            completed: self.stats.completed,
            dead_lettered: self.stats.dead_lettered,
            returned: self.stats.returned,
            unfinished,
        };
        self.emit(PoolEvent::ShutDown(report.clone()));
        if let Phase::Draining { reply } =
            std::mem::replace(&mut self.phase, Phase::Stopped(report.clone()))
        {
            let _ = reply.send(report);
        }
    }

    fn metrics(&self) -> PoolMetrics {
        let now = Instant::now();
        let slots = self.workers.values();
        let in_flight: usize = self.workers.values().map(|s| s.in_flight.len()).sum();
        let reuse = if self.stats.attempts == 0 {
            0.0
        } else {
            (1.0 - self.stats.worker_starts as f64 / self.stats.attempts as f64).max(0.0)
        };
        PoolMetrics {
            pool: PoolSection {
                name: self.settings.name.clone(),
                size: self.workers.values().filter(|s| !s.draining).count(),
                uptime_ms: self.ms(now),
            },
            workers: WorkersSection {
                total: self.workers.len(),
                ready: self
                    .workers
                    .values()
                    .filter(|s| s.in_flight.is_empty() && self.eligible(s, None))
                    .count(),
                busy: slots.clone().filter(|s| !s.in_flight.is_empty()).count(),
                unhealthy: slots
                    .clone()
                    .filter(|s| s.health == HealthStatus::Critical)
                    .count(),
                isolated: slots.clone().filter(|s| s.isolated || s.draining).count(),
            },
            tasks: TasksSection {
                submitted: self.stats.submitted,
                completed: self.stats.completed,
                failed: self.stats.failed,
                retried: self.stats.retried,
                dead_lettered: self.stats.dead_lettered,
                returned: self.stats.returned,
                queued: (self.queues.len() + self.delayed.len()) as u64,
                in_flight: in_flight as u64,
            },
            performance: PerformanceSection {
                worker_reuse_rate: reuse,
                restarts_by_reason: self.stats.restarts.clone(),
                latency_ms: self.stats.latency.summary(),
                queue_wait_ms: self.stats.queue_wait.summary(),
            },
            health: HealthSection {
                status: slots
                    .clone()
                    .map(|s| s.health)
                    .max()
                    .unwrap_or(HealthStatus::Healthy),
                alerts: self.stats.alerts.iter().cloned().collect(),
            },
            per_worker: self
                .workers
                .iter()
                .map(|(id, s)| WorkerStatus {
                    id: id.to_string(),
                    incarnation: s.incarnation,
                    in_flight: s.in_flight.len(),
                    completed: self.completed_by.get(id).copied().unwrap_or(0),
                    health: s.health,
                    isolated: s.isolated,
                    draining: s.draining,
                    capabilities: {
                        let mut c: Vec<String> = s.capabilities.iter().cloned().collect();
                        c.sort();
                        c
                    },
                })
                .collect(),
        }
    }
}

impl<H: TaskHandler> Actor for Router<H> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let tick = ctx.run_interval(self.settings.tick, |act, ctx| {
            if matches!(act.phase, Phase::Stopped(_)) {
                if let Some(tick) = act.tick.take() {
                    ctx.cancel_future(tick);
                }
            } else {
                // Promotions, and half-open probes freed by the clock alone
                // (no message announces them), may let waiting work go.
                let promoted = act.queues.promote(Instant::now()) > 0;
                if promoted || act.queues.len() > 0 {
                    act.pump(ctx);
                }
            }
        });
        self.tick = Some(tick);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        // Submissions that raced with the end: their handles resolve
        // `PoolGone` rather than wait forever.
        drop(self.mail.submits.take());
    }
}

/// A new task.
pub(crate) struct Submit<H: TaskHandler> {
    pub(crate) id: TaskId,
    pub(crate) task: H::Task,
    pub(crate) options: TaskOptions,
    pub(crate) reply: Option<oneshot::Sender<TaskResult<H>>>,
    pub(crate) submitted_at: Instant,
}

/// A worker incarnation is up.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Register<H: TaskHandler> {
    pub(crate) worker: Arc<str>,
    pub(crate) incarnation: u64,
    pub(crate) addr: Addr<PoolWorker<H>>,
    pub(crate) capabilities: Vec<String>,
}

impl<H: TaskHandler> Handler<Register<H>> for Router<H> {
    type Result = ();

    fn handle(&mut self, msg: Register<H>, ctx: &mut Context<Self>) {
        if let Some(existing) = self.workers.get(&msg.worker) {
            if existing.incarnation >= msg.incarnation {
                return;
            }
            // A new incarnation while the old one never said goodbye (a zombie).
            self.lose_worker(&msg.worker, "replaced by a new incarnation", ctx);
        }
        self.stats.worker_starts += 1;
        let worker = msg.worker.to_string();
        self.workers.insert(
            msg.worker,
            Slot {
                incarnation: msg.incarnation,
                addr: msg.addr,
                capabilities: msg.capabilities.into_iter().collect(),
                in_flight: HashSet::new(),
                health: HealthStatus::Healthy,
                isolated: false,
                draining: false,
            },
        );
        self.emit(PoolEvent::WorkerStarted {
            worker: worker.clone(),
            incarnation: msg.incarnation,
        });
        if msg.incarnation > 1 {
            self.emit(PoolEvent::WorkerRestarted {
                worker,
                incarnation: msg.incarnation,
            });
        }
        // A replacement takes work from the queue at once, in priority order.
        self.pump(ctx);
    }
}

/// A worker incarnation is gone (sent by its drop guard).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Unregister {
    pub(crate) worker: Arc<str>,
    pub(crate) incarnation: u64,
}

impl<H: TaskHandler> Handler<Unregister> for Router<H> {
    type Result = ();

    fn handle(&mut self, msg: Unregister, ctx: &mut Context<Self>) {
        if self
            .workers
            .get(&msg.worker)
            .is_some_and(|s| s.incarnation == msg.incarnation)
        {
            self.lose_worker(&msg.worker, "exited", ctx);
            self.pump(ctx);
        }
    }
}

/// One attempt ended.
pub(crate) struct Done<O> {
    pub(crate) worker: Arc<str>,
    pub(crate) incarnation: u64,
    pub(crate) id: TaskId,
    pub(crate) attempt: u32,
    pub(crate) result: Result<O, AttemptError>,
}

impl<H: TaskHandler> Handler<Wake> for Router<H> {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        let now = Instant::now();
        for submit in self.mail.submits.take() {
            self.accept(submit, now);
        }
        let dones = self.mail.dones.take();
        let any_done = !dones.is_empty();
        for done in dones {
            self.on_done(done, ctx);
        }
        if any_done {
            self.check_drains();
        }
        self.pump(ctx);
    }
}

impl<H: TaskHandler> Router<H> {
    /// An attempt ended.
    fn on_done(&mut self, done: Done<H::Output>, ctx: &mut Context<Self>) {
        // Only the attempt the router is waiting for counts: a late report
        // from a lost worker, or of a cancelled attempt, is ignored.
        let current = self.tasks.get(&done.id).is_some_and(|r| {
            r.attempts.len() + 1 == done.attempt as usize
                && r.running
                    .as_ref()
                    .is_some_and(|(w, inc, _)| *w == done.worker && *inc == done.incarnation)
        });
        if !current {
            return;
        }
        if let Some(slot) = self.workers.get_mut(&done.worker) {
            slot.in_flight.remove(&done.id);
        }
        // The router sees every outcome first-hand: it feeds the breakers
        // itself, sparing the supervisor a message per task.
        if let Some(breakers) = &self.breakers {
            let dependency = self
                .tasks
                .get(&done.id)
                .and_then(|r| r.options.dependency.as_deref());
            breakers.record_outcome(&done.worker, dependency, done.result.is_ok());
        }
        match done.result {
            Ok(output) => self.complete(done.id, output, done.worker, done.attempt),
            Err(error) => self.fail_attempt(done.id, error, ctx),
        }
    }
}

/// Health of a worker, from its supervisor's events.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) enum WorkerNews {
    Health {
        worker: String,
        status: HealthStatus,
        isolated: bool,
    },
    Restarted {
        worker: String,
    },
    Exited {
        worker: String,
        reason: String,
    },
    Zombie {
        worker: String,
        reason: String,
    },
    Alert(Alert),
}

impl<H: TaskHandler> Handler<WorkerNews> for Router<H> {
    type Result = ();

    fn handle(&mut self, news: WorkerNews, ctx: &mut Context<Self>) {
        match news {
            WorkerNews::Health {
                worker,
                status,
                isolated,
            } => {
                if let Some(slot) = self.workers.get_mut(worker.as_str()) {
                    slot.health = status;
                    slot.isolated = isolated;
                }
                self.pump(ctx);
            }
            WorkerNews::Exited { worker, reason } => {
                self.stats.last_exit.insert(worker, reason);
            }
            WorkerNews::Restarted { worker } => {
                let reason = self
                    .stats
                    .last_exit
                    .remove(&worker)
                    .unwrap_or_else(|| "unknown".into());
                *self.stats.restarts.entry(reason).or_default() += 1;
            }
            WorkerNews::Zombie { worker, reason } => {
                self.emit(PoolEvent::ZombieDetected { worker, reason })
            }
            WorkerNews::Alert(alert) => {
                if self.stats.alerts.len() == 32 {
                    self.stats.alerts.pop_front();
                }
                self.stats.alerts.push_back(alert);
            }
        }
    }
}

/// Stop routing to these workers and answer once they hold no task.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Drain {
    pub(crate) workers: Vec<String>,
    pub(crate) reply: oneshot::Sender<()>,
}

impl<H: TaskHandler> Handler<Drain> for Router<H> {
    type Result = ();

    fn handle(&mut self, msg: Drain, _: &mut Context<Self>) {
        let set: HashSet<Arc<str>> = msg.workers.iter().map(|w| Arc::from(w.as_str())).collect();
        for worker in &set {
            if let Some(slot) = self.workers.get_mut(worker) {
                slot.draining = true;
            }
        }
        self.drains.push((set, msg.reply));
        self.check_drains();
    }
}

/// Stop: graceful or immediate.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Shutdown {
    pub(crate) mode: ShutdownMode,
    pub(crate) reply: oneshot::Sender<ShutdownReport>,
}

impl<H: TaskHandler> Handler<Shutdown> for Router<H> {
    type Result = ();

    fn handle(&mut self, msg: Shutdown, ctx: &mut Context<Self>) {
        if let Phase::Stopped(report) = &self.phase {
            let _ = msg.reply.send(report.clone());
            return;
        }
        self.gauges.closed.store(true, Ordering::Relaxed);
        self.phase = Phase::Draining { reply: msg.reply };
        match msg.mode {
            ShutdownMode::Graceful { deadline } => {
                ctx.run_later(deadline, |act, _| {
                    if matches!(act.phase, Phase::Draining { .. }) {
                        let unfinished = act.abandon(UnfinishedAction::Return);
                        act.finish(unfinished);
                    }
                });
                self.check_finished();
                self.pump(ctx);
            }
            ShutdownMode::Immediate { unfinished } => {
                let ids = self.abandon(unfinished);
                self.finish(ids);
            }
        }
    }
}

/// A metrics snapshot.
#[derive(Message)]
#[rtype(result = "PoolMetrics")]
pub(crate) struct Snapshot;

impl<H: TaskHandler> Handler<Snapshot> for Router<H> {
    type Result = actix::MessageResult<Snapshot>;

    fn handle(&mut self, _: Snapshot, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.metrics())
    }
}
