//! A router that a graceful drain left holding nothing, whose look at a
//! sibling's backlog found the sibling's lock taken, does not end its part
//! of the drain: it lingers, and the sibling pokes it as it lets go (see
//! `balance.rs`). Real threads (a router per worker thread); the tasks wait
//! on gates the test opens, and the lock is held by the test, so nothing
//! depends on speed.

#![cfg(test)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use candado::Runtime;
use tokio::sync::Semaphore;

use crate::{PoolBuilder, PoolConfig, TaskContext, TaskHandler};

/// A guard against a hang, not a speed assertion.
const BOUND: Duration = Duration::from_secs(30);

/// Each thread's tasks wait for a permit of that thread's gate.
#[derive(Default)]
struct Gates {
    gates: Mutex<Vec<(ThreadId, Arc<Semaphore>)>>,
    started: AtomicUsize,
}

impl Gates {
    /// `thread`'s gate.
    fn of(&self, thread: ThreadId) -> Arc<Semaphore> {
        let mut gates = self.gates.lock().unwrap();
        if let Some((_, gate)) = gates.iter().find(|(t, _)| *t == thread) {
            return gate.clone();
        }
        let gate = Arc::new(Semaphore::new(0));
        gates.push((thread, gate.clone()));
        gate
    }
}

/// Waits for its thread's gate, then answers with its thread.
struct Gated(Arc<Gates>);

impl TaskHandler for Gated {
    type Task = ();
    type Output = ThreadId;
    type Error = String;

    fn handle(
        &mut self,
        (): (),
        _: TaskContext,
    ) -> impl Future<Output = Result<ThreadId, String>> + 'static {
        let thread = std::thread::current().id();
        let gate = self.0.of(thread);
        self.0.started.fetch_add(1, Ordering::SeqCst);
        async move {
            gate.acquire().await.map_err(|e| e.to_string())?.forget();
            Ok(thread)
        }
    }
}

/// Waits (bounded) until `done`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(BOUND, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
}

#[test]
fn a_drained_router_that_found_its_siblings_lock_taken_lingers_and_takes_the_backlog() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(2).build().unwrap();
        let gates = Arc::new(Gates::default());
        let shared = gates.clone();
        let pool = PoolBuilder::new(move || Gated(shared.clone()))
            .config(PoolConfig {
                size: 2,
                // Nothing may lean on the housekeeping tick.
                router_tick: Duration::from_secs(3600),
                ..PoolConfig::default()
            })
            .start(&runtime)
            .await
            .unwrap();
        let routers = pool.router().clone();
        until("a worker in each router", || {
            (0..2).all(|i| routers.get(i).shared.public.workers.load(Ordering::SeqCst) == 1)
        })
        .await;
        // Each worker holds a task (one on each thread).
        let running: Vec<_> = (0..2).map(|_| pool.submit(()).unwrap()).collect();
        until("both tasks start", || {
            gates.started.load(Ordering::SeqCst) == 2
        })
        .await;
        assert_eq!(gates.gates.lock().unwrap().len(), 2);
        // Four more, submitted on one thread, wait in its router (`x`).
        let (tx, rx) = tokio::sync::oneshot::channel();
        let submitter = pool.clone();
        runtime.worker_arbiters()[0].spawn(async move {
            let handles: Vec<_> = (0..4).map(|_| submitter.submit(()).unwrap()).collect();
            let _ = tx.send((std::thread::current().id(), handles));
        });
        let (home, backlog) = rx.await.unwrap();
        let holds = |i: usize| {
            let shared = &routers.get(i).shared;
            shared.public.pending.load(Ordering::SeqCst)
                || shared.public.plain.load(Ordering::SeqCst) > 0
        };
        let x = (0..2)
            .find(|&i| holds(i))
            .expect("a router holds the backlog");
        assert!(!holds(1 - x));
        let drain = {
            let pool = pool.clone();
            actix::spawn(async move { pool.shutdown_gracefully(BOUND).await })
        };
        until("the drain begins", || {
            routers.get(x).shared.gauges.closed.load(Ordering::SeqCst)
        })
        .await;
        // The other thread's task ends while `x`'s lock is taken: its
        // router, holding nothing now, cannot take the backlog yet.
        let held = routers.get(x).hold();
        let other = gates
            .gates
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| *t)
            .find(|&t| t != home)
            .unwrap();
        gates.of(other).add_permits(5);
        let running: Vec<_> = running.into_iter().map(actix::spawn).collect();
        until("the other thread's task ends", || {
            running.iter().any(|h| h.is_finished())
        })
        .await;
        // `x`'s own task still waits for its gate.
        let (ended, waiting): (Vec<_>, Vec<_>) = running.into_iter().partition(|h| h.is_finished());
        assert_eq!((ended.len(), waiting.len()), (1, 1));
        for handle in ended {
            assert_eq!(handle.await.unwrap().unwrap(), other);
        }
        // Letting go, `x` pokes its lingering sibling, which takes the
        // backlog and runs it (had it ended its drain, the backlog would
        // wait for `x`'s worker, whose gate stays shut).
        drop(held);
        for handle in backlog {
            let ran = tokio::time::timeout(BOUND, handle)
                .await
                .expect("the backlog runs")
                .unwrap();
            assert_eq!(ran, other);
        }
        gates.of(home).add_permits(1);
        for handle in waiting {
            assert_eq!(handle.await.unwrap().unwrap(), home);
        }
        let report = tokio::time::timeout(BOUND, drain).await.unwrap().unwrap();
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.completed, 6);
        runtime.shutdown().await;
    });
}
