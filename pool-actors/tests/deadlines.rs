//! An attempt under its deadline (see `worker/attempt.rs`): its first poll
//! runs without a timer; one left pending then waits under its deadline,
//! polled again only when something wakes it, and times out at the
//! deadline. On virtual time.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use candado_pool::{
    AttemptError, PoolBuilder, PoolConfig, RetryConfig, TaskContext, TaskFailure, TaskHandler,
    TaskOptions,
};
use common::*;

/// What the test sees of the one attempt running: how often it was polled,
/// and the waker it left.
#[derive(Default)]
struct Seen {
    polls: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl Seen {
    fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }

    fn wake(&self) {
        let waker = self.waker.lock().unwrap().take();
        waker.expect("the attempt left a waker").wake();
    }
}

/// Ends at its `n`th poll (never, for `usize::MAX`), answering the number.
struct Polled {
    seen: Arc<Seen>,
    ends_at: usize,
}

impl Future for Polled {
    type Output = Result<usize, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polls = self.seen.polls.fetch_add(1, Ordering::SeqCst) + 1;
        if polls >= self.ends_at {
            return Poll::Ready(Ok(polls));
        }
        *self.seen.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Each task is the poll its attempt ends at.
struct Counting(Arc<Seen>);

impl TaskHandler for Counting {
    type Task = usize;
    type Output = usize;
    type Error = String;

    fn handle(
        &mut self,
        ends_at: usize,
        _: TaskContext,
    ) -> impl Future<Output = Result<usize, String>> + 'static {
        Polled {
            seen: self.0.clone(),
            ends_at,
        }
    }
}

/// One worker, no retries, a 1 s timeout per attempt.
async fn one_worker() -> (candado::Runtime, candado_pool::Pool<Counting>, Arc<Seen>) {
    let runtime = candado::testkit::local_runtime();
    let seen = Arc::new(Seen::default());
    let handler = seen.clone();
    let config = PoolConfig {
        task_timeout: Duration::from_secs(1),
        retry: RetryConfig {
            max_retries: 0,
            jitter: 0.0,
            ..RetryConfig::default()
        },
        ..config(1)
    };
    let pool = PoolBuilder::new(move || Counting(handler.clone()))
        .config(config)
        .start(&runtime)
        .await
        .unwrap();
    (runtime, pool, seen)
}

#[test]
fn an_attempt_that_ends_in_its_first_poll_answers_in_one_poll() {
    run_paused(|| async {
        let (_runtime, pool, seen) = one_worker().await;
        assert_eq!(pool.submit(1).unwrap().await.unwrap(), 1);
        assert_eq!(seen.polls(), 1);
        shut_down_balanced(&pool).await;
    });
}

#[test]
fn a_pending_attempt_is_polled_again_only_when_woken_and_then_ends() {
    run_paused(|| async {
        let (_runtime, pool, seen) = one_worker().await;
        let answer = pool.submit(2).unwrap();
        // Half its timeout passes: nothing woke it, so it was polled once.
        advance(Duration::from_millis(500)).await;
        assert_eq!(seen.polls(), 1, "polled again without a wake-up");
        seen.wake();
        assert_eq!(answer.await.unwrap(), 2);
        assert_eq!(seen.polls(), 2);
        shut_down_balanced(&pool).await;
    });
}

#[test]
fn a_pending_attempt_times_out_at_its_deadline_and_a_task_option_overrides_it() {
    run_paused(|| async {
        let (_runtime, pool, seen) = one_worker().await;
        let started = tokio::time::Instant::now();
        let never = pool.submit(usize::MAX).unwrap();
        match never.await {
            Err(TaskFailure::DeadLettered { attempts, .. }) => assert!(
                matches!(
                    attempts.last().map(|a| &a.error),
                    Some(AttemptError::TimedOut(t)) if *t == Duration::from_secs(1)
                ),
                "{attempts:?}"
            ),
            other => panic!("the attempt should time out: {other:?}"),
        }
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_millis(1_100),
            "timed out after {waited:?}"
        );
        // Once at the start, and once as the deadline woke it: like
        // `timeout_at`, the attempt is polled before its timer (one that
        // ends right then keeps its result).
        assert_eq!(seen.polls(), 2);
        // A task's own timeout takes the place of the pool's.
        let started = tokio::time::Instant::now();
        let options = TaskOptions {
            timeout: Some(Duration::from_secs(3)),
            ..TaskOptions::default()
        };
        let never = pool.submit_with(usize::MAX, options).unwrap();
        assert!(matches!(never.await, Err(TaskFailure::DeadLettered { .. })));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(3) && waited < Duration::from_millis(3_100),
            "timed out after {waited:?}"
        );
        shut_down_balanced(&pool).await;
    });
}
