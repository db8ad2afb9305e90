//! Errors marked not retryable, and a retry budget per task (issue 21,
//! item 11). apalis's behaviour, ported: an `Abort`ed job is not retried,
//! and a job's own `max_attempts` overrides the worker's default.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candado::Runtime;
use candado_pool::{
    AttemptError, Blame, PoolBuilder, PoolConfig, PoolEvent, RetryConfig, TaskContext, TaskFailure,
    TaskHandler, TaskOptions,
};
use common::*;

/// What a [`Strict`] task does.
#[derive(Debug, Clone, PartialEq)]
enum Order {
    /// Fails with an error the handler marks permanent.
    Malformed,
    /// Fails with an ordinary (retryable) error its first `n` attempts.
    Flaky(u32),
    /// Panics in the task.
    Panics,
}

/// Counts attempts; marks "malformed" errors permanent.
struct Strict {
    attempts: Arc<AtomicU32>,
}

impl TaskHandler for Strict {
    type Task = Order;
    type Output = u32;
    type Error = String;

    fn handle(
        &mut self,
        order: Order,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<u32, String>> + 'static {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        async move {
            match order {
                Order::Malformed => Err("malformed: field `qty` is missing".into()),
                Order::Flaky(n) if ctx.attempt() <= n => Err("flaky".into()),
                Order::Flaky(_) => Ok(ctx.attempt()),
                Order::Panics => panic!("the task panics"),
            }
        }
    }

    fn blame(&self, error: &String) -> Blame {
        if error.starts_with("malformed") {
            Blame::Permanent
        } else {
            Blame::Task
        }
    }
}

async fn strict_pool(max_retries: u32) -> (Runtime, candado_pool::Pool<Strict>, Arc<AtomicU32>) {
    let runtime = Runtime::builder().current_thread().build().unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = attempts.clone();
    let pool = PoolBuilder::new(move || Strict {
        attempts: counter.clone(),
    })
    .config(PoolConfig {
        size: 1,
        retry: RetryConfig {
            max_retries,
            jitter: 0.0,
            ..RetryConfig::default()
        },
        ..PoolConfig::default()
    })
    .start(&runtime)
    .await
    .unwrap();
    (runtime, pool, attempts)
}

#[test]
fn an_error_marked_permanent_is_dead_lettered_at_once_whatever_the_budget() {
    run_paused(|| async {
        let (_rt, pool, attempts) = strict_pool(3).await;
        let mut events = pool.subscribe();
        let handle = pool
            .submit_with(
                Order::Malformed,
                TaskOptions::default().with_max_retries(10),
            )
            .unwrap();
        let Err(TaskFailure::DeadLettered {
            attempts: history, ..
        }) = handle.await
        else {
            panic!("a permanent error must dead-letter the task");
        };
        assert_eq!(history.len(), 1, "no retry: {history:?}");
        assert!(matches!(&history[0].error, AttemptError::NotRetryable(m) if m.contains("qty")));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        let dead = pool.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "not retryable");
        // No retry was ever scheduled.
        advance(Duration::from_secs(60)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        let events = drain(&mut events);
        assert!(!events
            .iter()
            .any(|e| matches!(e, PoolEvent::TaskRetried { .. })));
        assert!(events.iter().any(|e| matches!(
            e,
            PoolEvent::TaskDeadLettered { reason, attempts: 1, .. } if reason == "not retryable"
        )));
        let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.dead_lettered, 1);
    });
}

#[test]
fn a_task_budget_overrides_the_pool_retry_count_both_ways() {
    run_paused(|| async {
        let (_rt, pool, attempts) = strict_pool(3).await;
        // Fewer: 1 retry (2 attempts) where the pool would give 3.
        let fewer = pool
            .submit_with(Order::Flaky(5), TaskOptions::default().with_max_retries(1))
            .unwrap();
        let Err(TaskFailure::DeadLettered {
            attempts: history, ..
        }) = fewer.await
        else {
            panic!("two attempts cannot pass Flaky(5)");
        };
        assert_eq!(history.len(), 2);
        // None at all.
        let none = pool
            .submit_with(Order::Flaky(1), TaskOptions::default().with_max_retries(0))
            .unwrap();
        assert!(
            matches!(none.await, Err(TaskFailure::DeadLettered { attempts, .. }) if attempts.len() == 1)
        );
        // More: 5 failures then a success, past the pool's 3 retries.
        let more = pool
            .submit_with(Order::Flaky(5), TaskOptions::default().with_max_retries(5))
            .unwrap();
        assert_eq!(more.await, Ok(6));
        // The pool's default still applies to tasks without a budget.
        let default = pool.submit(Order::Flaky(3)).unwrap();
        assert_eq!(default.await, Ok(4));
        assert_eq!(attempts.load(Ordering::SeqCst), 2 + 1 + 6 + 4);
        let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn the_largest_budget_is_just_many_retries_not_an_overflow() {
    run_paused(|| async {
        let (_rt, pool, _) = strict_pool(0).await;
        let handle = pool
            .submit_with(
                Order::Flaky(8),
                TaskOptions::default().with_max_retries(u32::MAX),
            )
            .unwrap();
        // Backoff is capped at 30 s: 8 retries fit in a few minutes.
        assert_eq!(handle.await, Ok(9));
        let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn a_panic_is_retryable_and_obeys_the_task_budget() {
    run_paused(|| async {
        let (_rt, pool, attempts) = strict_pool(3).await;
        let handle = pool
            .submit_with(Order::Panics, TaskOptions::default().with_max_retries(1))
            .unwrap();
        let Err(TaskFailure::DeadLettered {
            attempts: history, ..
        }) = handle.await
        else {
            panic!("a task that always panics is dead-lettered");
        };
        assert_eq!(history.len(), 2);
        assert!(history
            .iter()
            .all(|a| matches!(a.error, AttemptError::Panicked(_))));
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        // The worker survived its task's panics and still works.
        assert_eq!(pool.submit(Order::Flaky(0)).unwrap().await, Ok(1));
        pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_shutdown_while_a_budgeted_task_waits_for_its_retry_hands_it_back() {
    run_paused(|| async {
        let (_rt, pool, _) = strict_pool(0).await;
        let handle = pool
            .submit_with(Order::Flaky(1), TaskOptions::default().with_max_retries(1))
            .unwrap();
        settle().await;
        // Its first attempt failed; its retry is 1 s away.
        let report = pool.shutdown_gracefully(Duration::from_millis(100)).await;
        assert!(report.balanced(), "{report:?}");
        assert!(matches!(
            handle.await,
            Err(TaskFailure::Returned {
                task: Order::Flaky(1),
                ..
            })
        ));
    });
}
