//! Regression tests of the outside review (issue 16): concurrent callers,
//! values validation accepts, and replay that must not lose a task.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candado::EventStreamError;
use candado_pool::{
    ConfigError, PoolBuilder, PoolConfig, PoolError, ShutdownMode, TaskFailure, TaskOptions,
};
use common::*;

fn no_retries(size: usize) -> PoolConfig {
    PoolConfig {
        retry: candado_pool::RetryConfig {
            max_retries: 0,
            jitter: 0.0,
            ..Default::default()
        },
        ..config(size)
    }
}

#[test]
fn replay_on_a_full_queue_keeps_the_task_and_says_why() {
    run_paused(|| async {
        let h = start(PoolConfig {
            queue_bound: 1,
            ..no_retries(1)
        })
        .await;
        let dead = h.pool.submit(Job::Fail).unwrap();
        let Err(TaskFailure::DeadLettered { id, .. }) = dead.await else {
            panic!("the task should be dead-lettered");
        };
        settle().await;
        // The worker is busy and the one place in the queue is taken.
        let _busy = h.pool.submit(Job::Hang).unwrap();
        settle().await;
        let _queued = h.pool.submit(work(10, 1)).unwrap();
        match h.pool.replay(id).await {
            Err(PoolError::QueueFull { bound: 1 }) => {}
            other => panic!("replay on a full queue: {other:?}"),
        }
        let listed: Vec<_> = h.pool.dead_letters().await.unwrap();
        assert_eq!(listed.len(), 1, "the task is still in the store");
        assert_eq!(listed[0].id, id);

        h.pool.shutdown_now(Default::default()).await;
        match h.pool.replay(id).await {
            Err(PoolError::Stopped) => {}
            other => panic!("replay after shutdown: {other:?}"),
        }
        let listed = h.pool.dead_letters().await.unwrap();
        assert_eq!(listed.len(), 1, "still in the store after shutdown");
    });
}

#[test]
fn two_replays_of_one_dead_task_resubmit_it_once() {
    run_paused(|| async {
        let h = start(no_retries(1)).await;
        let Err(TaskFailure::DeadLettered { id, .. }) = h.pool.submit(Job::Fail).unwrap().await
        else {
            panic!("the task should be dead-lettered");
        };
        settle().await;
        let (a, b) = futures_join(h.pool.replay(id), h.pool.replay(id)).await;
        let accepted = [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count();
        assert_eq!(accepted, 1, "{a:?} {b:?}");
        assert!(
            matches!(a, Err(PoolError::UnknownDeadTask(_))) || b.is_err(),
            "the loser is told the task is gone"
        );
        let report = h.pool.shutdown_gracefully(Duration::from_secs(5)).await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.submitted, 2, "the task and its one replay");
    });
}

#[test]
fn concurrent_shutdowns_all_get_the_one_true_report_and_graceful_stays_graceful() {
    run_paused(|| async {
        let h = start(config(1)).await;
        let task = h.pool.submit(work(100, 7)).unwrap();
        settle().await;
        let graceful = ShutdownMode::Graceful {
            deadline: Duration::from_secs(10),
        };
        let (first, second) =
            futures_join(h.pool.shutdown(graceful), h.pool.shutdown(graceful)).await;
        assert_eq!(task.await, Ok(7), "the running task finished");
        assert_eq!(first, second);
        assert_eq!((first.submitted, first.completed), (1, 1), "{first:?}");
        assert_eq!(h.pool.shutdown(graceful).await, first, "a later call too");
    });
}

#[test]
fn two_scale_ups_at_once_never_pass_max_size() {
    run_paused(|| async {
        let h = start(PoolConfig {
            max_size: 8,
            ..config(4)
        })
        .await;
        let (a, b) = futures_join(h.pool.scale_up(4), h.pool.scale_up(4)).await;
        assert_eq!(
            [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
            1,
            "{a:?} {b:?}"
        );
        assert_eq!(h.pool.size(), 8);
        let children = h.pool.supervisor().children().await.unwrap();
        assert_eq!(children.len(), 8);
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn the_longest_durations_mean_no_deadline_not_a_panic() {
    run_paused(|| async {
        let config = PoolConfig::from_toml(
            "name = \"pool\"\nsize = 1\ntask_timeout = \"18446744073709551615s\"\n\
             [retry]\njitter = 0.0\n",
        )
        .expect("the longest timeout is a valid timeout");
        let h = start(config).await;
        let a = h.pool.submit(work(10, 1)).unwrap();
        let b = h
            .pool
            .submit_with(
                work(10, 2),
                TaskOptions::default().with_timeout(Duration::MAX),
            )
            .unwrap();
        assert_eq!(a.await, Ok(1));
        assert_eq!(b.await, Ok(2));
        let report = h.pool.shutdown_gracefully(Duration::MAX).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn a_graceful_shutdown_with_the_longest_deadline_still_drains() {
    run_paused(|| async {
        let h = start(config(1)).await;
        let task = h.pool.submit(work(50, 3)).unwrap();
        settle().await;
        let report = h.pool.shutdown_gracefully(Duration::MAX).await;
        assert_eq!(task.await, Ok(3));
        assert_eq!(report.completed, 1);
    });
}

#[test]
fn sizes_past_the_documented_maximum_are_typed_errors_naming_the_field() {
    let max = candado_pool::MAX_WORKERS;
    for (text, field) in [
        (format!("max_size = {}", u64::MAX), "max_size"),
        (format!("max_size = {}", max + 1), "max_size"),
        ("size = 1000000\nmax_size = 1000000".to_owned(), "max_size"),
    ] {
        match PoolConfig::from_toml(&text) {
            Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(PoolConfig::from_toml(&format!("max_size = {max}")).is_ok());
}

#[test]
fn percentages_are_compared_as_numbers_not_whole_numbers() {
    let text = "[memory]\nwarning_percent = 95.5\ncritical_percent = 95.2\n";
    match PoolConfig::from_toml(text) {
        Err(ConfigError::Invalid { field, problem }) => {
            assert_eq!(field, "memory");
            assert!(problem.contains("warning_percent"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    let fine = "[memory]\nwarning_percent = 95.2\ncritical_percent = 95.5\n";
    assert!(PoolConfig::from_toml(fine).is_ok());
}

#[test]
fn start_up_does_not_cost_in_proportion_to_max_size() {
    run_paused(|| async {
        let runtime = candado::Runtime::builder()
            .current_thread()
            .build()
            .unwrap();
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let pool = PoolBuilder::new(|| Tester {
            log: Default::default(),
        })
        .config(PoolConfig {
            max_size: candado_pool::MAX_WORKERS,
            ..config(2)
        })
        .capabilities_for(move |n| {
            counter.fetch_add(1, Ordering::SeqCst);
            if n == 1 {
                vec!["gpu".into()]
            } else {
                vec![]
            }
        })
        .start(&runtime)
        .await
        .unwrap();
        assert!(
            asked.load(Ordering::SeqCst) <= 4,
            "capabilities asked of {} workers",
            asked.load(Ordering::SeqCst)
        );
        let gpu = pool
            .submit_with(work(1, 5), TaskOptions::default().with_capability("gpu"))
            .unwrap();
        assert_eq!(gpu.await, Ok(5));
        pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_subscriber_that_falls_behind_is_told_how_many_events_it_missed() {
    run_paused(|| async {
        let mut h = start(config(1)).await;
        let tasks: Vec<_> = (0..5_000)
            .map(|tag| h.pool.submit(work(0, tag)).unwrap())
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut missed = 0;
        let mut received = 0;
        loop {
            match h.events.try_recv() {
                Ok(Some(_)) => received += 1,
                Ok(None) => break,
                Err(EventStreamError::Lagged(n)) => missed += n,
                Err(EventStreamError::Closed) => break,
            }
        }
        assert!(missed > 0, "5,000 completions overrun the buffer");
        assert!(received > 0);
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

/// Polls both futures on this thread until both are done.
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

/// A panic payload whose own `Drop` panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's drop panics too");
    }
}

/// Panics with a [`Bomb`] inside the task (`true`) or in the handler
/// itself (`false`) on the first attempt; succeeds after.
struct Bomber;

impl candado_pool::TaskHandler for Bomber {
    type Task = bool;
    type Output = u32;
    type Error = String;

    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        in_task: bool,
        ctx: candado_pool::TaskContext,
    ) -> impl std::future::Future<Output = Result<u32, String>> + 'static {
        let attempt = ctx.attempt();
        if !in_task && attempt == 1 {
            std::panic::panic_any(Bomb);
        }
        async move {
            if attempt == 1 {
                std::panic::panic_any(Bomb);
            }
            Ok(attempt)
        }
    }
}

#[test]
fn a_panic_payload_whose_drop_panics_fails_its_attempt_and_wedges_nothing() {
    run_paused(|| async {
        let runtime = candado::Runtime::builder()
            .current_thread()
            .build()
            .unwrap();
        let pool = PoolBuilder::new(|| Bomber)
            .config(config(1))
            .start(&runtime)
            .await
            .unwrap();
        for in_task in [true, false] {
            let task = pool.submit(in_task).unwrap();
            let done = tokio::time::timeout(Duration::from_secs(60), task).await;
            assert_eq!(done, Ok(Ok(2)), "in task: {in_task}");
        }
        let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}
