//! The worker threads: placement, liveness probes, retirement of stuck
//! threads, their replacement, and folding the surplus back once a retired
//! thread recovers.
//!
//! The runtime keeps `size` threads *in service* (the configured number).
//! A thread that leaves a probe unanswered too long is retired (`Stuck`),
//! and a replacement is started so that `size` serve again. When a retired
//! thread answers again, `size + 1` would serve: the least loaded of them
//! (the newest among equals) is folded back. It takes no new child and is
//! stopped as soon as it holds none: at once if it is empty, which is the
//! usual case (a thread blocked long enough to be retired starved its
//! children, and liveness restarted them elsewhere). Children that are still
//! on it stay there, supervised, until they leave (a restart, a removal, a
//! shutdown); no child is ever moved or left on a stopped thread.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix::{Arbiter, ArbiterHandle};
use tokio::time::Instant;

use crate::Placement;

/// A thread that has not answered a probe for this long is suspect: new
/// children avoid it while another thread is fine (a healthy thread answers
/// in microseconds; retiring it as stuck takes a whole heartbeat timeout).
const SUSPECT_AFTER: Duration = Duration::from_millis(50);

/// One worker thread, its load and its liveness probe.
#[derive(Debug)]
pub(crate) struct WorkerThread {
    handle: ArbiterHandle,
    /// The thread itself, when the runtime started it: stopped when the
    /// thread is folded back, or when the runtime is dropped.
    arbiter: Mutex<Option<Arbiter>>,
    /// Live children on it, for least-loaded placement and draining.
    load: AtomicUsize,
    /// Last probe sent: (sequence, when).
    probe: Mutex<(u64, Option<Instant>)>,
    /// Last probe sequence the thread answered.
    answered: Arc<AtomicU64>,
    /// Retired: it left a probe unanswered for too long.
    stuck: AtomicBool,
    /// Surplus: takes no new child, stopped once it holds none.
    draining: AtomicBool,
    /// Stopped; its slot stays, so placements keep their numbers.
    stopped: AtomicBool,
}

impl WorkerThread {
    fn new(handle: ArbiterHandle, arbiter: Option<Arbiter>) -> Arc<Self> {
        Arc::new(Self {
            handle,
            arbiter: Mutex::new(arbiter),
            load: AtomicUsize::new(0),
            probe: Mutex::new((0, None)),
            answered: Arc::new(AtomicU64::new(0)),
            stuck: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        })
    }

    /// Started by the runtime, on a thread of its own.
    fn spawn() -> Arc<Self> {
        let arbiter = Arbiter::new();
        Self::new(arbiter.handle(), Some(arbiter))
    }

    /// May take new children at all (neither draining nor stopped).
    fn open(&self) -> bool {
        !self.draining.load(Ordering::Relaxed) && !self.stopped.load(Ordering::Relaxed)
    }

    /// Open and not retired.
    fn serving(&self) -> bool {
        self.open() && !self.stuck.load(Ordering::Relaxed)
    }

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

    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        if let Some(arbiter) = self
            .arbiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            arbiter.stop();
        }
    }
}

/// A worker thread changed its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThreadChange {
    /// Retired: it left a probe unanswered too long.
    Stuck(Placement),
    /// A retired thread answers again.
    Recovered(Placement),
    /// A new thread was started to keep the configured number in service.
    Started(Placement),
    /// A surplus thread takes no new child and waits for its children to leave.
    Draining(Placement),
    /// A surplus thread holding no child was stopped.
    Stopped(Placement),
}

/// The worker threads of a runtime.
#[derive(Debug)]
pub(crate) struct Threads {
    slots: RwLock<Vec<Arc<WorkerThread>>>,
    /// Threads to keep in service: the configured number.
    size: usize,
    /// Whether the runtime owns its threads, so it can start and stop them.
    owned: bool,
}

impl Threads {
    /// `size` threads of the runtime's own.
    pub(crate) fn spawn(size: usize) -> Self {
        Self {
            slots: RwLock::new((0..size).map(|_| WorkerThread::spawn()).collect()),
            size,
            owned: true,
        }
    }

    /// `size` placements on a thread the runtime does not own (tests).
    pub(crate) fn borrowed(handle: ArbiterHandle, size: usize) -> Self {
        Self {
            slots: RwLock::new(
                (0..size)
                    .map(|_| WorkerThread::new(handle.clone(), None))
                    .collect(),
            ),
            size,
            owned: false,
        }
    }

    fn snapshot(&self) -> Vec<Arc<WorkerThread>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// OS threads the running worker threads are: one for borrowed ones
    /// (all on the calling arbiter).
    pub(crate) fn os_threads(&self) -> usize {
        if self.owned {
            self.running()
        } else {
            1
        }
    }

    /// Threads running: in service, retired and draining (not stopped).
    pub(crate) fn running(&self) -> usize {
        self.snapshot()
            .iter()
            .filter(|w| !w.stopped.load(Ordering::Relaxed))
            .count()
    }

    /// Retired threads that have not answered since.
    pub(crate) fn stuck(&self) -> Vec<Placement> {
        self.snapshot()
            .iter()
            .enumerate()
            .filter(|(_, w)| w.stuck.load(Ordering::Relaxed) && !w.stopped.load(Ordering::Relaxed))
            .map(|(i, _)| Placement::Worker(i))
            .collect()
    }

    /// The threads in service (not retired, draining or stopped).
    pub(crate) fn serving(&self) -> Vec<ArbiterHandle> {
        self.snapshot()
            .iter()
            .filter(|w| w.serving())
            .map(|w| w.handle.clone())
            .collect()
    }

    /// The `n`-th thread in service, counting round (none when no thread
    /// is in service), without copying the list as [`Threads::serving`]
    /// does: for [`Runtime::spawn`](crate::Runtime::spawn), which may be
    /// called per request.
    pub(crate) fn serving_nth(&self, n: usize) -> Option<ArbiterHandle> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        let serving = slots.iter().filter(|w| w.serving()).count();
        if serving == 0 {
            return None;
        }
        slots
            .iter()
            .filter(|w| w.serving())
            .nth(n % serving)
            .map(|w| w.handle.clone())
    }

    /// Picks the open thread with the fewest live children, avoiding stuck
    /// and suspect threads while any other is available, and counts the new
    /// child. So the replacement of a child whose thread is blocked starts
    /// elsewhere at once, before that thread is formally retired. Draining
    /// and stopped threads are never picked while an open one exists: the
    /// read lock held from the choice to the count keeps a thread from being
    /// stopped in between. When none is open (the runtime is being dropped),
    /// the child's start fails instead of the control thread panicking
    /// (`tests/drop.rs`).
    pub(crate) fn place(&self) -> (Placement, ArbiterHandle) {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let least_loaded = |skip_avoided: bool| {
            slots
                .iter()
                .enumerate()
                .filter(|(_, w)| w.open() && (!skip_avoided || !w.avoid(now)))
                .min_by_key(|(_, w)| w.load.load(Ordering::Relaxed))
        };
        // With every thread stopped (the runtime is being dropped while a
        // supervisor restarts a child), any slot will do: the start then
        // fails as "worker thread has stopped", as it must in a teardown.
        // Slots are never removed and a runtime has at least one.
        let (index, worker) = least_loaded(true)
            .or_else(|| least_loaded(false))
            .or_else(|| slots.iter().enumerate().next())
            .expect("a runtime has at least one worker thread slot");
        worker.load.fetch_add(1, Ordering::Relaxed);
        (Placement::Worker(index), worker.handle.clone())
    }

    /// Forgets a child that left a worker thread.
    pub(crate) fn release(&self, placement: Placement) {
        if let Placement::Worker(index) = placement {
            let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
            if let Some(w) = slots.get(index) {
                let _ = w
                    .load
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            }
        }
    }

    /// Probes every running thread. A thread that left a probe unanswered
    /// for `stuck_after` is retired; a retired thread that answers again has
    /// recovered. Then, when the runtime owns its threads, it keeps `size`
    /// in service: it starts replacements for retired threads, folds the
    /// surplus back when they recover, and stops drained threads.
    pub(crate) fn probe(&self, now: Instant, stuck_after: Duration) -> Vec<ThreadChange> {
        // Under the write lock: no placement runs while threads change state.
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let mut changes = Vec::new();
        for (index, worker) in slots.iter().enumerate() {
            if worker.stopped.load(Ordering::Relaxed) {
                continue;
            }
            probe_one(
                worker,
                Placement::Worker(index),
                now,
                stuck_after,
                &mut changes,
            );
        }
        if self.owned {
            self.keep_size(&mut slots, &mut changes);
        }
        changes
    }

    /// Starts or folds back threads so that `size` serve, and stops
    /// draining threads that hold no child.
    fn keep_size(&self, slots: &mut Vec<Arc<WorkerThread>>, changes: &mut Vec<ThreadChange>) {
        let serving = slots.iter().filter(|w| w.serving()).count();
        for _ in serving..self.size {
            slots.push(WorkerThread::spawn());
            changes.push(ThreadChange::Started(Placement::Worker(slots.len() - 1)));
        }
        for _ in self.size..serving {
            // The least loaded thread in service, the newest among equals.
            let surplus = slots
                .iter()
                .enumerate()
                .filter(|(_, w)| w.serving())
                .min_by_key(|(i, w)| (w.load.load(Ordering::Relaxed), std::cmp::Reverse(*i)));
            if let Some((index, worker)) = surplus {
                worker.draining.store(true, Ordering::Relaxed);
                changes.push(ThreadChange::Draining(Placement::Worker(index)));
            }
        }
        for (index, worker) in slots.iter().enumerate() {
            let drained = worker.draining.load(Ordering::Relaxed)
                && !worker.stopped.load(Ordering::Relaxed)
                && worker.load.load(Ordering::Relaxed) == 0;
            if drained {
                worker.stop();
                changes.push(ThreadChange::Stopped(Placement::Worker(index)));
            }
        }
    }

    /// Stops every thread the runtime started.
    pub(crate) fn stop_all(&self) {
        for worker in self.snapshot() {
            worker.stop();
        }
    }
}

/// Probes one thread, noting any change of its stuck state in `changes`.
fn probe_one(
    worker: &WorkerThread,
    placement: Placement,
    now: Instant,
    stuck_after: Duration,
    changes: &mut Vec<ThreadChange>,
) {
    let mut probe = worker.probe.lock().unwrap_or_else(|p| p.into_inner());
    let (seq, sent) = *probe;
    if sent.is_some() && worker.answered.load(Ordering::Acquire) >= seq {
        *probe = (seq, None);
        if worker.stuck.swap(false, Ordering::Relaxed) {
            changes.push(ThreadChange::Recovered(placement));
        }
    }
    let retire = match probe.1 {
        None => {
            let next = seq + 1;
            let answered = worker.answered.clone();
            let sent = worker
                .handle
                .spawn_fn(move || answered.store(next, Ordering::Release));
            if sent {
                *probe = (next, Some(now));
            }
            // A thread whose arbiter is gone cannot answer.
            !sent
        }
        Some(at) => now.duration_since(at) >= stuck_after,
    };
    if retire && !worker.stuck.swap(true, Ordering::Relaxed) {
        changes.push(ThreadChange::Stuck(placement));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_sitting_on_an_overdue_probe_is_avoided_until_it_answers() {
        actix::System::new().block_on(async {
            let thread = WorkerThread::new(actix::Arbiter::current(), None);
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

    #[test]
    fn a_surplus_thread_holding_children_drains_and_stops_only_once_they_left() {
        actix::System::new().block_on(async {
            let threads = Threads::spawn(1);
            let keep_size = |threads: &Threads| {
                let mut changes = Vec::new();
                threads.keep_size(&mut threads.slots.write().unwrap(), &mut changes);
                changes
            };
            let (first, _) = threads.place();
            assert_eq!(first, Placement::Worker(0));
            // Thread 0 is retired: a replacement serves, and takes the next child.
            threads.snapshot()[0].stuck.store(true, Ordering::Relaxed);
            assert_eq!(
                keep_size(&threads),
                [ThreadChange::Started(Placement::Worker(1))]
            );
            let (second, _) = threads.place();
            assert_eq!(second, Placement::Worker(1));
            assert_eq!(threads.running(), 2);
            // Thread 0 recovers: one too many serve. Both hold a child, so the
            // newest drains and keeps its child until it leaves.
            threads.snapshot()[0].stuck.store(false, Ordering::Relaxed);
            assert_eq!(
                keep_size(&threads),
                [ThreadChange::Draining(Placement::Worker(1))]
            );
            assert_eq!(threads.serving().len(), 1);
            assert_eq!(threads.running(), 2, "not stopped while it holds a child");
            assert_eq!(
                threads.place().0,
                Placement::Worker(0),
                "no new child on it"
            );
            assert!(keep_size(&threads).is_empty());
            threads.release(second);
            assert_eq!(
                keep_size(&threads),
                [ThreadChange::Stopped(Placement::Worker(1))]
            );
            assert_eq!(threads.running(), 1);
            threads.stop_all();
        });
    }
}
