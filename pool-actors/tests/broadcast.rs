//! Broadcast to every worker (issue 21, item 11): one copy per worker,
//! each run by its own worker, and the outcome of each by worker id. As
//! kameo's `ActorPool` delivers a `BroadcastMsg` to every worker.

mod common;

use std::time::Duration;

use candado_pool::{PoolConfig, PoolError, PoolEvent, TaskFailure, TaskOptions, UnfinishedAction};
use common::*;

#[test]
fn every_worker_runs_one_copy_and_reports_its_own_outcome() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            batch: 1,
            ..config(3)
        })
        .await;
        // One worker is busy: its copy waits for it, no other takes it.
        let busy = h.pool.submit(work(1_000, 1)).unwrap();
        let busy_id = busy.id();
        settle().await;
        let outcomes = h
            .pool
            .broadcast(work(10, 7), TaskOptions::default())
            .await
            .unwrap();
        let workers: Vec<&str> = outcomes.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(workers.len(), 3);
        assert!(outcomes.iter().all(|(_, o)| *o == Ok(7)), "{outcomes:?}");
        assert_eq!(busy.await, Ok(1));
        // Each copy completed on the worker it was addressed to.
        let mut ran_on: Vec<String> = completions(&drain(&mut h.events))
            .into_iter()
            .filter(|(id, _)| *id != busy_id)
            .map(|(_, worker)| worker)
            .collect();
        ran_on.sort();
        let mut expected: Vec<String> = workers.iter().map(|w| w.to_string()).collect();
        expected.sort();
        assert_eq!(ran_on, expected);
        // Internal addressing is not a capability anyone sees.
        let m = h.pool.metrics().await.unwrap();
        assert!(
            m.per_worker.iter().all(|w| w.capabilities.is_empty()),
            "{:?}",
            m.per_worker
        );
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.completed, 4);
    });
}

#[test]
fn a_copy_that_crashes_its_worker_is_retried_on_that_worker_s_replacement() {
    run_paused(|| async {
        let mut h = start(config(2)).await;
        let outcomes = h
            .pool
            .broadcast(Job::CrashWorker, TaskOptions::default())
            .await
            .unwrap();
        assert!(outcomes.iter().all(|(_, o)| *o == Ok(99)), "{outcomes:?}");
        let events = drain(&mut h.events);
        for (worker, _) in &outcomes {
            assert!(events.iter().any(|e| matches!(
                e,
                PoolEvent::TaskCompleted { worker: w, attempt: 2, .. } if w == worker
            )));
        }
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn a_broadcast_is_refused_whole_on_a_full_queue_and_after_shutdown() {
    run_paused(|| async {
        let h = start(PoolConfig {
            queue_bound: 2,
            ..config(3)
        })
        .await;
        let running: Vec<_> = (0..3)
            .map(|t| h.pool.submit(work(1_000, t)).unwrap())
            .collect();
        settle().await;
        let _waiting = h.pool.submit(work(1, 9)).unwrap();
        // Three copies cannot fit one free place: none is queued.
        let refused = h.pool.broadcast(work(1, 5), TaskOptions::default()).await;
        assert_eq!(refused, Err(PoolError::QueueFull { bound: 2 }));
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(m.tasks.submitted, 4);
        assert!(matches!(
            h.pool
                .broadcast(work(1, 5), TaskOptions::default().with_ttl(Duration::ZERO))
                .await,
            Err(PoolError::InvalidOptions(_))
        ));
        let report = h.pool.shutdown_now(UnfinishedAction::Return).await;
        assert!(report.balanced(), "{report:?}");
        for handle in running {
            assert!(matches!(handle.await, Err(TaskFailure::Returned { .. })));
        }
        assert_eq!(
            h.pool.broadcast(work(1, 6), TaskOptions::default()).await,
            Err(PoolError::Stopped)
        );
    });
}

#[test]
fn a_shutdown_while_copies_wait_hands_them_back_per_worker() {
    run_paused(|| async {
        let h = start(PoolConfig {
            batch: 1,
            ..config(2)
        })
        .await;
        let _long: Vec<_> = (0..2)
            .map(|t| h.pool.submit(work(10_000, t)).unwrap())
            .collect();
        settle().await;
        let pool = h.pool.clone();
        let broadcast = tokio::task::spawn_local(async move {
            pool.broadcast(work(1, 5), TaskOptions::default()).await
        });
        settle().await;
        let report = h.pool.shutdown_gracefully(Duration::from_millis(100)).await;
        assert!(report.balanced(), "{report:?}");
        let outcomes = broadcast.await.unwrap().unwrap();
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes
            .iter()
            .all(|(_, o)| matches!(o, Err(TaskFailure::Returned { .. }))));
    });
}
