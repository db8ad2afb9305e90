//! Tasks addressed to a worker that `scale_down` removes: a broadcast copy
//! (only that worker may run it) and a keyed task (its key maps to that
//! worker). Neither may wait for a worker that will never come back.

mod common;

use std::time::Duration;

use candado_pool::{PoolConfig, PoolEvent, TaskFailure, TaskOptions};
use common::*;

/// One worker to start with (the floor), so the one `scale_up` adds is the
/// newest: the one `scale_down` removes.
fn one_then_two() -> PoolConfig {
    PoolConfig {
        min_size: 1,
        batch: 1,
        ..config(1)
    }
}

#[test]
fn a_broadcast_copy_for_a_removed_worker_is_dead_lettered_not_left_waiting() {
    run_paused(|| async {
        let h = start(one_then_two()).await;
        h.pool.scale_up(1).await.unwrap();
        // Both workers busy for a second: each copy waits for its worker.
        let busy: Vec<_> = (0..2)
            .map(|t| h.pool.submit(work(1_000, t)).unwrap())
            .collect();
        settle().await;
        let pool = h.pool.clone();
        let broadcast =
            actix::spawn(async move { pool.broadcast(work(10, 7), TaskOptions::default()).await });
        settle().await;
        let pool = h.pool.clone();
        let scaled = actix::spawn(async move { pool.scale_down(1).await });
        let outcomes = tokio::time::timeout(Duration::from_secs(10), broadcast)
            .await
            .expect("the broadcast ends without a shutdown")
            .expect("joins")
            .expect("accepted");
        assert_eq!(scaled.await.unwrap(), Ok(1));
        for task in busy {
            assert!(task.await.is_ok());
        }
        let (kept, removed): (Vec<_>, Vec<_>) = outcomes
            .into_iter()
            .partition(|(_, outcome)| outcome.is_ok());
        assert_eq!(kept.len(), 1, "the staying worker ran its copy");
        let [(_, Err(TaskFailure::DeadLettered { id, .. }))] = removed.as_slice() else {
            panic!("the removed worker's copy is dead-lettered: {removed:?}");
        };
        let dead = h.pool.dead_letters().await.unwrap();
        assert!(
            dead.iter()
                .any(|d| d.id == *id && d.reason == "worker_removed"),
            "{dead:?}"
        );
        shut_down_balanced(&h.pool).await;
    });
}

#[test]
fn a_keyed_task_waiting_for_a_removed_worker_is_mapped_to_another() {
    run_paused(|| async {
        let mut h = start(one_then_two()).await;
        // The first worker busy for a second, then a second worker, which
        // the key maps to (least loaded) with a task of a second.
        let busy = h.pool.submit(work(1_000, 1)).unwrap();
        let busy_id = busy.id();
        settle().await;
        h.pool.scale_up(1).await.unwrap();
        let keyed = TaskOptions::default().with_key("k");
        let first = h.pool.submit_with(work(1_000, 2), keyed.clone()).unwrap();
        settle().await;
        // The key's next task waits for that worker; then it is removed.
        let second = h.pool.submit_with(work(10, 3), keyed).unwrap();
        let second_id = second.id();
        settle().await;
        let pool = h.pool.clone();
        let scaled = actix::spawn(async move { pool.scale_down(1).await });
        let done = tokio::time::timeout(Duration::from_secs(10), second).await;
        assert_eq!(done.expect("the keyed task ends without a shutdown"), Ok(3));
        assert_eq!(scaled.await.unwrap(), Ok(1));
        assert_eq!(busy.await, Ok(1));
        assert_eq!(first.await, Ok(2));
        // It ran on the worker that stays (the one that ran `busy`).
        let events = drain(&mut h.events);
        let worker_of = |task| {
            completions(&events)
                .into_iter()
                .find(|(id, _)| *id == task)
                .map(|(_, worker)| worker)
        };
        assert!(worker_of(second_id).is_some());
        assert_eq!(worker_of(second_id), worker_of(busy_id));
        assert!(!events
            .iter()
            .any(|e| matches!(e, PoolEvent::TaskDeadLettered { .. })));
        shut_down_balanced(&h.pool).await;
    });
}
