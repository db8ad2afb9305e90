//! Threads of a Candado application and the event bus.

mod app;
mod threads;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Arbiter, ArbiterHandle};
use tokio::sync::oneshot;
use tokio::time::Instant;

pub use app::{JoinError, RunError, Spawned};
pub(crate) use threads::ThreadChange;
use threads::Threads;

use crate::event::EventBus;
use crate::supervisor::{InitReply, Supervisor};
use crate::{AlertSink, Placement, TracingSink};
use crate::{EventStream, RuntimeError, SupervisorError, SupervisorRef, SupervisorSpec};

/// Default capacity of the event stream per subscriber.
pub const DEFAULT_EVENT_CAPACITY: usize = 4096;

/// Largest event stream capacity: the buffer is allocated whole at build
/// time, so a larger one is a typo, not a wish (`usize::MAX` panicked).
pub const MAX_EVENT_CAPACITY: usize = 1 << 20;

/// Most worker threads one runtime may have: each is an OS thread (a
/// current-thread runtime keeps one handle per worker), so past this the
/// build would exhaust the machine instead of failing.
pub const MAX_WORKER_THREADS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Control and workers on threads of their own (production).
    Dedicated,
    /// Control on the calling arbiter, workers on threads of their own.
    ControlOnCurrent,
    /// Everything on the calling arbiter (deterministic tests on virtual time).
    CurrentThread,
}

/// Builds a [`Runtime`].
///
/// ```
/// # actix::System::new().block_on(async {
/// let runtime = candado::Runtime::builder().worker_threads(2).build().unwrap();
/// assert_eq!(runtime.worker_threads(), 2);
/// assert!(candado::Runtime::builder().worker_threads(0).build().is_err());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeBuilder {
    worker_threads: Option<usize>,
    mode: Mode,
    event_capacity: usize,
    seed: Option<u64>,
    alert_sink: Arc<dyn AlertSink>,
}

impl RuntimeBuilder {
    /// Number of worker threads for children (default: the number of CPUs;
    /// 1 to [`MAX_WORKER_THREADS`]).
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = Some(n);
        self
    }

    /// Runs supervisors on the calling arbiter (usually the System arbiter)
    /// and children on worker threads. With `tokio::time::pause()` on the
    /// calling runtime, supervisor timers run on virtual time while child code
    /// still runs on real threads.
    pub fn control_on_current_thread(mut self) -> Self {
        self.mode = Mode::ControlOnCurrent;
        self
    }

    /// Runs everything, supervisors and children, on the calling arbiter. For
    /// deterministic tests on virtual time only: here a blocking child *does*
    /// stall its supervisor.
    pub fn current_thread(mut self) -> Self {
        self.mode = Mode::CurrentThread;
        self
    }

    /// Events buffered per subscriber before it lags (default 4096; 1 to
    /// [`MAX_EVENT_CAPACITY`]).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Seeds the backoff jitter of every supervisor (for reproducible runs).
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Where delivered alerts go besides the event stream (default: [`TracingSink`]).
    pub fn alert_sink(mut self, sink: Arc<dyn AlertSink>) -> Self {
        self.alert_sink = sink;
        self
    }

    /// Starts the threads. Must run inside an actix `System`.
    pub fn build(self) -> Result<Runtime, RuntimeError> {
        let workers = match self.worker_threads {
            Some(0) => return Err(RuntimeError::ZeroWorkerThreads),
            Some(n) if n > MAX_WORKER_THREADS => {
                return Err(RuntimeError::TooManyWorkerThreads {
                    requested: n,
                    max: MAX_WORKER_THREADS,
                })
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.event_capacity == 0 {
            return Err(RuntimeError::ZeroEventCapacity);
        }
        if self.event_capacity > MAX_EVENT_CAPACITY {
            return Err(RuntimeError::EventCapacityTooLarge {
                requested: self.event_capacity,
                max: MAX_EVENT_CAPACITY,
            });
        }
        if actix::System::try_current().is_none() {
            return Err(RuntimeError::NoSystem);
        }
        crate::panic_capture::install();
        let (control, owned, threads) = match self.mode {
            Mode::Dedicated => {
                let control = Arbiter::new();
                (control.handle(), Some(control), Threads::spawn(workers))
            }
            Mode::ControlOnCurrent => (Arbiter::current(), None, Threads::spawn(workers)),
            Mode::CurrentThread => (
                Arbiter::current(),
                None,
                Threads::borrowed(Arbiter::current(), workers),
            ),
        };
        let shared = Shared {
            control,
            threads,
            owned: Mutex::new(owned),
            torn_down: AtomicBool::new(false),
            bus: EventBus::new(self.event_capacity),
            seed: self.seed,
            alert_sink: self.alert_sink,
        };
        Ok(Runtime {
            shared: Arc::new(shared),
            roots: Mutex::new(Vec::new()),
            next_spawn: AtomicUsize::new(0),
        })
    }
}

/// The threads of a Candado application — one control thread for supervisors,
/// worker threads for children — and its event bus.
///
/// [`RuntimeBuilder::run`] is the usual entry point: it starts the actix
/// `System` and the runtime, runs the application on a worker thread beside
/// its children, and shuts everything down when it returns. Or build one
/// inside an actix `System` ([`RuntimeBuilder::build`]), start root
/// supervisors with [`Runtime::start`], and call [`Runtime::shutdown`] to
/// stop every tree in reverse start order. Dropping it stops its threads without an orderly
/// shutdown (quietly: a supervisor torn down with its thread stops at once).
#[derive(Debug)]
pub struct Runtime {
    shared: Arc<Shared>,
    roots: Mutex<Vec<SupervisorRef>>,
    /// The worker thread the next [`Runtime::spawn`] goes to (round robin).
    next_spawn: AtomicUsize,
}

impl Runtime {
    /// A builder with defaults: dedicated control thread, one worker thread per CPU.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            worker_threads: None,
            mode: Mode::Dedicated,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            seed: None,
            alert_sink: Arc::new(TracingSink),
        }
    }

    /// Number of worker threads running: those in service, those retired
    /// as stuck, and surplus threads draining (see below).
    ///
    /// A retired thread is replaced, so that the configured number stay in
    /// service. When it answers again, the runtime folds the surplus back:
    /// the least loaded thread in service (the newest among equals) takes no
    /// new child and is stopped as soon as it holds none, so the count
    /// returns to the configured size (`tests/threads.rs`
    /// `a_recovered_thread_is_folded_back_and_the_count_returns_to_the_configured_size`).
    /// Children still on a draining thread stay there, supervised, until they
    /// leave; none is moved, and none is left on a stopped thread.
    pub fn worker_threads(&self) -> usize {
        self.shared.threads.running()
    }

    /// The OS threads children run on: [`worker_threads`](Self::worker_threads),
    /// or 1 on a [`current_thread`](RuntimeBuilder::current_thread) runtime,
    /// whose worker threads all are the calling arbiter. A pool has a task
    /// router per OS thread.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let runtime = candado::Runtime::builder().current_thread().build().unwrap();
    /// assert_eq!(runtime.worker_os_threads(), 1);
    /// # });
    /// ```
    pub fn worker_os_threads(&self) -> usize {
        self.shared.threads.os_threads()
    }

    /// Worker threads currently reported stuck.
    pub fn stuck_threads(&self) -> Vec<Placement> {
        self.shared.threads.stuck()
    }

    /// The control thread, for control-plane services built on Candado (a
    /// task router, a dead-letter store). Never run user code there: it is
    /// the thread every supervisor's timers depend on.
    pub fn control_arbiter(&self) -> ArbiterHandle {
        self.shared.control.clone()
    }

    /// The worker threads in service (retired stuck threads and draining
    /// surplus threads left out), to
    /// run application code that talks to children next to them. A caller
    /// on a worker's own thread gets its reply without a cross-thread
    /// wake-up. Code there shares the thread with children: blocking it
    /// stalls them, as a blocking child would.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let runtime = candado::Runtime::builder().worker_threads(2).build().unwrap();
    /// let threads = runtime.worker_arbiters();
    /// assert_eq!(threads.len(), 2);
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// threads[0].spawn(async move {
    ///     let _ = tx.send(std::thread::current().id());
    /// });
    /// assert_ne!(rx.await.unwrap(), std::thread::current().id());
    /// # });
    /// ```
    pub fn worker_arbiters(&self) -> Vec<ArbiterHandle> {
        self.shared.threads.serving()
    }

    /// Subscribes to every event of every tree of this runtime, from now on.
    pub fn subscribe(&self) -> EventStream {
        self.shared.bus.subscribe()
    }

    /// Validates `spec`, starts the root supervisor on the control thread and
    /// waits until all its children (recursively) have started, in order.
    pub async fn start(&self, spec: SupervisorSpec) -> Result<SupervisorRef, SupervisorError> {
        spec.validate()?;
        let duplicate = self
            .roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|root| root.path() == spec.id() && root.is_running());
        if duplicate {
            return Err(SupervisorError::DuplicateRoot(spec.id().to_owned()));
        }
        let (tx, rx) = oneshot::channel();
        let shared = self.shared.clone();
        let path: Arc<str> = spec.id.clone();
        let scheduled = self.shared.control.spawn_fn(move || {
            Supervisor::launch(spec, path, shared, None, InitReply::Root(tx));
        });
        let stopped = || SupervisorError::Stopped("control thread".to_owned());
        if !scheduled {
            return Err(stopped());
        }
        let root = rx.await.map_err(|_| stopped())??;
        self.roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(root.clone());
        Ok(root)
    }

    /// Shuts down every root started here, newest first, then stops the threads.
    pub async fn shutdown(self) {
        let roots = std::mem::take(&mut *self.roots.lock().unwrap_or_else(|p| p.into_inner()));
        for root in roots.iter().rev() {
            root.shutdown().await;
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shared.torn_down.store(true, Ordering::SeqCst);
        self.shared.threads.stop_all();
        if let Some(control) = &*self.shared.owned.lock().unwrap_or_else(|p| p.into_inner()) {
            control.stop();
        }
    }
}

/// What every supervisor of a runtime shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) control: ArbiterHandle,
    threads: Threads,
    /// The control thread, when this runtime started it (stopped when it is dropped).
    owned: Mutex<Option<Arbiter>>,
    /// Set when the runtime is dropped: its threads are stopping, and no
    /// child can start any more.
    torn_down: AtomicBool,
    pub(crate) bus: EventBus,
    pub(crate) seed: Option<u64>,
    pub(crate) alert_sink: Arc<dyn AlertSink>,
}

impl Shared {
    /// Picks a worker thread for a new child (see [`Threads::place`]).
    pub(crate) fn place_worker(&self) -> (Placement, ArbiterHandle) {
        self.threads.place()
    }

    /// Whether the runtime was dropped: supervisors stop quietly instead of
    /// starting children on threads that are going away (a restart loop
    /// with no backoff would otherwise fail starts on the control thread
    /// for ever, never yielding to its stop: `tests/drop.rs`).
    pub(crate) fn torn_down(&self) -> bool {
        self.torn_down.load(Ordering::SeqCst)
    }

    /// The `n`-th worker thread in service, counting round.
    pub(crate) fn serving_thread(&self, n: usize) -> Option<ArbiterHandle> {
        self.threads.serving_nth(n)
    }

    /// Forgets a child that left a worker thread.
    pub(crate) fn release(&self, placement: Placement) {
        self.threads.release(placement);
    }

    /// Probes the worker threads (see [`Threads::probe`]).
    pub(crate) fn probe_threads(&self, now: Instant, stuck_after: Duration) -> Vec<ThreadChange> {
        self.threads.probe(now, stuck_after)
    }
}
