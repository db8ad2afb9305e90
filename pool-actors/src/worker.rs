//! The pool's worker actor: runs tasks for the router.
//!
//! Each attempt runs in a task on the worker's thread, outside the actor, so
//! the actor stays free for its supervisor's heartbeats and pings. When an
//! attempt ends, the task settles it with the router and, if the router
//! hands this worker its next task in the same call, runs that one straight
//! away: under load a worker goes from task to task without a message or a
//! new task per attempt.
//!
//! Replies to submitters are held while the worker runs tasks back to back
//! from a deep queue, and sent in bursts (before it waits on a task, every
//! [`BURST`] tasks, whenever fewer than [`BURST`] tasks wait, and when it
//! runs out of work), so one wake-up of a submitter's thread carries many
//! replies instead of one each, while submitters that have nothing queued
//! get theirs at once.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};
use std::time::Duration;

use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, Message, Running as Stopping,
    StreamHandler, WeakAddr,
};
use candado::{ChildLink, ExitReason, HealthCause, LivenessCause};
use candado_process::ProcessEvent;
use rustc_hash::FxHashMap;

use crate::handler::Reporter;
use crate::isolation::Remote;
use crate::router::{Caller, CallerWants, Done, Effect, Settled, SharedRouter, WorkerKey};
use crate::{AttemptError, Blame, TaskContext, TaskHandler, TaskId};

/// Runs one attempt.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Run<T> {
    pub(crate) id: TaskId,
    pub(crate) attempt: u32,
    pub(crate) task: T,
    pub(crate) timeout: Duration,
    /// When the attempt times out (dispatch time + `timeout`).
    pub(crate) deadline: tokio::time::Instant,
    /// Set by the router if the attempt is abandoned before it starts.
    pub(crate) cancelled: Arc<AtomicBool>,
}

/// Stops an attempt (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Cancel(pub(crate) TaskId);

/// The handler panicked outside its task's future: the worker itself dies
/// (its attempts are lost and retried; a fresh incarnation takes over).
#[derive(Message)]
#[rtype(result = "()")]
struct Crash(String);

/// The task running one attempt (and the ones after it), by attempt.
struct Running {
    handle: tokio::task::JoinHandle<()>,
    cancelled: Arc<AtomicBool>,
    attempt: u32,
}

/// Where a worker's attempts run.
pub(crate) enum Exec<H: TaskHandler> {
    /// In this actor's thread, with a handler of its own.
    Local(RefCell<H>),
    /// In the OS process this worker incarnation owns.
    Remote(Box<Remote<H>>),
}

/// How often a busy worker stamps progress and its finished-task count into
/// its link. Liveness timeouts are seconds; stamping every task of a fast
/// stream would only cost time.
const STAMP_EVERY: Duration = Duration::from_millis(10);

/// Tasks a worker runs back to back before it sends the replies it holds
/// and yields its thread to the other actors there (its own heartbeats
/// included).
const BURST: u32 = 32;

/// A worker whose attempts took less than this each, on average, since it
/// last settled with the router counts as running short tasks: while tasks
/// queue up, it takes a batch of them at a time (see [`Local::batch`]).
const SHORT_TASK: Duration = Duration::from_millis(1);

/// A task of a batch still running this long after it began to wait is not
/// a short task after all: the tasks of the batch behind it go back to the
/// queue, for any worker to take, instead of waiting for it.
const BATCH_PATIENCE: Duration = Duration::from_millis(5);

/// The key of a worker the router does not know: its reports are ignored.
const UNREGISTERED: WorkerKey = WorkerKey::MAX;

/// What the actor shares with its attempt tasks (all on the worker's thread).
struct Local<H: TaskHandler> {
    id: Arc<str>,
    incarnation: u64,
    /// Its key in the router, once registered ([`UNREGISTERED`] before,
    /// or if the router found this incarnation stale).
    key: Cell<WorkerKey>,
    link: Arc<ChildLink>,
    exec: Exec<H>,
    router: SharedRouter<H>,
    yield_every: u32,
    /// Tasks it may take at once while tasks queue up and its own are short.
    batch: usize,
    running: RefCell<FxHashMap<TaskId, Running>>,
    /// The actor, to crash it from an attempt task.
    actor: RefCell<Option<WeakAddr<PoolWorker<H>>>>,
    /// Finished attempts not yet added to the link's count.
    unstamped: Cell<u64>,
    /// When progress was last stamped.
    stamped: Cell<Option<tokio::time::Instant>>,
    /// Replies held until the worker pauses (see the module docs).
    replies: RefCell<Vec<Effect<H>>>,
    /// Finished attempts not reported to the router yet: a worker running
    /// a batch reports the batch at once.
    reports: RefCell<Vec<Done<H::Output>>>,
    /// Tasks handed over in a batch and not started yet, in order.
    ahead: RefCell<VecDeque<Run<H::Task>>>,
    /// How fast its attempts have been going.
    pace: Cell<Pace>,
}

/// How fast a worker's attempts go, measured between its calls to the
/// router (whose clock it reads anyway).
#[derive(Debug, Clone, Copy, Default)]
struct Pace {
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

impl<H: TaskHandler> Drop for Local<H> {
    fn drop(&mut self) {
        // However the worker ends, the replies it holds are delivered.
        self.send_replies();
    }
}

/// Tells the router this incarnation is gone, however it ends (stop or panic).
struct Goodbye<H: TaskHandler> {
    router: SharedRouter<H>,
    worker: Arc<str>,
    incarnation: u64,
}

impl<H: TaskHandler> Drop for Goodbye<H> {
    fn drop(&mut self) {
        self.router.unregister(&self.worker, self.incarnation);
    }
}

pub(crate) struct PoolWorker<H: TaskHandler> {
    local: Rc<Local<H>>,
    capabilities: Vec<String>,
    /// Its supervisor asked it to stop (a worker process is ending).
    stopping: bool,
    _goodbye: Goodbye<H>,
}

impl<H: TaskHandler> PoolWorker<H> {
    pub(crate) fn new(
        link: ChildLink,
        exec: Exec<H>,
        router: SharedRouter<H>,
        capabilities: Vec<String>,
        yield_every: u32,
        batch: usize,
    ) -> Self {
        let id: Arc<str> = link.id().into();
        let incarnation = link.incarnation();
        Self {
            _goodbye: Goodbye {
                router: router.clone(),
                worker: id.clone(),
                incarnation,
            },
            local: Rc::new(Local {
                id,
                incarnation,
                key: Cell::new(UNREGISTERED),
                link: Arc::new(link),
                exec,
                router,
                yield_every,
                batch,
                running: RefCell::default(),
                actor: RefCell::default(),
                unstamped: Cell::new(0),
                stamped: Cell::new(None),
                replies: RefCell::default(),
                reports: RefCell::default(),
                ahead: RefCell::default(),
                pace: Cell::default(),
            }),
            capabilities,
            stopping: false,
        }
    }
}

impl<H: TaskHandler> Actor for PoolWorker<H> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        *self.local.actor.borrow_mut() = Some(ctx.address().downgrade());
        // A worker process first: the worker takes tasks once it can run
        // them (calls made before the handshake wait for it).
        if let Exec::Remote(remote) = &self.local.exec {
            match remote.spawn(&self.local.id) {
                Ok((pid, events)) => {
                    self.local.link.set_counter("pid", u64::from(pid));
                    ctx.add_stream(events);
                }
                Err(reason) => return self.local.link.exit(ctx, reason),
            }
        }
        let key = self.local.router.register(
            self.local.id.clone(),
            self.local.incarnation,
            ctx.address(),
            std::mem::take(&mut self.capabilities),
        );
        self.local.key.set(key.unwrap_or(UNREGISTERED));
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Stopping {
        // A worker process is asked to end (stdin closed, SIGTERM; SIGKILL
        // if it is frozen); the worker stops once it is reaped, or is
        // killed after its shutdown timeout (then its process gets SIGKILL
        // when it is dropped).
        match &self.local.exec {
            Exec::Remote(remote) if remote.running() => {
                if !std::mem::replace(&mut self.stopping, true) {
                    remote.stop();
                    self.local.retire();
                }
                Stopping::Continue
            }
            _ => Stopping::Stop,
        }
    }
}

impl<H: TaskHandler> StreamHandler<ProcessEvent> for PoolWorker<H> {
    fn handle(&mut self, event: ProcessEvent, ctx: &mut Context<Self>) {
        let Exec::Remote(remote) = &self.local.exec else {
            return;
        };
        match event {
            ProcessEvent::Ready => {
                self.local.measure();
                ctx.run_interval(remote.memory_interval(), |worker, _| worker.local.measure());
            }
            ProcessEvent::Heartbeat => self.local.link.heartbeat(),
            ProcessEvent::Progress => self.local.link.progress(),
            ProcessEvent::Exited(reason) => {
                remote.gone();
                self.local.lose_running(&reason);
                self.local.retire();
                if self.stopping {
                    ctx.stop();
                } else {
                    self.local.link.exit(ctx, reason);
                }
            }
            _ => {}
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // `Exited` came last, and ended the worker.
    }
}

impl<H: TaskHandler> Drop for PoolWorker<H> {
    fn drop(&mut self) {
        // Attempts die with their worker; the router fails them on unregister.
        for (_, running) in self.local.running.borrow_mut().drain() {
            running.cancelled.store(true, Ordering::Relaxed);
            running.handle.abort();
        }
        // Attempts that finished are reported, and tasks not started are
        // handed back (they cost no attempt), before the router hears that
        // this incarnation is gone and fails the attempts it still holds.
        self.local.report();
        self.local.hand_back_unstarted();
    }
}

impl<H: TaskHandler> Handler<Run<H::Task>> for PoolWorker<H> {
    type Result = ();

    fn handle(&mut self, run: Run<H::Task>, _: &mut Context<Self>) {
        if run.cancelled.load(Ordering::Relaxed) {
            // Abandoned (shutdown) before it reached us: the router has
            // already settled it.
            return;
        }
        if self.local.condemned() {
            // Its process is gone or going: the task goes back, costing no
            // attempt, and the worker leaves the router.
            let local = &self.local;
            local.router.hand_back(
                local.key.get(),
                local.incarnation,
                vec![(run.id, run.attempt)],
            );
            local.retire();
            return;
        }
        let local = &self.local;
        let (id, attempt, cancelled) = (run.id, run.attempt, run.cancelled.clone());
        if local.running.borrow().is_empty() {
            // Liveness watches progress while the worker holds any task.
            local.link.begin_work(format!("task {id}"));
        }
        let handle = actix::spawn(run_attempts(local.clone(), run));
        let mut running = local.running.borrow_mut();
        running.insert(
            id,
            Running {
                handle,
                cancelled,
                attempt,
            },
        );
        local.link.set_in_flight(running.len() as u64);
    }
}

impl<H: TaskHandler> Handler<Crash> for PoolWorker<H> {
    type Result = ();

    fn handle(&mut self, Crash(message): Crash, _: &mut Context<Self>) {
        panic!("{message}");
    }
}

impl<H: TaskHandler> Handler<Cancel> for PoolWorker<H> {
    type Result = ();

    fn handle(&mut self, Cancel(id): Cancel, _: &mut Context<Self>) {
        let mut running = self.local.running.borrow_mut();
        if let Some(attempt) = running.remove(&id) {
            attempt.cancelled.store(true, Ordering::Relaxed);
            attempt.handle.abort();
            self.local.link.set_in_flight(running.len() as u64);
            if running.is_empty() {
                self.local.link.end_work();
            }
        }
    }
}

/// Runs `run`, and keeps going with the tasks the router hands this worker
/// when it reports: one at a time, or, for short tasks while tasks queue up,
/// a batch, reported together once it is done.
async fn run_attempts<H: TaskHandler>(local: Rc<Local<H>>, mut run: Run<H::Task>) {
    let mut in_a_row = 0;
    loop {
        let (id, attempt) = (run.id, run.attempt);
        let result = match local.attempt(run).await {
            Ok(result) => result,
            Err(crash) => {
                // Like a panic in the actor: the worker dies, and the router
                // fails every attempt it held, this one included.
                let actor = local.actor.borrow().as_ref().and_then(WeakAddr::upgrade);
                if let Some(actor) = actor {
                    actor.do_send(Crash(crash));
                }
                return;
            }
        };
        local.reports.borrow_mut().push(Done {
            worker: local.key.get(),
            incarnation: local.incarnation,
            id,
            attempt,
            result,
        });
        local.unstamped.set(local.unstamped.get() + 1);
        local.pace.set(local.pace.get().finished_one());
        if local.condemned() {
            // Its process is gone or going: this worker takes no more tasks.
            local.running.borrow_mut().remove(&id);
            local.retire();
            return;
        }
        let (next, settled) = match local.next_ahead() {
            Some(next) => (Some(next), None),
            None => {
                let settled = local.settle(local.wants(), &mut local.ahead.borrow_mut());
                (local.next_ahead(), settled)
            }
        };
        let Some(next) = local.carry_on(id, next, settled.as_ref()) else {
            return;
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
    fn hand_back_unstarted(&self) {
        let unstarted: Vec<(TaskId, u32)> = std::mem::take(&mut *self.ahead.borrow_mut())
            .into_iter()
            .map(|run| (run.id, run.attempt))
            .collect();
        if !unstarted.is_empty() {
            self.router
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
        }
    }

    /// Reports the finished attempts held, asking for `wants` next tasks
    /// (added to `runs`); `None` if the reports were left to the lock's
    /// holder.
    fn settle(&self, wants: CallerWants, runs: &mut VecDeque<Run<H::Task>>) -> Option<Settled> {
        let settled = self.router.settle(
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
    fn report(&self) {
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
                        handle: this.handle,
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
                let now = settled.map_or_else(tokio::time::Instant::now, |s| s.now);
                self.stamp(now);
                self.link.set_in_flight(left as u64);
                if left == 0 {
                    self.link.end_work();
                }
                None
            }
        }
    }

    /// Delivers the replies held.
    fn send_replies(&self) {
        let replies = std::mem::take(&mut *self.replies.borrow_mut());
        for reply in replies {
            reply.apply();
        }
    }

    /// Reports progress and the finished attempts not reported yet.
    fn stamp(&self, now: tokio::time::Instant) {
        self.link.add_tasks_done(self.unstamped.replace(0));
        self.link.progress();
        self.stamped.set(Some(now));
    }

    /// One attempt: the handler's future under the attempt's deadline, with
    /// its panics turned into errors. `Err` if the handler itself panicked
    /// before returning a future (the worker must die, as in actor code).
    async fn attempt(&self, run: Run<H::Task>) -> Result<Result<H::Output, AttemptError>, String> {
        let (attempt, deadline) = match &self.exec {
            Exec::Local(handler) => {
                let ctx = TaskContext::new(
                    run.id,
                    run.attempt,
                    Reporter::Link(self.link.clone()),
                    run.cancelled.clone(),
                    self.yield_every,
                );
                (Self::start(handler, run.task, ctx)?, run.deadline)
            }
            Exec::Remote(remote) => {
                let left = run
                    .deadline
                    .saturating_duration_since(tokio::time::Instant::now());
                let attempt = remote.attempt(
                    run.id,
                    run.attempt,
                    run.task,
                    (left, run.timeout),
                    self.yield_every,
                );
                // The process cancels the attempt at its deadline; the
                // parent waits a grace longer before it kills the process.
                let deadline = crate::deadline::after(run.deadline, remote.grace);
                let attempt = async move { attempt.await.map_err(Failure::Attempt) };
                (Box::pin(attempt) as Attempt<H>, deadline)
            }
        };
        let mut attempt = std::pin::pin!(tokio::time::timeout_at(deadline, CatchUnwind(attempt)));
        let outcome = match std::future::poll_fn(|cx| Poll::Ready(attempt.as_mut().poll(cx))).await
        {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => {
                // The task waits: nobody should wait for the reports and
                // replies held, nor, once it proves not to be short, for it.
                self.report();
                if self.ahead.borrow().is_empty() {
                    attempt.await
                } else {
                    match tokio::time::timeout(BATCH_PATIENCE, attempt.as_mut()).await {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            self.hand_back_unstarted();
                            attempt.await
                        }
                    }
                }
            }
        };
        Ok(match outcome {
            Ok(Ok(Ok(output))) => Ok(output),
            Ok(Ok(Err(Failure::Handler(error)))) => Err(self.blamed(&error)),
            Ok(Ok(Err(Failure::Attempt(error)))) => Err(error),
            Ok(Err(panic)) => Err(AttemptError::Panicked(panic)),
            Err(_) => {
                run.cancelled.store(true, Ordering::Relaxed);
                if let Exec::Remote(remote) = &self.exec {
                    // Its handler ignored the cancellation: only ending the
                    // process stops it.
                    // Typed: a handler that ignores its timeout is stuck.
                    remote.kill(ExitReason::Unhealthy {
                        strategy: "task_timeout".into(),
                        cause: HealthCause::Liveness(LivenessCause::Stuck),
                        reason: format!(
                            "task {} ran past its timeout of {:?} and did not stop within {:?}; its process was killed",
                            run.id, run.timeout, remote.grace
                        ),
                    });
                }
                Err(AttemptError::TimedOut(run.timeout))
            }
        })
    }

    /// Calls the handler (user code) for the attempt's future, whose error
    /// the handler then blames; a panic comes back as its message.
    fn start(handler: &RefCell<H>, task: H::Task, ctx: TaskContext) -> Result<Attempt<H>, String> {
        let mut handler = handler.borrow_mut();
        let attempt = std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(task, ctx)))
            .map_err(message_of)?;
        Ok(Box::pin(
            async move { attempt.await.map_err(Failure::Handler) },
        ))
    }

    /// A handler's error, blamed by the handler.
    fn blamed(&self, error: &H::Error) -> AttemptError {
        let blame = match &self.exec {
            Exec::Local(handler) => handler.borrow().blame(error),
            Exec::Remote(_) => Blame::Task,
        };
        match blame {
            Blame::Task => AttemptError::Failed(error.to_string()),
            Blame::Worker => AttemptError::WorkerFailed(error.to_string()),
        }
    }

    /// The process is gone: every attempt running fails with its exit
    /// reason (reported when the worker drops, with the finished ones).
    fn lose_running(&self, reason: &ExitReason) {
        let mut reports = self.reports.borrow_mut();
        for (id, running) in self.running.borrow_mut().drain() {
            running.cancelled.store(true, Ordering::Relaxed);
            running.handle.abort();
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
    fn condemned(&self) -> bool {
        matches!(&self.exec, Exec::Remote(remote) if !remote.serving())
    }

    /// Leaves the router before the worker ends, so that no task is sent
    /// to a worker whose process is gone: the attempts finished are
    /// reported, the tasks of a batch not started are handed back, and the
    /// router forgets this incarnation.
    fn retire(&self) {
        let reports = std::mem::take(&mut *self.reports.borrow_mut());
        let unstarted = std::mem::take(&mut *self.ahead.borrow_mut())
            .into_iter()
            .map(|run| (run.id, run.attempt))
            .collect();
        let key = self.key.replace(UNREGISTERED);
        if key != UNREGISTERED {
            let me = (&*self.id, key, self.incarnation);
            self.router.retire(reports, me, unstarted);
        }
        self.send_replies();
        self.link.set_in_flight(0);
        self.link.end_work();
    }

    /// Reports the worker process's measured memory to the supervisor.
    fn measure(&self) {
        if let Exec::Remote(remote) = &self.exec {
            if let Some(rss) = remote.rss() {
                self.link.set_memory(rss);
            }
        }
    }
}

/// Why an attempt failed: the handler's own error (blamed by the handler
/// once the attempt ends), or a failure of the attempt itself.
enum Failure<E> {
    Handler(E),
    Attempt(AttemptError),
}

/// The future of one attempt: its output, or why it failed.
type Attempt<H> = Pin<
    Box<
        dyn Future<Output = Result<<H as TaskHandler>::Output, Failure<<H as TaskHandler>::Error>>>,
    >,
>;

/// Turns a panic while polling the attempt into an error carrying its
/// message. The attempt is boxed, so the wrapper is `Unpin`: no projection.
pub(crate) struct CatchUnwind<F: ?Sized>(Pin<Box<F>>);

impl<F: Future + ?Sized> CatchUnwind<F> {
    pub(crate) fn new(future: Pin<Box<F>>) -> Self {
        Self(future)
    }
}

impl<F: Future + ?Sized> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(message_of(payload))),
        }
    }
}

/// A caught panic's message; the payload is dropped with its own `Drop`
/// caught, since a payload whose drop panics would otherwise unwind out of
/// the worker's attempt and leave its task waiting for ever. Should that
/// drop panic, its payload is forgotten (a small leak, only ever then).
fn message_of(payload: Box<dyn std::any::Any + Send>) -> String {
    let message = panic_message(&*payload);
    if let Err(second) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        tracing::warn!(panic = %message, "a panic payload panicked when dropped");
        std::mem::forget(second);
    }
    message
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
