//! A worker's attempts run in runner tasks that live as long as the worker
//! and park between runs of attempts (see `worker/runner.rs`). Cancelling an
//! attempt aborts its runner and nothing else; parked runners end with their
//! worker, which lets go of its handler. On virtual time.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candado::Runtime;
use candado_pool::{
    AttemptError, Pool, PoolBuilder, PoolConfig, RetryConfig, TaskContext, TaskFailure,
    TaskHandler, TaskOptions,
};
use common::*;

/// Works `ms` of virtual time and returns it; `None` never ends. Counts
/// the handlers alive.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(alive: &Arc<AtomicUsize>) -> Self {
        alive.fetch_add(1, Ordering::SeqCst);
        Self(alive.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl TaskHandler for Counted {
    type Task = Option<u64>;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        ms: Option<u64>,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        let work = ms.map(Duration::from_millis);
        async move {
            match work {
                Some(work) => {
                    tokio::time::sleep(work).await;
                    Ok(ms.unwrap_or_default())
                }
                None => std::future::pending().await,
            }
        }
    }
}

/// A pool of one worker running up to `concurrency` attempts at once, no
/// retries, on a current-thread runtime; and the count of its handlers
/// alive.
async fn one_worker(concurrency: usize) -> (Runtime, Pool<Counted>, Arc<AtomicUsize>) {
    let runtime = candado::testkit::local_runtime();
    let alive = Arc::new(AtomicUsize::new(0));
    let handlers = alive.clone();
    let config = PoolConfig {
        concurrency,
        retry: RetryConfig {
            max_retries: 0,
            jitter: 0.0,
            ..RetryConfig::default()
        },
        ..config(1)
    };
    let pool = PoolBuilder::new(move || Counted::new(&handlers))
        .config(config)
        .start(&runtime)
        .await
        .unwrap();
    (runtime, pool, alive)
}

/// Lets the runtime run until no handler is alive (a bounded wait: the
/// caller's assertion then says what was left).
async fn all_dropped(alive: &AtomicUsize) {
    for _ in 0..100 {
        if alive.load(Ordering::SeqCst) == 0 {
            return;
        }
        settle().await;
    }
}

fn timeout(after: Duration) -> TaskOptions {
    TaskOptions {
        timeout: Some(after),
        ..TaskOptions::default()
    }
}

#[test]
fn a_timed_out_attempt_stops_alone_and_the_worker_runs_on() {
    run_paused(|| async {
        let (_runtime, pool, alive) = one_worker(2).await;
        // Both run on the one worker at once: one for 3 s, one for ever
        // (until its 1 s timeout aborts it).
        let long = pool.submit(Some(3_000)).unwrap();
        let stuck = pool
            .submit_with(None, timeout(Duration::from_secs(1)))
            .unwrap();
        match stuck.await {
            Err(TaskFailure::DeadLettered { attempts, .. }) => {
                assert!(
                    matches!(
                        attempts.last().map(|a| &a.error),
                        Some(AttemptError::TimedOut(_))
                    ),
                    "{attempts:?}"
                );
            }
            other => panic!("the stuck task should time out: {other:?}"),
        }
        assert_eq!(long.await.unwrap(), 3_000, "its neighbour ran on");
        // The worker takes tasks as before, one after another (its runner
        // parks in between).
        for ms in [5, 6, 7] {
            assert_eq!(pool.submit(Some(ms)).unwrap().await.unwrap(), ms);
        }
        shut_down_balanced(&pool).await;
        drop(pool);
        all_dropped(&alive).await;
        assert_eq!(
            alive.load(Ordering::SeqCst),
            0,
            "a parked runner kept its worker's handler alive"
        );
    });
}

#[test]
fn a_task_handed_to_a_parked_runner_and_cancelled_before_it_starts_is_settled_once() {
    run_paused(|| async {
        let (_runtime, pool, alive) = one_worker(1).await;
        // A first task leaves a parked runner behind.
        assert_eq!(pool.submit(Some(1)).unwrap().await.unwrap(), 1);
        // The next goes to that runner, and the pool stops at once, before
        // the runner has run: the task is handed back, exactly once.
        let next = pool.submit(None).unwrap();
        let report = pool.shutdown_now(Default::default()).await;
        assert!(report.balanced(), "{report:?}");
        assert!(
            matches!(next.await, Err(TaskFailure::Returned { .. })),
            "the task comes back"
        );
        drop(pool);
        all_dropped(&alive).await;
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    });
}
