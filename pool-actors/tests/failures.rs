//! Retries, dead letters, replay, timeouts, panics and workers lost mid-task.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candado_pool::{AttemptError, PoolConfig, PoolEvent, RetryConfig, TaskFailure, TaskOptions};
use common::*;

#[test]
fn retries_follow_the_schedule_then_the_task_is_dead_lettered_with_its_history() {
    run_paused(|| async {
        let mut h = start(config(2)).await;
        let started = tokio::time::Instant::now();
        let failure = h.pool.submit(Job::Fail).unwrap().await.unwrap_err();
        // 1 s + 2 s + 4 s of backoff between the 4 attempts.
        assert_eq!(started.elapsed(), Duration::from_secs(7));
        let TaskFailure::DeadLettered { id, attempts } = failure else {
            panic!("{failure:?}")
        };
        assert_eq!(attempts.len(), 4);
        assert_eq!(
            attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(attempts
            .iter()
            .all(|a| a.error == AttemptError::Failed("always fails".into())));
        assert_eq!(
            attempts
                .iter()
                .map(|a| a.started_ms / 1000)
                .collect::<Vec<_>>(),
            [0, 1, 3, 7]
        );
        let events = drain(&mut h.events);
        let delays: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                PoolEvent::TaskRetried { delay_ms, .. } => Some(*delay_ms),
                _ => None,
            })
            .collect();
        assert_eq!(delays, [1_000, 2_000, 4_000]);
        assert!(events
            .iter()
            .any(|e| matches!(e, PoolEvent::TaskDeadLettered { attempts: 4, .. })));

        // The dead-letter store keeps it, with payload and history.
        let list = h.pool.dead_letters().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].id, list[0].attempts), (id, 4));
        assert_eq!(list[0].reason, "retries exhausted");
        let dead = h.pool.inspect_dead(id).await.unwrap();
        assert!(matches!(dead.task, Job::Fail));
        assert_eq!(dead.attempts, attempts);
        let metrics = h.pool.metrics().await.unwrap();
        assert_eq!(
            (
                metrics.tasks.failed,
                metrics.tasks.retried,
                metrics.tasks.dead_lettered
            ),
            (4, 3, 1)
        );
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_task_that_fails_twice_then_succeeds_completes_on_its_third_attempt() {
    run_paused(|| async {
        let h = start(config(1)).await;
        assert_eq!(h.pool.submit(Job::FailTimes(2)).unwrap().await, Ok(0));
        let metrics = h.pool.metrics().await.unwrap();
        assert_eq!(
            (
                metrics.tasks.completed,
                metrics.tasks.failed,
                metrics.tasks.dead_lettered
            ),
            (1, 2, 0)
        );
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn dead_tasks_can_be_replayed_and_purged() {
    run_paused(|| async {
        let h = start(PoolConfig {
            retry: RetryConfig {
                max_retries: 0,
                ..config(1).retry
            },
            ..config(1)
        })
        .await;
        let ready = Arc::new(AtomicBool::new(false));
        let Err(TaskFailure::DeadLettered { id, .. }) =
            h.pool.submit(Job::Until(ready.clone())).unwrap().await
        else {
            panic!("expected a dead letter");
        };
        let Err(TaskFailure::DeadLettered { id: other, .. }) =
            h.pool.submit(Job::Fail).unwrap().await
        else {
            panic!("expected a dead letter");
        };
        ready.store(true, Ordering::SeqCst);
        let replayed = h.pool.replay(id).await.unwrap();
        assert_eq!(replayed.await, Ok(1));
        assert_eq!(
            h.pool.dead_letters().await.unwrap().len(),
            1,
            "replay takes it out of the store"
        );
        assert!(matches!(
            h.pool.replay(id).await,
            Err(candado_pool::PoolError::UnknownDeadTask(_))
        ));
        assert_eq!(h.pool.purge_dead(Some(other)).await.unwrap(), 1);
        assert!(h.pool.dead_letters().await.unwrap().is_empty());
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert_eq!(
            (report.submitted, report.completed, report.dead_lettered),
            (3, 1, 2)
        );
        assert!(report.balanced());
    });
}

#[test]
fn the_dead_letter_store_is_bounded_and_evicts_the_oldest_with_an_event() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            dead_letter_capacity: 2,
            retry: RetryConfig {
                max_retries: 0,
                ..config(1).retry
            },
            ..config(1)
        })
        .await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(h.pool.submit(Job::Fail).unwrap().id());
        }
        advance(Duration::from_millis(100)).await;
        let kept: Vec<_> = h
            .pool
            .dead_letters()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(kept, ids[1..]);
        assert!(drain(&mut h.events)
            .iter()
            .any(|e| matches!(e, PoolEvent::DeadLetterEvicted { id } if *id == ids[0])));
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn an_attempt_past_its_timeout_is_cancelled_and_fails() {
    run_paused(|| async {
        let h = start(PoolConfig {
            retry: RetryConfig {
                max_retries: 1,
                ..config(1).retry
            },
            task_timeout: Duration::from_secs(60),
            ..config(1)
        })
        .await;
        let started = tokio::time::Instant::now();
        let options = TaskOptions::default().with_timeout(Duration::from_secs(2));
        let failure = h
            .pool
            .submit_with(work(10_000, 1), options)
            .unwrap()
            .await
            .unwrap_err();
        let TaskFailure::DeadLettered { attempts, .. } = failure else {
            panic!()
        };
        assert_eq!(attempts.len(), 2);
        assert!(attempts
            .iter()
            .all(|a| a.error == AttemptError::TimedOut(Duration::from_secs(2))));
        // 2 s, 1 s backoff, 2 s.
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        // The pool default applies without an override.
        let quick = h.pool.submit(work(30_000, 2)).unwrap().await;
        assert_eq!(quick, Ok(2));
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_panicking_task_fails_its_attempt_and_the_worker_lives_on() {
    run_paused(|| async {
        let h = start(PoolConfig {
            retry: RetryConfig {
                max_retries: 0,
                ..config(1).retry
            },
            ..config(1)
        })
        .await;
        let failure = h.pool.submit(Job::Panic).unwrap().await.unwrap_err();
        let TaskFailure::DeadLettered { attempts, .. } = failure else {
            panic!()
        };
        assert!(
            matches!(&attempts[0].error, AttemptError::Panicked(m) if m.contains("the task panics"))
        );
        // Same worker incarnation serves the next task.
        assert_eq!(h.pool.submit(work(1, 7)).unwrap().await, Ok(7));
        let metrics = h.pool.metrics().await.unwrap();
        assert_eq!(metrics.per_worker[0].incarnation, 1);
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_worker_lost_mid_task_fails_every_attempt_it_held_and_its_replacement_takes_the_work() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            concurrency: 3,
            ..config(1)
        })
        .await;
        let long_a = h.pool.submit(work(5_000, 1)).unwrap();
        let long_b = h.pool.submit(work(5_000, 2)).unwrap();
        settle().await;
        // The handler panics outside the task: the worker actor itself dies.
        let crash = h.pool.submit(Job::CrashWorker).unwrap();
        // Meanwhile more work waits in the queue (priority order matters).
        let queued: Vec<_> = (10..14)
            .map(|tag| h.pool.submit(work(10, tag)).unwrap())
            .collect();
        assert_eq!(long_a.await, Ok(1));
        assert_eq!(long_b.await, Ok(2));
        for (q, tag) in queued.into_iter().zip(10..) {
            assert_eq!(q.await, Ok(tag));
        }
        let events = drain(&mut h.events);
        let lost: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                PoolEvent::TaskFailed {
                    id,
                    error: AttemptError::WorkerLost(_),
                    ..
                } => Some(*id),
                _ => None,
            })
            .collect();
        assert!(
            lost.len() >= 2,
            "both long tasks lost their attempt: {lost:?}"
        );
        let restarted = events.iter().find_map(|e| match e {
            PoolEvent::WorkerRestarted {
                incarnation: 2,
                reason,
                ..
            } => Some(reason.clone()),
            _ => None,
        });
        assert_eq!(
            restarted,
            Some(Some("panic".to_owned())),
            "the restart says why the incarnation before it ended"
        );
        // The replacement took the queued work at once, in order, before the
        // lost attempts came back from their 1 s retry delay.
        assert_eq!(h.log.lock().unwrap()[..6], [1, 2, 10, 11, 12, 13]);
        // The crashing task itself lost its first attempt too, and then ran.
        assert_eq!(crash.await, Ok(99));
        let metrics = h.pool.metrics().await.unwrap();
        assert!(
            metrics
                .performance
                .restarts_by_reason
                .get("panic")
                .copied()
                .unwrap_or(0)
                >= 1
        );
        let report = h.pool.shutdown_gracefully(Duration::from_secs(5)).await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.lost(), 0);
    });
}

#[test]
fn a_stuck_task_gets_its_worker_restarted_and_is_never_lost() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            liveness: Some(candado::LivenessConfig {
                progress_timeout: Some(Duration::from_secs(30)),
                ..Default::default()
            }),
            task_timeout: Duration::from_secs(3600),
            retry: RetryConfig {
                max_retries: 0,
                ..config(1).retry
            },
            ..config(1)
        })
        .await;
        let started = tokio::time::Instant::now();
        let failure = h.pool.submit(Job::Hang).unwrap().await.unwrap_err();
        // Detected at 30 s without progress; the worker is restarted.
        assert!(
            started.elapsed() >= Duration::from_secs(30)
                && started.elapsed() < Duration::from_secs(40)
        );
        let TaskFailure::DeadLettered { attempts, .. } = failure else {
            panic!()
        };
        assert!(
            matches!(attempts[0].error, AttemptError::WorkerLost(_)),
            "{attempts:?}"
        );
        let events = drain(&mut h.events);
        assert!(events.iter().any(
            |e| matches!(e, PoolEvent::ZombieDetected { reason, .. } if reason.starts_with("stuck"))
        ));
        // The replacement works.
        assert_eq!(h.pool.submit(work(10, 5)).unwrap().await, Ok(5));
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(m.performance.restarts_by_reason.get("liveness"), Some(&1));
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn every_stuck_task_in_a_row_gets_its_worker_restarted() {
    run_paused(|| async {
        let h = start(PoolConfig {
            liveness: Some(candado::LivenessConfig {
                progress_timeout: Some(Duration::from_millis(500)),
                ..Default::default()
            }),
            heal_limit: candado::HealLimit {
                max: 100,
                period: Duration::from_secs(60),
                min_gap: Duration::ZERO,
            },
            task_timeout: Duration::from_secs(3600),
            retry: RetryConfig {
                max_retries: 0,
                ..config(1).retry
            },
            ..config(1)
        })
        .await;
        for round in 1..=3u64 {
            let started = tokio::time::Instant::now();
            let failure = h.pool.submit(Job::Hang).unwrap().await.unwrap_err();
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "round {round}: {:?}",
                started.elapsed()
            );
            assert!(matches!(failure, TaskFailure::DeadLettered { .. }));
            assert_eq!(h.pool.submit(work(10, round)).unwrap().await, Ok(round));
        }
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(m.performance.restarts_by_reason.get("liveness"), Some(&3));
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_worker_busy_with_task_after_task_is_never_taken_for_stuck() {
    // Each task takes 300 ms, under the 500 ms progress timeout, and the
    // next begins as the last ends: at every tick the worker is in a fresh
    // unit of work, and every other tick carries a heartbeat too.
    run_paused(|| async {
        let mut h = start(PoolConfig {
            liveness: Some(candado::LivenessConfig {
                progress_timeout: Some(Duration::from_millis(500)),
                ..Default::default()
            }),
            ..config(1)
        })
        .await;
        for tag in 0..40u64 {
            assert_eq!(h.pool.submit(work(300, tag)).unwrap().await, Ok(tag));
        }
        let events = drain(&mut h.events);
        let zombies: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, PoolEvent::ZombieDetected { .. }))
            .collect();
        assert!(zombies.is_empty(), "{zombies:?}");
        let m = h.pool.metrics().await.unwrap();
        assert!(m.performance.restarts_by_reason.is_empty(), "{m:?}");
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_task_on_a_stuck_worker_fails_over_at_once_even_when_its_restart_is_deferred() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            liveness: Some(candado::LivenessConfig {
                progress_timeout: Some(Duration::from_millis(500)),
                ..Default::default()
            }),
            task_timeout: Duration::from_secs(3600),
            ..config(2)
        })
        .await;
        // The first stuck worker is restarted; the second restart falls in
        // the heal limit's 5-minute gap and is deferred. Either way the
        // task fails over to the other worker at once (one attempt spent,
        // then its 1 s retry), without waiting for the restart.
        for round in 1..=2 {
            let started = tokio::time::Instant::now();
            assert_eq!(h.pool.submit(Job::HangOnce).unwrap().await, Ok(7));
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "round {round}: {:?}",
                started.elapsed()
            );
        }
        let events = drain(&mut h.events);
        let lost = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    PoolEvent::TaskFailed {
                        error: AttemptError::WorkerLost(_),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(lost, 2, "one attempt spent per stuck task");
        // Healthy work keeps flowing to the worker in service.
        assert_eq!(h.pool.submit(work(10, 3)).unwrap().await, Ok(3));
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}
