//! Direct hand-off with no queue (issue 21, item 11): `Pool::hand_off`
//! succeeds only if a worker takes the task now, and otherwise hands it
//! straight back with a typed error, leaving nothing queued.

mod common;

use std::time::Duration;

use candado_pool::{
    PoolConfig, RateLimitSettings, SubmitError, TaskFailure, TaskOptions, UnfinishedAction,
};
use common::*;

fn any() -> TaskOptions {
    TaskOptions::default()
}

#[test]
fn an_idle_worker_takes_a_hand_off_and_a_busy_pool_hands_it_back() {
    run_paused(|| async {
        let h = start(config(1)).await;
        let first = h.pool.hand_off(work(100, 1), any()).unwrap();
        settle().await;
        match h.pool.hand_off(work(100, 2), any()) {
            Err(SubmitError::NoIdleWorker { task }) => assert_eq!(task, work(100, 2)),
            other => panic!("the only worker is busy: {other:?}"),
        }
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(
            (m.tasks.submitted, m.tasks.queued),
            (1, 0),
            "nothing queued"
        );
        assert_eq!(first.await, Ok(1));
        // Free again: the next hand-off is taken.
        assert_eq!(h.pool.hand_off(work(1, 3), any()).unwrap().await, Ok(3));
        assert_eq!(*h.log.lock().unwrap(), [1, 3]);
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.submitted, 2);
    });
}

#[test]
fn queued_work_goes_first_and_a_full_queue_does_not_block_a_hand_off_to_a_free_worker() {
    run_paused(|| async {
        let h = start(PoolConfig {
            queue_bound: 1,
            batch: 1,
            ..config(2)
        })
        .await;
        let _a = h.pool.submit(work(1_000, 1)).unwrap();
        let _b = h.pool.submit(work(1_000, 2)).unwrap();
        let _c = h.pool.submit(work(1_000, 3)).unwrap();
        settle().await;
        // Both workers busy, one task queued: no hand-off jumps it.
        assert!(matches!(
            h.pool.hand_off(work(1, 4), any()),
            Err(SubmitError::NoIdleWorker { .. })
        ));
        advance(Duration::from_millis(1_001)).await;
        // Task 3 took one freed worker; the other is free: the queue is
        // empty but a hand-off needs no place in it anyway.
        assert_eq!(h.pool.hand_off(work(1, 5), any()).unwrap().await, Ok(5));
        let report = h.pool.shutdown_gracefully(Duration::from_secs(5)).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn two_hand_offs_at_once_for_one_idle_worker_one_wins() {
    run_paused(|| async {
        let h = start(config(1)).await;
        let (pool_a, pool_b) = (h.pool.clone(), h.pool.clone());
        // Two threads, released together.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = [(pool_a, 1), (pool_b, 2)]
            .into_iter()
            .map(|(pool, tag)| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    pool.hand_off(work(100, tag), TaskOptions::default())
                        .map(|handle| handle.id())
                        .map_err(|e| matches!(e, SubmitError::NoIdleWorker { .. }))
                })
            })
            .collect();
        let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(won, 1, "{outcomes:?}");
        assert!(outcomes.contains(&Err(true)), "{outcomes:?}");
        advance(Duration::from_millis(200)).await;
        assert_eq!(h.log.lock().unwrap().len(), 1);
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.completed, 1);
    });
}

#[test]
fn a_handed_off_task_that_fails_is_retried_like_any_task() {
    run_paused(|| async {
        let h = start(config(1)).await;
        let handle = h.pool.hand_off(Job::FailTimes(2), any()).unwrap();
        assert_eq!(handle.await, Ok(0));
        let panics = h
            .pool
            .hand_off(Job::Panic, TaskOptions::default().with_max_retries(0))
            .unwrap();
        assert!(matches!(
            panics.await,
            Err(TaskFailure::DeadLettered { .. })
        ));
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn a_hand_off_says_why_when_it_cannot_be_taken() {
    run_paused(|| async {
        let h = start(PoolConfig {
            rate_limit: Some(RateLimitSettings {
                per_second: 1.0,
                burst: 1,
            }),
            ..config(2)
        })
        .await;
        assert!(matches!(
            h.pool
                .hand_off(work(1, 1), TaskOptions::default().with_capability("gpu")),
            Err(SubmitError::UnknownCapability { .. })
        ));
        assert!(matches!(
            h.pool
                .hand_off(work(1, 1), TaskOptions::default().with_ttl(Duration::ZERO)),
            Err(SubmitError::InvalidOptions { .. })
        ));
        // The rate limit's one token goes to the first; a worker is idle
        // but the second may not start now.
        let first = h.pool.hand_off(work(1, 1), any()).unwrap();
        assert!(matches!(
            h.pool.hand_off(work(1, 2), any()),
            Err(SubmitError::NoIdleWorker { .. })
        ));
        assert_eq!(first.await, Ok(1));
        advance(Duration::from_secs(1)).await;
        assert_eq!(h.pool.hand_off(work(1, 3), any()).unwrap().await, Ok(3));
        advance(Duration::from_secs(1)).await;
        let running = h.pool.hand_off(work(10_000, 4), any());
        settle().await;
        let report = h.pool.shutdown_now(UnfinishedAction::Return).await;
        assert!(report.balanced(), "{report:?}");
        assert!(matches!(
            running.unwrap().await,
            Err(TaskFailure::Returned { .. })
        ));
        assert!(matches!(
            h.pool.hand_off(work(1, 5), any()),
            Err(SubmitError::ShuttingDown { .. })
        ));
    });
}
