//! A pool on two worker threads has two routers, each over the workers of
//! its thread (see `router/routers.rs`). What concerns the pool as a whole
//! spans both: a scale-down whose leaving workers sit on both threads waits
//! for each, a graceful shutdown says one `DrainStarted` with what both
//! hold, and tasks that move between the routers during the drain all
//! finish and are counted once. Real threads: where things run is the
//! point. Tasks wait on a gate the test opens, so nothing depends on speed.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use candado::Runtime;
use candado_pool::{
    Pool, PoolBuilder, PoolConfig, PoolEvent, TaskContext, TaskHandle, TaskHandler,
};
use tokio::sync::Semaphore;

/// What the gated tasks share with the test.
struct Gate {
    /// Permits to finish, a gate per thread (the first thread a task ran
    /// on, and the other): one permit per task.
    open: [Semaphore; 2],
    /// Tasks started so far.
    started: AtomicUsize,
    /// The thread of each task, by task number.
    threads: Mutex<Vec<(u64, ThreadId)>>,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            open: [Semaphore::new(0), Semaphore::new(0)],
            started: AtomicUsize::new(0),
            threads: Mutex::default(),
        }
    }
}

impl Gate {
    /// Opens both threads' gates for `n` tasks each.
    fn open(&self, n: usize) {
        for gate in &self.open {
            gate.add_permits(n);
        }
    }
}

/// Waits for a permit of its thread's gate, then answers with its thread.
struct Gated(Arc<Gate>);

impl TaskHandler for Gated {
    type Task = u64;
    type Output = ThreadId;
    type Error = String;

    fn handle(
        &mut self,
        n: u64,
        _: TaskContext,
    ) -> impl Future<Output = Result<ThreadId, String>> + 'static {
        let gate = self.0.clone();
        let thread = std::thread::current().id();
        let side = {
            let mut threads = gate.threads.lock().unwrap();
            threads.push((n, thread));
            usize::from(threads[0].1 != thread)
        };
        gate.started.fetch_add(1, Ordering::SeqCst);
        async move {
            gate.open[side]
                .acquire()
                .await
                .map_err(|e| e.to_string())?
                .forget();
            Ok(thread)
        }
    }
}

/// A guard against a hang, not a speed assertion.
const BOUND: Duration = Duration::from_secs(30);

/// Runs `body` with a pool of four gated workers on a two-thread runtime.
/// The routers' housekeeping tick is an hour: no test here may lean on it
/// (it also looks for work a sibling could take).
fn with_pool(body: impl AsyncFnOnce(Pool<Gated>, Arc<Gate>, Vec<actix::ArbiterHandle>)) {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(2).build().unwrap();
        let gate = Arc::new(Gate::default());
        let shared = gate.clone();
        let pool = PoolBuilder::new(move || Gated(shared.clone()))
            .config(PoolConfig {
                size: 4,
                router_tick: Duration::from_secs(3600),
                ..PoolConfig::default()
            })
            .start(&runtime)
            .await
            .unwrap();
        body(pool, gate, runtime.worker_arbiters()).await;
        runtime.shutdown().await;
    });
}

/// Waits (bounded) until `n` tasks have started.
async fn started(gate: &Gate, n: usize) {
    tokio::time::timeout(BOUND, async {
        while gate.started.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} tasks start"));
}

/// Four tasks hold the four workers; asserts they run two on each thread
/// (so each thread's router has two workers) and returns their handles.
async fn occupy_every_worker(pool: &Pool<Gated>, gate: &Gate) -> Vec<TaskHandle<Gated>> {
    let handles: Vec<_> = (0..4).map(|n| pool.submit(n).unwrap()).collect();
    started(gate, 4).await;
    let threads: Vec<ThreadId> = gate.threads.lock().unwrap().iter().map(|t| t.1).collect();
    let first = threads.iter().filter(|&&t| t == threads[0]).count();
    assert_eq!(first, 2, "two workers on each thread: {threads:?}");
    handles
}

/// Submits tasks `numbers` on `thread`; returns that thread and the handles.
async fn submit_on(
    thread: &actix::ArbiterHandle,
    pool: &Pool<Gated>,
    numbers: std::ops::Range<u64>,
) -> (ThreadId, Vec<TaskHandle<Gated>>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let pool = pool.clone();
    thread.spawn(async move {
        let handles: Vec<_> = numbers.map(|n| pool.submit(n).unwrap()).collect();
        let _ = tx.send((std::thread::current().id(), handles));
    });
    rx.await.unwrap()
}

/// The side of `thread`'s gate.
fn side(gate: &Gate, thread: ThreadId) -> usize {
    usize::from(gate.threads.lock().unwrap()[0].1 != thread)
}

/// Tasks submitted on a thread whose workers are all busy (with attempts
/// not known to be quick) go to the other thread's workers as soon as
/// those are free: both of them, though one look takes at most half of what
/// waits, and though they still sit in the intake of the busy thread's
/// router. Nothing waits for the router's housekeeping tick (an hour).
#[test]
fn tasks_behind_busy_workers_go_to_the_other_threads_workers_once_free() {
    with_pool(async |pool, gate, threads| {
        let running = occupy_every_worker(&pool, &gate).await;
        let (home, waiting) = submit_on(&threads[0], &pool, 100..102).await;
        gate.open[1 - side(&gate, home)].add_permits(4);
        started(&gate, 6).await;
        gate.open(4);
        let mut away = 0;
        for handle in waiting {
            let thread = tokio::time::timeout(BOUND, handle)
                .await
                .expect("every task ends")
                .expect("every task succeeds");
            away += usize::from(thread != home);
        }
        assert_eq!(away, 2);
        for handle in running {
            handle.await.unwrap();
        }
        let report = pool.shutdown_gracefully(BOUND).await;
        assert!(report.balanced(), "{report:?}");
    });
}

/// Scaling 4 → 1 drains three workers, so at least one on each thread: it
/// ends only once both routers' leaving workers finished their tasks
/// (opening one thread's gate is not enough, whichever router that thread
/// has), and tasks submitted meanwhile run on the worker that stays.
#[test]
fn a_scale_down_over_both_threads_waits_for_the_workers_of_each() {
    for first in [0, 1] {
        with_pool(async |pool, gate, _| {
            let running = occupy_every_worker(&pool, &gate).await;
            let scaling = {
                let pool = pool.clone();
                actix::spawn(async move { pool.scale_down(3).await })
            };
            // The leaving workers hold gated tasks: the drain cannot end yet.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!scaling.is_finished(), "the drain ended with tasks held");
            // One thread's tasks end; the other's still hold the drain.
            gate.open[first].add_permits(2);
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(
                !scaling.is_finished(),
                "the drain ended with one thread's tasks held"
            );
            let later: Vec<_> = (10..14).map(|n| pool.submit(n).unwrap()).collect();
            gate.open(8);
            let to = tokio::time::timeout(BOUND, scaling)
                .await
                .expect("the drain ends")
                .unwrap();
            assert_eq!(to.unwrap(), 1);
            for handle in running.into_iter().chain(later) {
                tokio::time::timeout(BOUND, handle)
                    .await
                    .expect("every task ends")
                    .expect("every task succeeds");
            }
            let report = pool.shutdown_gracefully(BOUND).await;
            assert!(report.balanced(), "{report:?}");
            assert_eq!(report.completed, 8, "{report:?}");
        });
    }
}

/// A backlog waits in the first thread's router while every worker is
/// busy; a graceful shutdown then announces what both routers hold, once.
/// Only the other thread's gate opens: its router, drained, does not end
/// its part of the drain while its workers could run the backlog, and takes
/// all of it (not only while the first is far behind), so the pool's drain
/// does not wait on two stuck workers. Every task succeeds, and the books,
/// kept by two routers, balance.
#[test]
fn a_graceful_drain_spans_both_routers_and_tasks_moved_during_it_finish() {
    with_pool(async |pool, gate, threads| {
        let mut events = pool.subscribe();
        let running = occupy_every_worker(&pool, &gate).await;
        // Submitted on the first thread: with no room anywhere, they wait
        // in its router.
        let (home, backlog) = submit_on(&threads[0], &pool, 100..200).await;
        // Two callers at once: one drain, one announcement, one report.
        let (a, b) = (pool.clone(), pool.clone());
        let first = actix::spawn(async move { a.shutdown_gracefully(BOUND).await });
        let second = actix::spawn(async move { b.shutdown_gracefully(BOUND).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.open[1 - side(&gate, home)].add_permits(102);
        started(&gate, 104).await;
        gate.open(2);
        let mut away = 0;
        for handle in running.into_iter().chain(backlog) {
            let thread = tokio::time::timeout(BOUND, handle)
                .await
                .expect("every task ends")
                .expect("every task succeeds");
            away += usize::from(thread != home);
        }
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert_eq!(first, second);
        assert!(first.balanced(), "{first:?}");
        assert_eq!((first.submitted, first.completed), (104, 104));
        // Two of the first four, and the whole backlog.
        assert_eq!(away, 102);

        let mut drains = Vec::new();
        let mut downs = 0;
        while let Ok(Some(event)) = events.try_recv() {
            match event {
                PoolEvent::DrainStarted { .. } => drains.push(event),
                PoolEvent::ShutDown(_) => downs += 1,
                _ => {}
            }
        }
        assert_eq!(
            drains,
            [PoolEvent::DrainStarted {
                deadline_ms: BOUND.as_millis() as u64,
                queued: 100,
                in_flight: 4,
            }]
        );
        assert_eq!(downs, 1);
    });
}
