//! Keyed (sticky) routing (issue 21, item 11): tasks with the same key go
//! to the same worker while it lives, and the key is mapped again when
//! that worker restarts. As ractor's factory routes jobs with one key to
//! one worker (`KeyPersistentRouting`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use candado_pool::{PoolConfig, PoolEvent, TaskOptions};
use common::*;

fn keyed(key: &str) -> TaskOptions {
    TaskOptions::default().with_key(key)
}

/// Worker of each completed task id.
fn workers_of(events: &[PoolEvent]) -> BTreeMap<u64, String> {
    completions(events).into_iter().collect()
}

#[test]
fn tasks_with_one_key_run_on_one_worker_while_others_spread() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            batch: 1,
            ..config(3)
        })
        .await;
        let mut by_key: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        let mut handles = Vec::new();
        for round in 0..10 {
            for key in ["alice", "bob", "carol", "dave"] {
                let handle = h.pool.submit_with(work(5, round), keyed(key)).unwrap();
                by_key.entry(key).or_default().push(handle.id());
                handles.push(handle);
            }
        }
        let unkeyed: Vec<_> = (0..6).map(|t| h.pool.submit(work(5, t)).unwrap()).collect();
        for handle in handles.into_iter().chain(unkeyed) {
            handle.await.unwrap();
        }
        let ran_on = workers_of(&drain(&mut h.events));
        let mut used = BTreeSet::new();
        for (key, ids) in &by_key {
            let workers: BTreeSet<&String> = ids.iter().map(|id| &ran_on[id]).collect();
            assert_eq!(workers.len(), 1, "{key} ran on {workers:?}");
            used.extend(workers);
        }
        // Four keys over three workers: every worker got some.
        assert_eq!(used.len(), 3, "{used:?}");
        shut_down_balanced(&h.pool).await;
    });
}

#[test]
fn a_key_whose_worker_restarted_is_mapped_again_and_stays_put() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            batch: 1,
            ..config(2)
        })
        .await;
        let first = h.pool.submit_with(work(1, 1), keyed("k")).unwrap();
        let first_id = first.id();
        first.await.unwrap();
        // The key's worker crashes (the crash is retried on its
        // replacement, where it was addressed).
        let crash = h.pool.submit_with(Job::CrashWorker, keyed("k")).unwrap();
        assert_eq!(crash.await, Ok(99));
        let events = drain(&mut h.events);
        let before = workers_of(&events)[&first_id].clone();
        assert!(events.iter().any(|e| matches!(
            e,
            PoolEvent::WorkerRestarted { worker, .. } if *worker == before
        )));
        // Mapped again, then sticky again.
        let later: Vec<_> = (0..6)
            .map(|t| h.pool.submit_with(work(1, t), keyed("k")).unwrap())
            .collect();
        let ids: Vec<u64> = later.iter().map(|h| h.id()).collect();
        for handle in later {
            handle.await.unwrap();
        }
        let ran_on = workers_of(&drain(&mut h.events));
        let after: BTreeSet<&String> = ids.iter().map(|id| &ran_on[id]).collect();
        assert_eq!(after.len(), 1, "{after:?}");
        shut_down_balanced(&h.pool).await;
    });
}

#[test]
fn two_submitters_of_one_key_at_once_reach_one_worker() {
    run_paused(|| async {
        let mut h = start(config(4)).await;
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let (pool, barrier) = (h.pool.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..20)
                        .map(|n| {
                            pool.submit_with(work(1, t * 100 + n), keyed("shared"))
                                .unwrap()
                                .id()
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let ids: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        advance(Duration::from_secs(1)).await;
        let ran_on = workers_of(&drain(&mut h.events));
        let workers: BTreeSet<&String> = ids.iter().map(|id| &ran_on[id]).collect();
        assert_eq!(workers.len(), 1, "{workers:?}");
        let report = shut_down_balanced(&h.pool).await;
        assert_eq!(report.completed, 40);
    });
}

#[test]
fn a_dead_keyed_task_replays_by_its_key_and_a_shutdown_returns_what_waits() {
    run_paused(|| async {
        let h = start(config(2)).await;
        let dead = h
            .pool
            .submit_with(Job::Fail, keyed("k").with_max_retries(0))
            .unwrap();
        let id = dead.id();
        assert!(dead.await.is_err());
        let dead = h.pool.inspect_dead(id).await.unwrap();
        assert_eq!(dead.options.capability, None, "routing is not an option");
        assert!(h.pool.replay(id).await.is_ok());
        let _long = h.pool.submit_with(work(10_000, 1), keyed("k")).unwrap();
        let waiting = h.pool.submit_with(work(1, 2), keyed("k")).unwrap();
        settle().await;
        let report = h
            .pool
            .shutdown_now(candado_pool::UnfinishedAction::Return)
            .await;
        assert!(report.balanced(), "{report:?}");
        assert!(waiting.await.is_err());
    });
}
