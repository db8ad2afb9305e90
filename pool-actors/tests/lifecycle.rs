//! Scaling under load, both shutdown modes with exact accounting, batches,
//! fire-and-forget, metrics.

mod common;

use std::time::Duration;

use candado_pool::{PoolConfig, PoolError, PoolEvent, TaskFailure, TaskOptions, UnfinishedAction};
use common::*;

#[test]
fn scaling_up_and_down_under_load_loses_nothing() {
    run_paused(|| async {
        let mut h = start(config(2)).await;
        let tasks: Vec<_> = (0..40)
            .map(|tag| h.pool.submit(work(1_000, tag)).unwrap())
            .collect();
        settle().await;
        assert_eq!(h.pool.scale_up(2).await.unwrap(), 4);
        settle().await;
        let busy = h.pool.metrics().await.unwrap().workers.busy;
        assert_eq!(busy, 4, "new workers take queued work at once");
        advance(Duration::from_millis(2_500)).await;
        // Scale down while work is running and queued: the leaving workers drain first.
        assert_eq!(h.pool.scale_down(3).await.unwrap(), 1);
        assert!(matches!(
            h.pool.scale_down(1).await,
            Err(PoolError::ScaleOutOfBounds { .. })
        ));
        for (t, tag) in tasks.into_iter().zip(0..) {
            assert_eq!(t.await, Ok(tag));
        }
        let ids: Vec<_> = h
            .pool
            .supervisor()
            .children()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["worker-0"]);
        let events = drain(&mut h.events);
        assert!(events.contains(&PoolEvent::Scaled { from: 2, to: 4 }));
        assert!(events.contains(&PoolEvent::Scaled { from: 4, to: 1 }));
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, PoolEvent::TaskFailed { .. })),
            "draining loses no attempt"
        );
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert_eq!((report.submitted, report.completed), (40, 40));
    });
}

#[test]
fn autoscaling_follows_queue_depth() {
    run_paused(|| async {
        let h = start(PoolConfig {
            min_size: 1,
            max_size: 4,
            autoscale: Some(candado_pool::AutoscaleSettings {
                check_every: Duration::from_secs(1),
                queue_per_worker: 2,
                idle_checks: 3,
            }),
            ..config(1)
        })
        .await;
        let tasks: Vec<_> = (0..30)
            .map(|tag| h.pool.submit(work(2_000, tag)).unwrap())
            .collect();
        advance(Duration::from_millis(3_500)).await;
        assert_eq!(
            h.pool.size(),
            4,
            "one more worker per check while the queue is deep"
        );
        for t in tasks {
            t.await.unwrap();
        }
        advance(Duration::from_secs(20)).await;
        assert_eq!(
            h.pool.size(),
            1,
            "idle workers are removed down to min_size"
        );
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced());
    });
}

#[test]
fn graceful_shutdown_finishes_queued_work_within_the_deadline() {
    run_paused(|| async {
        let h = start(config(2)).await;
        let tasks: Vec<_> = (0..6)
            .map(|tag| h.pool.submit(work(1_000, tag)).unwrap())
            .collect();
        settle().await;
        let report = h.pool.shutdown_gracefully(Duration::from_secs(10)).await;
        assert_eq!(
            (report.submitted, report.completed, report.returned),
            (6, 6, 0)
        );
        assert!(report.unfinished.is_empty());
        for t in tasks {
            t.await.unwrap();
        }
        // The same report again, and the workers are gone.
        assert_eq!(
            h.pool.shutdown_gracefully(Duration::from_secs(1)).await,
            report
        );
        assert!(!h.pool.supervisor().is_running());
    });
}

#[test]
fn graceful_shutdown_returns_what_did_not_finish_by_the_deadline() {
    run_paused(|| async {
        let h = start(config(1)).await;
        let tasks: Vec<_> = (0..5)
            .map(|tag| h.pool.submit(work(1_000, tag)).unwrap())
            .collect();
        let retrying = h.pool.submit(Job::Fail).unwrap();
        settle().await;
        let report = h
            .pool
            .shutdown_gracefully(Duration::from_millis(2_500))
            .await;
        // Two finished (0 and 1); the one running and the rest come back.
        assert_eq!(
            (report.completed, report.returned, report.dead_lettered),
            (2, 4, 0)
        );
        assert!(report.balanced(), "{report:?}");
        let mut returned = 0;
        for t in tasks {
            match t.await {
                Ok(_) => {}
                Err(TaskFailure::Returned {
                    task: Job::Work { .. },
                    ..
                }) => returned += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(returned, 3);
        assert!(matches!(
            retrying.await,
            Err(TaskFailure::Returned {
                task: Job::Fail,
                ..
            })
        ));
    });
}

#[test]
fn immediate_shutdown_returns_or_dead_letters_everything_unfinished() {
    for action in [UnfinishedAction::Return, UnfinishedAction::DeadLetter] {
        run_paused(|| async {
            let h = start(PoolConfig {
                concurrency: 2,
                ..config(2)
            })
            .await;
            let done = h.pool.submit(work(10, 0)).unwrap();
            advance(Duration::from_millis(100)).await;
            let tasks: Vec<_> = (1..=10)
                .map(|tag| h.pool.submit(work(60_000, tag)).unwrap())
                .collect();
            let fire_and_forget = h
                .pool
                .send(work(60_000, 11), TaskOptions::default())
                .unwrap();
            settle().await;
            let report = h.pool.shutdown_now(action).await;
            assert_eq!(report.submitted, 12);
            assert_eq!(report.completed, 1);
            assert_eq!(report.unfinished.len(), 11);
            assert!(report.unfinished.contains(&fire_and_forget));
            assert!(report.balanced(), "{report:?}");
            assert_eq!(done.await, Ok(0));
            for t in tasks {
                match (action, t.await) {
                    (UnfinishedAction::Return, Err(TaskFailure::Returned { .. })) => {}
                    (UnfinishedAction::DeadLetter, Err(TaskFailure::DeadLettered { .. })) => {}
                    (_, other) => panic!("{action:?}: {other:?}"),
                }
            }
            match action {
                UnfinishedAction::Return => assert_eq!(report.returned, 11),
                UnfinishedAction::DeadLetter => {
                    assert_eq!(report.dead_lettered, 11);
                    let dead = h.pool.dead_letters().await.unwrap();
                    assert_eq!(dead.len(), 11);
                    assert!(dead.iter().all(|d| d.reason == "shutdown"));
                    // The four that were running carry their cancelled attempt.
                    assert_eq!(dead.iter().filter(|d| d.attempts == 1).count(), 4);
                }
            }
        });
    }
}

#[test]
fn batches_are_one_submission_each_and_metrics_add_up() {
    run_paused(|| async {
        let h = start(config(3)).await;
        let batch: Vec<_> = (0..9)
            .map(|tag| (work(100, tag), TaskOptions::priority(1)))
            .collect();
        let handles = h.pool.submit_batch(batch).unwrap();
        assert_eq!(handles.len(), 9);
        for (handle, tag) in handles.into_iter().zip(0..) {
            assert_eq!(handle.await, Ok(tag));
        }
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(
            (
                m.tasks.submitted,
                m.tasks.completed,
                m.tasks.queued,
                m.tasks.in_flight
            ),
            (9, 9, 0, 0)
        );
        assert_eq!(
            (m.workers.total, m.workers.ready, m.workers.busy),
            (3, 3, 0)
        );
        assert_eq!(m.pool.size, 3);
        // Three rounds of 100 ms: the last three waited 200 ms in the queue.
        assert_eq!(m.performance.latency_ms.max, 300.0);
        assert_eq!(m.performance.queue_wait_ms.max, 200.0);
        // p50 of 100, 100, 100, 200, 200, 200, 300, 300, 300 ms (hdr: within 0.1%).
        let p50 = m.performance.latency_ms.p50;
        assert!((200.0..=200.2).contains(&p50), "{p50}");
        assert_eq!(m.performance.latency_ms.count, 9);
        assert_eq!(m.performance.latency_lifetime_ms, m.performance.latency_ms);
        assert_eq!(m.performance.queue_wait_lifetime_ms.count, 9);
        // A minute later the recent window has forgotten them; all-time has not.
        tokio::time::advance(Duration::from_secs(61)).await;
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(m.performance.latency_ms.count, 0);
        assert_eq!(m.performance.queue_wait_ms.count, 0);
        assert_eq!(m.performance.latency_lifetime_ms.max, 300.0);
        assert_eq!(m.health.status, candado::HealthStatus::Healthy);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["tasks"]["completed"], 9);
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}
