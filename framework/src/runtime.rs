//! Threads of a Candado application and the event bus.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix::{Arbiter, ArbiterHandle};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::event::EventBus;
use crate::supervisor::{InitReply, Supervisor};
use crate::{AlertSink, TracingSink};
use crate::{EventStream, RuntimeError, SupervisorError, SupervisorRef, SupervisorSpec};

/// The thread an actor runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// The control thread: supervisors only, never child code.
    Control,
    /// Worker thread number `n` (0-based).
    Worker(usize),
}

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
        let mut owned = Vec::new();
        let mut spawn = || {
            let arbiter = Arbiter::new();
            let handle = arbiter.handle();
            owned.push(arbiter);
            handle
        };
        let (control, worker_handles) = match self.mode {
            Mode::Dedicated => {
                let control = spawn();
                (control, (0..workers).map(|_| spawn()).collect())
            }
            Mode::ControlOnCurrent => (Arbiter::current(), (0..workers).map(|_| spawn()).collect()),
            Mode::CurrentThread => (Arbiter::current(), vec![Arbiter::current(); workers]),
        };
        let workers: Vec<Arc<WorkerThread>> =
            worker_handles.into_iter().map(WorkerThread::new).collect();
        let shared = Shared {
            control,
            workers: RwLock::new(workers),
            owned: Mutex::new(owned),
            can_replace: self.mode != Mode::CurrentThread,
            bus: EventBus::new(self.event_capacity),
            seed: self.seed,
            alert_sink: self.alert_sink,
        };
        Ok(Runtime {
            shared: Arc::new(shared),
            roots: Mutex::new(Vec::new()),
        })
    }
}

/// The threads of a Candado application — one control thread for supervisors,
/// worker threads for children — and its event bus.
///
/// Build it inside an actix `System`, start root supervisors with
/// [`Runtime::start`], and call [`Runtime::shutdown`] to stop every tree in
/// reverse start order. Dropping it stops its threads without an orderly
/// shutdown (quietly: a supervisor torn down with its thread stops at once).
#[derive(Debug)]
pub struct Runtime {
    shared: Arc<Shared>,
    roots: Mutex<Vec<SupervisorRef>>,
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

    /// Number of worker threads (including retired stuck ones and their replacements).
    pub fn worker_threads(&self) -> usize {
        self.shared.workers().len()
    }

    /// Worker threads currently reported stuck.
    pub fn stuck_threads(&self) -> Vec<Placement> {
        self.shared
            .workers()
            .iter()
            .enumerate()
            .filter(|(_, w)| w.stuck.load(Ordering::Relaxed))
            .map(|(i, _)| Placement::Worker(i))
            .collect()
    }

    /// The control thread, for control-plane services built on Candado (a
    /// task router, a dead-letter store). Never run user code there: it is
    /// the thread every supervisor's timers depend on.
    pub fn control_arbiter(&self) -> ArbiterHandle {
        self.shared.control.clone()
    }

    /// The worker threads in service (retired stuck threads left out), to
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
        self.shared
            .workers()
            .iter()
            .filter(|w| !w.stuck.load(Ordering::Relaxed))
            .map(|w| w.handle.clone())
            .collect()
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
        for arbiter in self
            .shared
            .owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            arbiter.stop();
        }
    }
}

/// One worker thread, its load and its liveness probe.
#[derive(Debug)]
pub(crate) struct WorkerThread {
    handle: ArbiterHandle,
    /// Live children on it, for least-loaded placement.
    load: AtomicUsize,
    /// Last probe sent: (sequence, when).
    probe: Mutex<(u64, Option<Instant>)>,
    /// Last probe sequence the thread answered.
    answered: Arc<AtomicU64>,
    /// Retired: it left a probe unanswered for too long.
    stuck: AtomicBool,
}

/// A thread that has not answered a probe for this long is suspect: new
/// children avoid it while another thread is fine (a healthy thread answers
/// in microseconds; retiring it as stuck takes a whole heartbeat timeout).
const SUSPECT_AFTER: Duration = Duration::from_millis(50);

impl WorkerThread {
    /// Retired, or sitting on an overdue probe.
    fn avoid(&self, now: Instant) -> bool {
        if self.stuck.load(Ordering::Relaxed) {
            return true;
        }
        let (seq, sent) = *self.probe.lock().unwrap_or_else(|p| p.into_inner());
        sent.is_some_and(|at| {
            now.duration_since(at) >= SUSPECT_AFTER && self.answered.load(Ordering::Acquire) < seq
        })
    }

    fn new(handle: ArbiterHandle) -> Arc<Self> {
        Arc::new(Self {
            handle,
            load: AtomicUsize::new(0),
            probe: Mutex::new((0, None)),
            answered: Arc::new(AtomicU64::new(0)),
            stuck: AtomicBool::new(false),
        })
    }
}

/// A worker thread changed its stuck state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThreadChange {
    Stuck(Placement),
    Recovered(Placement),
}

/// What every supervisor of a runtime shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) control: ArbiterHandle,
    workers: RwLock<Vec<Arc<WorkerThread>>>,
    /// Threads this runtime started (stopped when it is dropped).
    owned: Mutex<Vec<Arbiter>>,
    /// Whether a retired thread can be replaced by a new one.
    can_replace: bool,
    pub(crate) bus: EventBus,
    pub(crate) seed: Option<u64>,
    pub(crate) alert_sink: Arc<dyn AlertSink>,
}

impl Shared {
    fn workers(&self) -> Vec<Arc<WorkerThread>> {
        self.workers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Picks the worker thread with the fewest live children, avoiding stuck
    /// and suspect threads while any other is available, and counts the new
    /// child. So the replacement of a child whose thread is blocked starts
    /// elsewhere at once, before that thread is formally retired.
    pub(crate) fn place_worker(&self) -> (Placement, ArbiterHandle) {
        let workers = self.workers.read().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let least_loaded = |skip_avoided: bool| {
            workers
                .iter()
                .enumerate()
                .filter(|(_, w)| !skip_avoided || !w.avoid(now))
                .min_by_key(|(_, w)| w.load.load(Ordering::Relaxed))
        };
        let (index, worker) = least_loaded(true)
            .or_else(|| least_loaded(false))
            .expect("a runtime has at least one worker thread");
        worker.load.fetch_add(1, Ordering::Relaxed);
        (Placement::Worker(index), worker.handle.clone())
    }

    /// Forgets a child that left a worker thread.
    pub(crate) fn release(&self, placement: Placement) {
        if let Placement::Worker(index) = placement {
            let workers = self.workers.read().unwrap_or_else(|p| p.into_inner());
            if let Some(w) = workers.get(index) {
                let _ = w
                    .load
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            }
        }
    }

    /// Probes every worker thread: a thread that left a probe unanswered for
    /// `stuck_after` is retired (and replaced, when the runtime owns its
    /// threads); a retired thread that answers again is back in service.
    pub(crate) fn probe_threads(&self, now: Instant, stuck_after: Duration) -> Vec<ThreadChange> {
        let mut changes = Vec::new();
        for (index, worker) in self.workers().iter().enumerate() {
            let placement = Placement::Worker(index);
            let mut probe = worker.probe.lock().unwrap_or_else(|p| p.into_inner());
            let (seq, sent) = *probe;
            if sent.is_some() && worker.answered.load(Ordering::Acquire) >= seq {
                *probe = (seq, None);
                if worker.stuck.swap(false, Ordering::Relaxed) {
                    changes.push(ThreadChange::Recovered(placement));
                }
            }
            match probe.1 {
                None => {
                    let next = seq + 1;
                    let answered = worker.answered.clone();
                    if worker
                        .handle
                        .spawn_fn(move || answered.store(next, Ordering::Release))
                    {
                        *probe = (next, Some(now));
                    } else if !worker.stuck.swap(true, Ordering::Relaxed) {
                        changes.push(ThreadChange::Stuck(placement));
                    }
                }
                Some(at) if now.duration_since(at) >= stuck_after => {
                    if !worker.stuck.swap(true, Ordering::Relaxed) {
                        changes.push(ThreadChange::Stuck(placement));
                    }
                }
                Some(_) => {}
            }
        }
        let newly_stuck = changes
            .iter()
            .filter(|c| matches!(c, ThreadChange::Stuck(_)))
            .count();
        if self.can_replace {
            for _ in 0..newly_stuck {
                let arbiter = Arbiter::new();
                let handle = arbiter.handle();
                self.owned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(arbiter);
                self.workers
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(WorkerThread::new(handle));
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_sitting_on_an_overdue_probe_is_avoided_until_it_answers() {
        actix::System::new().block_on(async {
            let thread = WorkerThread::new(actix::Arbiter::current());
            let t0 = Instant::now();
            assert!(!thread.avoid(t0), "no probe out");
            *thread.probe.lock().unwrap() = (1, Some(t0));
            assert!(
                !thread.avoid(t0 + Duration::from_millis(10)),
                "not overdue yet"
            );
            assert!(thread.avoid(t0 + SUSPECT_AFTER));
            thread.answered.store(1, Ordering::Release);
            assert!(!thread.avoid(t0 + SUSPECT_AFTER), "answered");
            thread.stuck.store(true, Ordering::Relaxed);
            assert!(thread.avoid(t0), "retired");
        });
    }
}
