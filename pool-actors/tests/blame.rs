//! Whose fault a failure is: a task's own failures never take workers out
//! of service, and breakers never take more than their share of the pool.

mod common;

use std::time::Duration;

use candado_pool::{PoolConfig, RetryConfig, TaskFailure, TaskOptions};
use common::*;
use tokio::time::Instant;

#[test]
fn a_few_poison_tasks_do_not_take_the_pool_out_of_service() {
    // The review's case: 20 always-failing tasks among 200 healthy 10 ms
    // tasks, default config, 4 workers. Healthy work needs 0.5 s on 4
    // workers; the poison tasks retry and are dead-lettered on their own.
    run_paused(|| async {
        let h = start(PoolConfig {
            name: "pool".into(),
            size: 4,
            ..PoolConfig::default()
        })
        .await;
        let started = Instant::now();
        let mut healthy = Vec::new();
        let mut poison = Vec::new();
        // The poison first: each worker's first five attempts fail.
        for _ in 0..20 {
            poison.push(h.pool.submit(Job::Fail).unwrap());
        }
        for tag in 0..200u64 {
            healthy.push(h.pool.submit(work(10, tag)).unwrap());
        }
        for task in healthy {
            task.await.unwrap();
        }
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(1),
            "healthy work took {waited:?}"
        );
        let breakers = h.pool.breakers().expect("the default config has breakers");
        assert_eq!(breakers.opened_total(), 0, "no worker breaker opened");
        for task in poison {
            let Err(TaskFailure::DeadLettered { attempts, .. }) = task.await else {
                panic!("a poison task ends in the dead-letter store");
            };
            assert_eq!(attempts.len(), 4, "every retry was spent on the task");
        }
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn a_failing_dependency_opens_its_breaker_not_the_workers() {
    run_paused(|| async {
        let h = start(PoolConfig {
            retry: RetryConfig {
                max_retries: 0,
                jitter: 0.0,
                ..Default::default()
            },
            ..config(2)
        })
        .await;
        let through_db = TaskOptions::default().with_dependency("db");
        for _ in 0..10 {
            let _ = h
                .pool
                .submit_with(Job::Fail, through_db.clone())
                .unwrap()
                .await;
        }
        let breakers = h.pool.breakers().unwrap();
        assert!(
            !breakers.allow_dependency("db"),
            "the dependency's breaker opened"
        );
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(m.workers.ejected, 0, "{m:?}");
        // Work that does not call the dependency runs at once.
        assert_eq!(h.pool.submit(work(10, 1)).unwrap().await, Ok(1));
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn failures_blamed_on_the_worker_open_its_breaker_within_the_ejection_limit() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            retry: RetryConfig {
                max_retries: 0,
                jitter: 0.0,
                ..Default::default()
            },
            ..config(4)
        })
        .await;
        // Every worker reports itself broken, again and again: each one's
        // breaker opens, but at most half the pool (the default limit)
        // leaves service.
        let broken: Vec<_> = (0..40)
            .map(|_| h.pool.submit(Job::BreakWorker).unwrap())
            .collect();
        for task in broken {
            assert!(task.await.is_err());
        }
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(m.workers.ejected, 2, "{:?}", m.workers);
        assert!(h.pool.breakers().unwrap().opened_total() >= 3);
        // Work keeps flowing, to the workers past the limit.
        let started = Instant::now();
        let work: Vec<_> = (0..20)
            .map(|tag| h.pool.submit(work(10, tag)).unwrap())
            .collect();
        for (task, tag) in work.into_iter().zip(0..) {
            assert_eq!(task.await, Ok(tag));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let events = drain(&mut h.events);
        let workers: std::collections::BTreeSet<_> = completions(&events)
            .into_iter()
            .map(|(_, worker)| worker)
            .collect();
        assert_eq!(workers.len(), 2, "{workers:?}");
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn with_the_limit_at_zero_no_breaker_takes_a_worker_out() {
    run_paused(|| async {
        let h = start(PoolConfig {
            retry: RetryConfig {
                max_retries: 0,
                jitter: 0.0,
                ..Default::default()
            },
            breaker: Some(candado_pool::BreakerSettings {
                max_ejected_percent: 0,
                ..Default::default()
            }),
            ..config(1)
        })
        .await;
        for _ in 0..10 {
            let _ = h.pool.submit(Job::BreakWorker).unwrap().await;
        }
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(m.workers.ejected, 0);
        assert_eq!(h.pool.submit(work(10, 1)).unwrap().await, Ok(1));
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}
