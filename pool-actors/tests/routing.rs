//! Priority order, promotion, dispatch strategies, skipping sick workers, backpressure.

mod common;

use std::time::Duration;

use candado_pool::{Dispatch, PoolConfig, PoolEvent, SubmitError, TaskOptions};
use common::*;

#[test]
fn lower_priority_numbers_run_first_and_equal_ones_in_submission_order() {
    run_paused(|| async {
        let mut h = start(config(1)).await;
        // Occupies the only worker while the others queue up.
        let blocker = h.pool.submit(work(1_000, 0)).unwrap();
        settle().await;
        let mut handles = Vec::new();
        for (tag, priority) in [(1, 10), (2, 0), (3, 10), (4, 5), (5, 0), (6, 200)] {
            handles.push(
                h.pool
                    .submit_with(work(10, tag), TaskOptions::priority(priority))
                    .unwrap(),
            );
        }
        blocker.await.unwrap();
        for handle in handles {
            handle.await.unwrap();
        }
        assert_eq!(*h.log.lock().unwrap(), [0, 2, 5, 4, 1, 3, 6]);
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced());
        drain(&mut h.events);
    });
}

#[test]
fn a_task_that_waits_long_enough_climbs_past_newer_work() {
    run_paused(|| async {
        let h = start(PoolConfig {
            promote_after: Some(Duration::from_secs(10)),
            ..config(1)
        })
        .await;
        let blocker = h.pool.submit(work(60_000, 0)).unwrap();
        settle().await;
        // Priority 2 at t=0: promoted to 1 at 10 s and to 0 at 20 s.
        let old = h
            .pool
            .submit_with(work(10, 1), TaskOptions::priority(2))
            .unwrap();
        advance(Duration::from_secs(25)).await;
        // A newer priority-0 task now comes after the promoted one (FIFO at 0).
        let new = h
            .pool
            .submit_with(work(10, 2), TaskOptions::priority(0))
            .unwrap();
        // Without promotion the fresh priority-1 task would beat it.
        let middle = h
            .pool
            .submit_with(work(10, 3), TaskOptions::priority(1))
            .unwrap();
        blocker.await.unwrap();
        for t in [old, new, middle] {
            t.await.unwrap();
        }
        assert_eq!(*h.log.lock().unwrap(), [0, 1, 2, 3]);
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

fn pinned(n: usize) -> Vec<String> {
    if n == 0 {
        vec!["slow".into()]
    } else {
        Vec::new()
    }
}

/// Pins four long tasks to worker-0, then submits four short ones: returns
/// how many short ones each worker ran.
async fn distribution(dispatch: Dispatch) -> (usize, usize) {
    let mut h = start_with(
        PoolConfig {
            concurrency: 8,
            dispatch,
            ..config(2)
        },
        Some(pinned),
    )
    .await;
    for tag in 100..104 {
        h.pool
            .submit_with(
                work(5_000, tag),
                TaskOptions::default().with_capability("slow"),
            )
            .unwrap();
    }
    settle().await;
    drain(&mut h.events);
    let shorts: Vec<_> = (0..4)
        .map(|tag| h.pool.submit(work(10, tag)).unwrap())
        .collect();
    let ids: Vec<_> = shorts.iter().map(|s| s.id()).collect();
    for s in shorts {
        s.await.unwrap();
    }
    let done = completions(&drain(&mut h.events));
    let on = |w: &str| {
        done.iter()
            .filter(|(id, worker)| ids.contains(id) && worker == w)
            .count()
    };
    let counts = (on("worker-0"), on("worker-1"));
    h.pool.shutdown_gracefully(Duration::from_secs(10)).await;
    counts
}

#[test]
fn least_loaded_sends_work_to_the_idle_worker_and_round_robin_alternates() {
    run_paused(|| async {
        // worker-0 holds 4 long tasks, worker-1 none: all four short ones
        // go to worker-1 (0, 1, 2, 3 in flight, all below 4).
        assert_eq!(distribution(Dispatch::LeastLoaded).await, (0, 4));
    });
    run_paused(|| async {
        // Round-robin alternates regardless of load.
        assert_eq!(distribution(Dispatch::RoundRobin).await, (2, 2));
    });
}

#[test]
fn round_robin_spreads_evenly() {
    run_paused(|| async {
        let mut h = start(config(4)).await;
        let tasks: Vec<_> = (0..40)
            .map(|tag| h.pool.submit(work(100, tag)).unwrap())
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let done = completions(&drain(&mut h.events));
        for w in 0..4 {
            let n = done
                .iter()
                .filter(|(_, worker)| *worker == format!("worker-{w}"))
                .count();
            assert_eq!(n, 10, "worker-{w}");
        }
        let metrics = h.pool.metrics().await.unwrap();
        assert_eq!(
            metrics.per_worker.iter().map(|w| w.completed).sum::<u64>(),
            40
        );
        assert!(
            metrics.performance.worker_reuse_rate > 0.89,
            "{}",
            metrics.performance.worker_reuse_rate
        );
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_worker_whose_breaker_opened_gets_no_work_until_it_half_opens() {
    run_paused(|| async {
        let mut h = start_with(
            PoolConfig {
                retry: candado_pool::RetryConfig {
                    max_retries: 0,
                    ..config(2).retry
                },
                ..config(2)
            },
            Some(|n| {
                if n == 0 {
                    vec!["flaky".into()]
                } else {
                    Vec::new()
                }
            }),
        )
        .await;
        // Five failures on worker-0 open its breaker (5 s cooldown).
        for _ in 0..5 {
            let _ = h
                .pool
                .submit_with(
                    Job::BreakWorker,
                    TaskOptions::default().with_capability("flaky"),
                )
                .unwrap()
                .await;
        }
        settle().await;
        assert_eq!(
            h.pool.breakers().unwrap().child_state("worker-0"),
            Some(candado::BreakerState::Open)
        );
        drain(&mut h.events);
        let tasks: Vec<_> = (0..10)
            .map(|tag| h.pool.submit(work(10, tag)).unwrap())
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let done = completions(&drain(&mut h.events));
        assert!(done.iter().all(|(_, w)| w == "worker-1"), "{done:?}");
        // Routing reacted at once; the health verdict follows on the
        // supervisor's next tick (1 s).
        advance(Duration::from_secs(1)).await;
        let metrics = h.pool.metrics().await.unwrap();
        assert!(
            metrics.per_worker[0].isolated,
            "worker-0 is isolated while its breaker is open"
        );
        // After the cooldown it takes (probe) work again.
        advance(Duration::from_secs(6)).await;
        let tasks: Vec<_> = (0..4)
            .map(|tag| h.pool.submit(work(10, tag)).unwrap())
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let done = completions(&drain(&mut h.events));
        assert!(done.iter().any(|(_, w)| w == "worker-0"), "{done:?}");
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_full_queue_refuses_at_once_and_hands_the_task_back() {
    run_paused(|| async {
        let h = start(PoolConfig {
            queue_bound: 2,
            ..config(1)
        })
        .await;
        let running = h.pool.submit(work(1_000, 0)).unwrap();
        settle().await;
        let a = h.pool.submit(work(10, 1)).unwrap();
        let b = h.pool.submit(work(10, 2)).unwrap();
        match h.pool.submit(work(10, 3)) {
            Err(SubmitError::QueueFull {
                task: Job::Work { tag: 3, .. },
                bound: 2,
            }) => {}
            other => panic!("{other:?}"),
        }
        // A batch that does not fit is refused whole.
        assert!(matches!(
            h.pool
                .submit_batch(vec![(work(1, 4), TaskOptions::default())]),
            Err(SubmitError::QueueFull { .. })
        ));
        // Unknown capabilities are refused too.
        assert!(matches!(
            h.pool
                .submit_with(work(1, 5), TaskOptions::default().with_capability("gpu")),
            Err(SubmitError::UnknownCapability { .. })
        ));
        for t in [running, a, b] {
            t.await.unwrap();
        }
        // Room again.
        h.pool.submit(work(10, 6)).unwrap().await.unwrap();
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert_eq!((report.submitted, report.completed), (4, 4));
        assert!(matches!(
            h.pool.submit(work(1, 7)),
            Err(SubmitError::ShuttingDown { .. })
        ));
    });
}

#[test]
fn events_name_the_worker_and_the_attempt() {
    run_paused(|| async {
        let mut h = start(config(1)).await;
        h.pool.submit(work(5, 1)).unwrap().await.unwrap();
        let events = drain(&mut h.events);
        assert!(events.iter().any(|e| matches!(e,
            PoolEvent::TaskCompleted { worker, attempt: 1, latency_ms: 5, .. } if worker == "worker-0")));
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn tasks_for_a_dependency_whose_breaker_is_open_wait_until_it_half_opens() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            retry: candado_pool::RetryConfig {
                max_retries: 0,
                ..config(2).retry
            },
            ..config(2)
        })
        .await;
        let payments = || TaskOptions::default().with_dependency("payments");
        // Five failures through `payments` open its breaker (5 s cooldown).
        for _ in 0..5 {
            let _ = h.pool.submit_with(Job::Fail, payments()).unwrap().await;
        }
        let opened = tokio::time::Instant::now();
        let breakers = h.pool.breakers().unwrap().clone();
        assert_eq!(
            breakers.dependency_state("payments"),
            Some(candado::BreakerState::Open)
        );
        drain(&mut h.events);
        // Work for the dependency waits; other work flows.
        let waiting: Vec<_> = (0..3)
            .map(|tag| h.pool.submit_with(work(10, tag), payments()).unwrap())
            .collect();
        let other = h.pool.submit(work(10, 99)).unwrap();
        assert_eq!(other.await, Ok(99));
        assert_eq!(h.pool.metrics().await.unwrap().tasks.queued, 3);
        // At half-open, probes go through; two successes close it and the rest follow.
        for (t, tag) in waiting.into_iter().zip(0..) {
            assert_eq!(t.await, Ok(tag));
        }
        assert!(
            opened.elapsed() >= Duration::from_secs(5),
            "nothing ran before the cooldown ended"
        );
        assert_eq!(
            breakers.dependency_state("payments"),
            Some(candado::BreakerState::Closed)
        );
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced());
    });
}

#[test]
fn a_task_parked_for_its_dependency_gives_back_the_probe_it_took() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            retry: candado_pool::RetryConfig {
                max_retries: 0,
                ..config(1).retry
            },
            // Its only worker may leave service.
            breaker: Some(candado_pool::BreakerSettings {
                max_ejected_percent: 100,
                ..Default::default()
            }),
            ..config(1)
        })
        .await;
        let payments = || TaskOptions::default().with_dependency("payments");
        let breakers = h.pool.breakers().unwrap().clone();
        // `payments` opens, half-opens at 5 s, fails its probe and reopens for 10 s.
        for _ in 0..5 {
            let _ = h.pool.submit_with(Job::Fail, payments()).unwrap().await;
        }
        advance(Duration::from_secs(5)).await;
        let _ = h.pool.submit_with(Job::Fail, payments()).unwrap().await;
        // Then the worker's own failures open its breaker (5 s cooldown).
        for _ in 0..5 {
            let _ = h.pool.submit(Job::BreakWorker).unwrap().await;
        }
        advance(Duration::from_secs(7)).await;
        assert_eq!(
            breakers.child_state("worker-0"),
            Some(candado::BreakerState::HalfOpen)
        );
        assert_eq!(
            breakers.dependency_state("payments"),
            Some(candado::BreakerState::Open)
        );
        drain(&mut h.events);
        // Work for `payments` is picked for the half-open worker, then parked:
        // the worker's probes must not go with it.
        let parked: Vec<_> = (0..2)
            .map(|tag| h.pool.submit_with(work(10, tag), payments()).unwrap())
            .collect();
        settle().await;
        let asked = tokio::time::Instant::now();
        assert_eq!(h.pool.submit(work(10, 9)).unwrap().await, Ok(9));
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "the worker's probe was free at once, not after {:?}",
            asked.elapsed()
        );
        for (t, tag) in parked.into_iter().zip(0..) {
            assert_eq!(t.await, Ok(tag));
        }
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced());
    });
}

#[test]
fn a_probe_lost_with_its_worker_is_freed_by_the_clock_and_work_resumes() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            retry: candado_pool::RetryConfig {
                max_retries: 0,
                ..config(1).retry
            },
            breaker: Some(candado_pool::BreakerSettings {
                config: candado::BreakerConfig {
                    half_open_probes: 1,
                    success_threshold: 1,
                    ..Default::default()
                },
                // Its only worker may leave service.
                max_ejected_percent: 100,
            }),
            ..config(1)
        })
        .await;
        let breakers = h.pool.breakers().unwrap().clone();
        for _ in 0..5 {
            let _ = h.pool.submit(Job::BreakWorker).unwrap().await;
        }
        advance(Duration::from_secs(6)).await;
        assert_eq!(
            breakers.child_state("worker-0"),
            Some(candado::BreakerState::HalfOpen)
        );
        // The only probe dies with its worker and never reports an outcome.
        let _ = h.pool.submit(Job::CrashWorker).unwrap().await;
        let lost = tokio::time::Instant::now();
        drain(&mut h.events);
        // Once the clock frees the probe (one 5 s cooldown), the router must
        // notice by itself: no message announces it.
        let next = h.pool.submit(work(10, 1)).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(60), next).await;
        assert_eq!(done, Ok(Ok(1)), "work never resumed");
        assert!(
            lost.elapsed() <= Duration::from_secs(7),
            "{:?}",
            lost.elapsed()
        );
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced());
    });
}
