//! A time to live per task (issue 21, item 11): a task not started before
//! its TTL runs out is dead-lettered with reason `expired`, never run. On
//! virtual time.

mod common;

use std::time::Duration;

use candado_pool::{PoolEvent, SubmitError, TaskFailure, TaskOptions};
use common::*;

fn ttl(d: Duration) -> TaskOptions {
    TaskOptions::default().with_ttl(d)
}

/// Whether `handle` has resolved by now (without waiting).
async fn resolved<F: std::future::Future + Unpin>(handle: &mut F) -> Option<F::Output> {
    tokio::time::timeout(Duration::ZERO, handle).await.ok()
}

#[test]
fn a_task_still_queued_when_its_ttl_runs_out_is_dead_lettered_then_never_run() {
    run_paused(|| async {
        let mut h = start(config(1)).await;
        let busy = h.pool.submit(work(10_000, 1)).unwrap();
        let mut stale = h
            .pool
            .submit_with(work(10, 2), ttl(Duration::from_secs(1)))
            .unwrap();
        let fresh = h.pool.submit(work(10, 3)).unwrap();
        advance(Duration::from_millis(999)).await;
        assert!(resolved(&mut stale).await.is_none(), "not expired yet");
        advance(Duration::from_millis(2)).await;
        // On time, not when the busy worker frees up 9 s later.
        let Some(Err(TaskFailure::DeadLettered { attempts, .. })) = resolved(&mut stale).await
        else {
            panic!("the task expired at 1 s");
        };
        assert!(attempts.is_empty(), "it never ran");
        let dead = h.pool.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "expired");
        assert_eq!(busy.await, Ok(1));
        assert_eq!(fresh.await, Ok(3));
        assert_eq!(*h.log.lock().unwrap(), [1, 3], "the expired task never ran");
        assert!(drain(&mut h.events).iter().any(|e| matches!(
            e,
            PoolEvent::TaskDeadLettered { reason, attempts: 0, .. } if reason == "expired"
        )));
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(m.tasks.queued, 0);
        let report = shut_down_balanced(&h.pool).await;
        assert_eq!(report.dead_lettered, 1);
    });
}

#[test]
fn a_task_started_in_time_runs_to_the_end_however_long_it_takes() {
    run_paused(|| async {
        let h = start(config(1)).await;
        let handle = h
            .pool
            .submit_with(work(5_000, 1), ttl(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(handle.await, Ok(1));
        // The longest TTL is no limit at all, never an overflow.
        let forever = h.pool.submit_with(work(10, 2), ttl(Duration::MAX)).unwrap();
        assert_eq!(forever.await, Ok(2));
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_zero_ttl_is_refused_with_the_task_back() {
    run_paused(|| async {
        let h = start(config(1)).await;
        match h.pool.submit_with(work(1, 7), ttl(Duration::ZERO)) {
            Err(SubmitError::InvalidOptions { task, problem }) => {
                assert_eq!(task, work(1, 7));
                assert!(problem.contains("time to live"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
        let batch = h.pool.submit_batch(vec![
            (work(1, 8), TaskOptions::default()),
            (work(1, 9), ttl(Duration::ZERO)),
        ]);
        assert!(matches!(batch, Err(SubmitError::InvalidOptions { task, .. }) if task.len() == 2));
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert_eq!(report.submitted, 0);
    });
}

#[test]
fn a_retry_that_would_start_after_the_ttl_never_starts() {
    run_paused(|| async {
        let mut h = start(config(1)).await;
        // Attempt 1 at 0 s fails, attempt 2 at 1 s fails, attempt 3 would
        // start at 3 s: past its TTL of 1.5 s.
        let handle = h
            .pool
            .submit_with(Job::Fail, ttl(Duration::from_millis(1500)))
            .unwrap();
        let Err(TaskFailure::DeadLettered { attempts, .. }) = handle.await else {
            panic!("an always failing task ends dead");
        };
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        let dead = h.pool.dead_letters().await.unwrap();
        assert_eq!(dead[0].reason, "expired");
        let started = drain(&mut h.events)
            .iter()
            .filter(|e| matches!(e, PoolEvent::TaskFailed { .. }))
            .count();
        assert_eq!(started, 2);
        shut_down_balanced(&h.pool).await;
    });
}

#[test]
fn a_shutdown_before_the_ttl_hands_the_task_back_and_the_books_balance() {
    run_paused(|| async {
        let h = start(config(1)).await;
        let _busy = h.pool.submit(work(10_000, 1)).unwrap();
        let waiting = h
            .pool
            .submit_with(work(10, 2), ttl(Duration::from_secs(60)))
            .unwrap();
        settle().await;
        let report = h
            .pool
            .shutdown_now(candado_pool::UnfinishedAction::Return)
            .await;
        assert!(report.balanced(), "{report:?}");
        assert!(matches!(waiting.await, Err(TaskFailure::Returned { .. })));
        // Its expiry passing later changes nothing.
        advance(Duration::from_secs(120)).await;
        assert_eq!(h.pool.dead_letters().await.unwrap_or_default().len(), 0);
    });
}

#[test]
fn many_tasks_expiring_at_once_while_others_complete_all_end_exactly_once() {
    run_paused(|| async {
        let h = start(config(2)).await;
        let mut handles = Vec::new();
        for tag in 0..40 {
            let options = if tag % 2 == 0 {
                ttl(Duration::from_millis(250))
            } else {
                TaskOptions::default()
            };
            handles.push(h.pool.submit_with(work(100, tag), options).unwrap());
        }
        let (mut ok, mut expired) = (0, 0);
        for handle in handles {
            match handle.await {
                Ok(_) => ok += 1,
                Err(TaskFailure::DeadLettered { attempts, .. }) if attempts.is_empty() => {
                    expired += 1
                }
                other => panic!("{other:?}"),
            }
        }
        // 2 workers × 100 ms: the first six or so start in time.
        assert_eq!(ok + expired, 40);
        assert!(expired >= 14, "{expired} expired");
        let report = shut_down_balanced(&h.pool).await;
        assert_eq!(report.completed + report.dead_lettered, 40);
    });
}
