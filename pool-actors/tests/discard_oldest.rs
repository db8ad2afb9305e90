//! Discard-oldest load shedding (issue 21, item 11): on a full queue the
//! least important waiting task makes room for the new one, and is
//! dead-lettered with reason `discarded` and handed to the discard hook:
//! nothing vanishes. As ractor's factory discards the oldest queued job
//! (`DiscardMode::Oldest`) and tells its `DiscardHandler`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use candado::Runtime;
use candado_pool::{
    DeadTask, Overflow, Pool, PoolBuilder, PoolConfig, PoolEvent, SubmitError, TaskFailure,
    TaskOptions,
};
use common::*;

type Discarded = Arc<Mutex<Vec<DeadTask<Job>>>>;

/// One worker, a queue of `bound`, discard-oldest, and a hook that keeps
/// what it is told (and panics on tag 666).
async fn shedding(bound: usize) -> (Runtime, Pool<Tester>, Discarded, Arc<Mutex<Vec<u64>>>) {
    let runtime = Runtime::builder().current_thread().build().unwrap();
    let discarded: Discarded = Arc::default();
    let seen = discarded.clone();
    let log: Arc<Mutex<Vec<u64>>> = Arc::default();
    let shared = log.clone();
    let pool = PoolBuilder::new(move || Tester {
        log: shared.clone(),
    })
    .config(PoolConfig {
        queue_bound: bound,
        overflow: Overflow::DiscardOldest,
        batch: 1,
        ..config(1)
    })
    .on_discard(move |dead| {
        let panics = dead.task == work(1, 666);
        seen.lock().unwrap().push(dead);
        assert!(!panics, "the hook panics");
    })
    .start(&runtime)
    .await
    .unwrap();
    (runtime, pool, discarded, log)
}

/// Waits until the pool's task counts pass `check`: the worker is on
/// another thread, so yields alone may not let a task reach it (bounded: a
/// few seconds of real time at most).
async fn until<H: candado_pool::TaskHandler>(
    pool: &candado_pool::Pool<H>,
    what: &str,
    check: impl Fn(&candado_pool::TasksSection) -> bool,
) {
    for _ in 0..5_000 {
        settle().await;
        if check(&pool.metrics().await.unwrap().tasks) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("never: {what}");
}

/// Waits until `n` tasks run and none waits.
async fn running<H: candado_pool::TaskHandler>(pool: &candado_pool::Pool<H>, n: u64) {
    until(pool, "the tasks run", |t| t.in_flight == n && t.queued == 0).await;
}

fn prio(p: u8) -> TaskOptions {
    TaskOptions::priority(p)
}

#[test]
fn a_full_queue_discards_its_oldest_task_for_the_new_one_and_tells_everyone() {
    run_paused(|| async {
        let (_rt, pool, discarded, log) = shedding(2).await;
        let mut events = pool.subscribe();
        let busy = pool.submit(work(1_000, 1)).unwrap();
        running(&pool, 1).await;
        let oldest = pool.submit(work(1, 2)).unwrap();
        let next = pool.submit(work(1, 3)).unwrap();
        let newest = pool.submit(work(1, 4)).unwrap();
        let Err(TaskFailure::DeadLettered { id, attempts }) = oldest.await else {
            panic!("the oldest waiting task makes room");
        };
        assert!(attempts.is_empty());
        let told = discarded.lock().unwrap().clone();
        assert_eq!(told.len(), 1);
        assert_eq!(
            (told[0].id, &told[0].task, told[0].reason.as_str()),
            (id, &work(1, 2), "discarded")
        );
        let dead = pool.dead_letters().await.unwrap();
        assert_eq!(
            (dead.len(), dead[0].id, dead[0].reason.as_str()),
            (1, id, "discarded")
        );
        assert!(drain(&mut events).iter().any(|e| matches!(
            e,
            PoolEvent::TaskDeadLettered { reason, .. } if reason == "discarded"
        )));
        assert_eq!(
            (busy.await, next.await, newest.await),
            (Ok(1), Ok(3), Ok(4))
        );
        assert_eq!(*log.lock().unwrap(), [1, 3, 4]);
        // It can be replayed like any dead task.
        assert_eq!(pool.replay(id).await.unwrap().await, Ok(2));
        let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.dead_lettered, 1);
    });
}

#[test]
fn the_least_important_goes_first_and_a_newcomer_less_important_than_all_is_refused() {
    run_paused(|| async {
        let (_rt, pool, discarded, _log) = shedding(2).await;
        let _busy = pool.submit(work(1_000, 1)).unwrap();
        running(&pool, 1).await;
        let urgent = pool.submit_with(work(1, 2), prio(1)).unwrap();
        let low = pool.submit_with(work(1, 3), prio(5)).unwrap();
        // Priority 3 beats 5: the priority-5 task goes, though newer.
        let mid = pool.submit_with(work(1, 4), prio(3)).unwrap();
        assert!(matches!(low.await, Err(TaskFailure::DeadLettered { .. })));
        // Priority 9 is less important than both waiting (1 and 3): refused.
        match pool.submit_with(work(1, 5), prio(9)) {
            Err(SubmitError::QueueFull { task, bound: 2 }) => assert_eq!(task, work(1, 5)),
            other => panic!("{other:?}"),
        }
        // An equal one makes the oldest of that priority go.
        let _newer = pool.submit_with(work(1, 6), prio(3)).unwrap();
        assert!(matches!(mid.await, Err(TaskFailure::DeadLettered { .. })));
        let tags: Vec<Job> = discarded
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.task.clone())
            .collect();
        assert_eq!(tags, [work(1, 3), work(1, 4)]);
        assert_eq!(urgent.await, Ok(2));
        let report = pool.shutdown_gracefully(Duration::from_secs(5)).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn retries_waiting_for_their_time_are_never_discarded() {
    run_paused(|| async {
        let (_rt, pool, discarded, _log) = shedding(1).await;
        let failing = pool.submit(Job::FailTimes(1)).unwrap();
        until(&pool, "the first attempt fails", |t| t.failed == 1).await;
        // Its retry waits (1 s) and holds the one place in the queue.
        assert!(matches!(
            pool.submit(work(1, 2)),
            Err(SubmitError::QueueFull { .. })
        ));
        assert!(discarded.lock().unwrap().is_empty());
        assert_eq!(failing.await, Ok(0));
        pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_batch_on_a_full_queue_discards_as_many_or_none() {
    run_paused(|| async {
        let (_rt, pool, discarded, _log) = shedding(3).await;
        let _busy = pool.submit(work(1_000, 1)).unwrap();
        running(&pool, 1).await;
        let waiting: Vec<_> = (2..5).map(|t| pool.submit(work(1, t)).unwrap()).collect();
        let batch = pool
            .submit_batch(vec![(work(1, 5), prio(10)), (work(1, 6), prio(10))])
            .unwrap();
        assert_eq!(discarded.lock().unwrap().len(), 2);
        // Four at once cannot fit a queue of three: refused whole.
        let too_many = (7..11).map(|t| (work(1, t), prio(0))).collect();
        assert!(matches!(
            pool.submit_batch(too_many),
            Err(SubmitError::QueueFull { task, .. }) if task.len() == 4
        ));
        assert_eq!(discarded.lock().unwrap().len(), 2);
        let mut outcomes = Vec::new();
        for h in waiting.into_iter().chain(batch) {
            outcomes.push(h.await.is_ok());
        }
        assert_eq!(outcomes, [false, false, true, true, true]);
        let report = pool.shutdown_gracefully(Duration::from_secs(5)).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn a_hook_that_panics_changes_nothing_and_two_submitters_at_once_both_get_in() {
    run_paused(|| async {
        let (_rt, pool, discarded, _log) = shedding(1).await;
        let _busy = pool.submit(work(1_000, 1)).unwrap();
        running(&pool, 1).await;
        let doomed = pool.submit(work(1, 666)).unwrap();
        // The hook panics on the discarded task: the submitter is fine.
        let survivor = pool.submit(work(1, 2)).unwrap();
        assert!(matches!(
            doomed.await,
            Err(TaskFailure::DeadLettered { .. })
        ));
        assert_eq!(pool.dead_letters().await.unwrap().len(), 1);
        // Two submitters on two threads at once on the full queue: each
        // gets in by discarding what waits; every handle ends once.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = [3, 4]
            .into_iter()
            .map(|tag| {
                let (pool, barrier) = (pool.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    pool.submit(work(1, tag)).map(|h| h.id()).is_ok()
                })
            })
            .collect();
        let accepted: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(accepted, [true, true]);
        assert!(matches!(
            survivor.await,
            Err(TaskFailure::DeadLettered { .. })
        ));
        assert_eq!(discarded.lock().unwrap().len(), 3);
        let report = pool.shutdown_gracefully(Duration::from_secs(5)).await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.submitted, 5);
        assert_eq!(report.completed, 2);
        assert_eq!(report.dead_lettered, 3);
    });
}

#[test]
fn reject_stays_the_default() {
    assert_eq!(PoolConfig::default().overflow, Overflow::Reject);
    let config = PoolConfig::from_toml("overflow = \"discard_oldest\"").unwrap();
    assert_eq!(config.overflow, Overflow::DiscardOldest);
    assert!(PoolConfig::from_toml("overflow = \"drop_everything\"").is_err());
}
