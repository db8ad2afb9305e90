//! A rate limit on task starts (issue 21, item 11): a token bucket, on
//! virtual time.

mod common;

use std::time::Duration;

use candado_pool::{ConfigError, PoolConfig, RateLimitSettings, TaskOptions};
use common::*;

fn limited(per_second: f64, burst: u32, size: usize) -> PoolConfig {
    PoolConfig {
        rate_limit: Some(RateLimitSettings { per_second, burst }),
        ..config(size)
    }
}

fn started(h: &Harness) -> usize {
    h.log.lock().unwrap().len()
}

#[test]
fn starts_follow_the_burst_then_the_rate_with_idle_workers_waiting() {
    run_paused(|| async {
        let h = start(limited(10.0, 3, 4)).await;
        let handles: Vec<_> = (0..8)
            .map(|tag| h.pool.submit(work(0, tag)).unwrap())
            .collect();
        settle().await;
        assert_eq!(started(&h), 3, "the burst");
        advance(Duration::from_millis(99)).await;
        assert_eq!(started(&h), 3);
        advance(Duration::from_millis(2)).await;
        assert_eq!(started(&h), 4, "one more token after 100 ms");
        advance(Duration::from_millis(400)).await;
        assert_eq!(started(&h), 8);
        for handle in handles {
            handle.await.unwrap();
        }
        // In order: the limit holds tasks in the queue, by priority.
        assert_eq!(*h.log.lock().unwrap(), (0..8).collect::<Vec<_>>());
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn retries_spend_tokens_too() {
    run_paused(|| async {
        let mut cfg = limited(1.0, 1, 1);
        cfg.retry.base = Duration::from_millis(10);
        cfg.retry.cap = Duration::from_millis(10);
        let h = start(cfg).await;
        let t0 = tokio::time::Instant::now();
        let handle = h.pool.submit(Job::FailTimes(2)).unwrap();
        let other = h.pool.submit(work(0, 1)).unwrap();
        // Attempt 1 at 0 s; its retries (due after 10 ms, ahead of the
        // later task in the queue) at 1 s and 2 s; the other task at 3 s:
        // one start per second.
        assert_eq!(handle.await, Ok(0));
        assert_eq!(t0.elapsed().as_secs(), 2);
        assert_eq!(started(&h), 0);
        other.await.unwrap();
        assert_eq!(t0.elapsed().as_secs(), 3);
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(m.tasks.completed, 2);
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_limited_pool_still_shuts_down_on_time_and_balances() {
    run_paused(|| async {
        let h = start(limited(1.0, 1, 2)).await;
        let handles: Vec<_> = (0..10)
            .map(|tag| {
                h.pool
                    .submit_with(work(0, tag), TaskOptions::default())
                    .unwrap()
            })
            .collect();
        let report = h
            .pool
            .shutdown_gracefully(Duration::from_millis(3_500))
            .await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.completed, 4, "{report:?}");
        assert_eq!(report.returned, 6);
        drop(handles);
    });
}

#[test]
fn bad_rates_are_typed_errors_never_a_panic() {
    let cases = [
        ("[rate_limit]\nper_second = 0", "rate_limit.per_second"),
        ("[rate_limit]\nper_second = -1.0", "rate_limit.per_second"),
        ("[rate_limit]\nper_second = nan", "rate_limit.per_second"),
        ("[rate_limit]\nper_second = inf", "rate_limit.per_second"),
        ("[rate_limit]\nper_second = 1e300", "rate_limit.per_second"),
        ("[rate_limit]\nburst = 0", "rate_limit.burst"),
        ("[rate_limit]\nburst = 4294967295", "rate_limit.burst"),
    ];
    for (text, field) in cases {
        match PoolConfig::from_toml(text) {
            Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    let on = PoolConfig::from_toml("rate_limit = true").unwrap();
    assert_eq!(on.rate_limit, Some(RateLimitSettings::default()));
    let off = PoolConfig::from_toml("rate_limit = \"off\"").unwrap();
    assert_eq!(off.rate_limit, None);
    let slow = PoolConfig::from_toml("[rate_limit]\nper_second = 1e-300").unwrap();
    assert!(slow.rate_limit.is_some());
}

#[test]
fn the_slowest_rate_starts_its_burst_and_then_waits_without_a_panic() {
    run_paused(|| async {
        let h = start(limited(1e-300, 1, 1)).await;
        let first = h.pool.submit(work(0, 1)).unwrap();
        let _second = h.pool.submit(work(0, 2)).unwrap();
        assert_eq!(first.await, Ok(1));
        advance(Duration::from_secs(3_600)).await;
        assert_eq!(started(&h), 1);
        let report = h.pool.shutdown_gracefully(Duration::from_millis(10)).await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.returned, 1);
    });
}
