//! The pool's worker actor: runs tasks for the router.
//!
//! Each attempt runs in a runner task on the worker's thread, outside the
//! actor, so the actor stays free for its supervisor's heartbeats and
//! pings. When an attempt ends, the runner settles it with the router and,
//! if the router hands this worker its next task in the same call, runs
//! that one straight away: under load a worker goes from task to task
//! without going through its queue. A task that reaches an idle worker
//! comes through the worker's run queue, and is handed to a parked runner:
//! no actor message and no new task per attempt.
//!
//! Replies to submitters are held while the worker runs tasks back to back
//! from a deep queue, and sent in bursts (before it waits on a task, every
//! [`BURST`] tasks, whenever fewer than [`BURST`] tasks wait, and when it
//! runs out of work), so one wake-up of a submitter's thread carries many
//! replies instead of one each, while submitters that have nothing queued
//! get theirs at once.

//!
//! - `local.rs`: what the actor shares with the tasks running its attempts,
//!   and what they do between attempts;
//! - `runner.rs`: those tasks, which live as long as their worker and park
//!   between runs of attempts;
//! - `run_queue.rs`: how the router reaches the worker (runs and
//!   cancellations, queued in order, no actor message each);
//! - `attempt.rs`: one attempt, under its deadline, its panics caught.

mod attempt;
mod local;
mod run_queue;
mod runner;

pub(crate) use attempt::CatchUnwind;
use local::Local;
use run_queue::RunQueue;
use runner::Runner;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, Message, Running as Stopping,
    StreamHandler,
};
use candado::ChildLink;
use candado_process::ProcessEvent;

use crate::isolation::Remote;
use crate::messages::WorkerKey;
use crate::router::Routers;
use crate::TaskHandler;

/// The handler panicked outside its task's future: the worker itself dies
/// (its attempts are lost and retried; a fresh incarnation takes over).
#[derive(Message)]
#[rtype(result = "()")]
struct Crash(String);

/// The runner of one attempt (and of the ones after it), by attempt.
struct Running<T> {
    runner: Rc<Runner<T>>,
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

/// An attempt that ran to its end in one go (it never waited) within this
/// counts as quick: about what waking another thread costs. Dispatches
/// from a quick worker's own thread prefer it (see `Router::pick_worker`),
/// sparing the wake-ups of the task and its reply; longer tasks are spread
/// over the threads in turn, so that they run side by side.
const QUICK_TASK: Duration = Duration::from_micros(20);

/// A task of a batch still running this long after it began to wait is not
/// a short task after all: the tasks of the batch behind it go back to the
/// queue, for any worker to take, instead of waiting for it.
const BATCH_PATIENCE: Duration = Duration::from_millis(5);

/// The key of a worker the router does not know: its reports are ignored.
const UNREGISTERED: WorkerKey = WorkerKey::MAX;

/// Tells the router this incarnation is gone, however it ends (stop or panic).
struct Goodbye<H: TaskHandler> {
    router: Routers<H>,
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
    /// Where the router sends it runs and cancellations.
    queue: Arc<RunQueue<H::Task>>,
    capabilities: Vec<String>,
    /// Its supervisor asked it to stop (a worker process is ending).
    stopping: bool,
    _goodbye: Goodbye<H>,
}

impl<H: TaskHandler> PoolWorker<H> {
    pub(crate) fn new(
        link: ChildLink,
        exec: Exec<H>,
        router: Routers<H>,
        capabilities: Vec<String>,
        yield_every: u32,
        batch: usize,
    ) -> Self {
        let id: Arc<str> = link.id().into();
        let incarnation = link.incarnation();
        let process = matches!(exec, Exec::Remote(_)).then(Arc::default);
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
                routers: router,
                home: Cell::new(0),
                yield_every,
                batch,
                running: RefCell::default(),
                idle: RefCell::default(),
                actor: RefCell::default(),
                unstamped: Cell::new(0),
                stamped: Cell::new(None),
                replies: RefCell::default(),
                reports: RefCell::default(),
                ahead: RefCell::default(),
                pace: Cell::default(),
                quick: Cell::new(false),
                process,
            }),
            queue: Arc::default(),
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
                    if let Some(gauge) = &self.local.process {
                        gauge.pid.store(pid, std::sync::atomic::Ordering::Relaxed);
                    }
                    ctx.add_stream(events);
                }
                Err(reason) => return self.local.link.exit(ctx, reason),
            }
        }
        actix::spawn(run_queue::serve(
            Rc::downgrade(&self.local),
            self.queue.clone(),
        ));
        let registered = self.local.routers.register(
            self.local.id.clone(),
            self.local.incarnation,
            self.queue.clone(),
            std::mem::take(&mut self.capabilities),
            self.local.process.clone(),
        );
        match registered {
            Some((home, key)) => {
                self.local.home.set(home);
                self.local.key.set(key);
            }
            None => self.local.key.set(UNREGISTERED),
        }
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
        // Nothing more starts here; what the queue holds, the router fails
        // when this incarnation unregisters.
        self.queue.close();
        // Attempts die with their worker; the router fails them on unregister.
        for (_, running) in self.local.running.borrow_mut().drain() {
            running.cancelled.store(true, Ordering::Relaxed);
            running.runner.abort();
        }
        // Attempts that finished are reported, and tasks not started are
        // handed back (they cost no attempt), before the router hears that
        // this incarnation is gone and fails the attempts it still holds.
        self.local.report();
        self.local.hand_back_unstarted();
    }
}

impl<H: TaskHandler> Handler<Crash> for PoolWorker<H> {
    type Result = ();

    fn handle(&mut self, Crash(message): Crash, _: &mut Context<Self>) {
        panic!("{message}");
    }
}
