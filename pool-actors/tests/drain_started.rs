//! An event when a graceful drain begins (issue 21, item 11):
//! `PoolEvent::DrainStarted`, once, before `ShutDown`.

mod common;

use std::time::Duration;

use candado_pool::{PoolEvent, UnfinishedAction};
use common::*;

#[test]
fn a_graceful_shutdown_announces_its_drain_once_with_what_it_holds() {
    run_paused(|| async {
        let mut h = start(config(1)).await;
        let _running = h.pool.submit(work(500, 1)).unwrap();
        let _queued = h.pool.submit(work(500, 2)).unwrap();
        settle().await;
        drain(&mut h.events);
        let (pool_a, pool_b) = (h.pool.clone(), h.pool.clone());
        // Two callers at once: one drain, one announcement.
        let (a, b) = tokio::join!(
            pool_a.shutdown_gracefully(Duration::from_secs(10)),
            pool_b.shutdown_gracefully(Duration::from_secs(20)),
        );
        assert_eq!(a, b);
        assert!(a.balanced(), "{a:?}");
        let events = drain(&mut h.events);
        let drains: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, PoolEvent::DrainStarted { .. }))
            .collect();
        assert_eq!(
            drains,
            [&PoolEvent::DrainStarted {
                deadline_ms: 10_000,
                queued: 1,
                in_flight: 1,
            }]
        );
        let at = |f: fn(&PoolEvent) -> bool| events.iter().position(f).unwrap();
        assert!(
            at(|e| matches!(e, PoolEvent::DrainStarted { .. }))
                < at(|e| matches!(e, PoolEvent::ShutDown(_)))
        );
        // It serialises with the other events.
        let json = serde_json::to_string(drains[0]).unwrap();
        assert!(json.contains("\"event\":\"drain_started\""), "{json}");
    });
}

#[test]
fn an_immediate_shutdown_drains_nothing_and_says_nothing_of_a_drain() {
    run_paused(|| async {
        let mut h = start(config(1)).await;
        let _running = h.pool.submit(work(500, 1)).unwrap();
        settle().await;
        h.pool.shutdown_now(UnfinishedAction::Return).await;
        // A graceful call after the end joins the finished shutdown.
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        let events = drain(&mut h.events);
        assert!(!events
            .iter()
            .any(|e| matches!(e, PoolEvent::DrainStarted { .. })));
    });
}

#[test]
fn the_longest_deadline_is_reported_as_none_not_an_overflow() {
    run_paused(|| async {
        let mut h = start(config(1)).await;
        h.pool.shutdown_gracefully(Duration::MAX).await;
        let events = drain(&mut h.events);
        assert!(events.contains(&PoolEvent::DrainStarted {
            deadline_ms: u64::MAX,
            queued: 0,
            in_flight: 0,
        }));
    });
}
