//! The [`TaskStore`] contract, on the in-memory store: claim order, an
//! attempt's life (claim, failure, retry, release, dead letter), FIFO kept
//! across retries, and the shutdown's withdrawal.

use std::future::Future;
use std::time::Duration;

use actix::{Actor, Addr};
use candado::BackoffConfig;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{MemoryStore, Running, TaskStore};
use crate::dead_letter::{Ask, DeadLetters, DeadReply, DeadRequest};
use crate::messages::{Submit, WorkerKey};
use crate::{AttemptError, TaskContext, TaskHandler, TaskId, TaskOptions};

struct Echo;

impl TaskHandler for Echo {
    type Task = u64;
    type Output = u64;
    type Error = String;

    // The future must be `'static`: an `async fn` would borrow `self`.
    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        n: u64,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        async move { Ok(n) }
    }
}

fn submit(id: TaskId, options: TaskOptions) -> Submit<Echo> {
    Submit {
        id,
        task: id * 10,
        options,
        reply: None,
        submitted_at: Instant::now(),
        route: None,
    }
}

fn on(worker: WorkerKey) -> Running {
    Running {
        worker,
        incarnation: 1,
        started_ms: 0,
        cancelled: Default::default(),
    }
}

/// A store, and the dead-letter store its dead tasks go to.
fn stores() -> (MemoryStore<Echo>, Addr<DeadLetters<u64>>) {
    let (events, _) = broadcast::channel(16);
    let dead = DeadLetters::new(16, events).start();
    (MemoryStore::new(None, dead.clone()), dead)
}

fn no_jitter() -> BackoffConfig {
    crate::RetryConfig {
        jitter: 0.0,
        ..Default::default()
    }
    .backoff()
}

#[test]
fn ready_tasks_are_walked_best_first_one_per_capability() {
    crate::test_support::paused_system().block_on(async {
        let (mut store, _) = stores();
        let now = Instant::now();
        store.enqueue(submit(1, TaskOptions::priority(5)), now);
        store.enqueue(submit(2, TaskOptions::priority(0)), now);
        let gpu = TaskOptions::priority(0).with_capability("gpu");
        store.enqueue(submit(3, gpu), now);
        let best = store.next_ready(None).unwrap();
        assert_eq!((best.id, best.capability.as_deref()), (2, None));
        let next = store.next_ready(Some(best.rank)).unwrap();
        assert_eq!((next.id, next.capability.as_deref()), (3, Some("gpu")));
        assert!(store.next_ready(Some(next.rank)).is_none());
        assert_eq!(store.ready(), 3);
        assert_eq!(store.held(), [1, 2, 3]);
    });
}

#[test]
fn a_task_is_claimed_failed_retried_released_and_dead_lettered_with_its_history() {
    crate::test_support::paused_system().block_on(async {
        let (mut store, dead_letters) = stores();
        let t0 = Instant::now();
        store.enqueue(submit(1, TaskOptions::default()), t0);
        let claimed = store.claim(1, on(0)).unwrap();
        assert_eq!((claimed.attempt, claimed.task, store.ready()), (1, 10, 0));
        assert_eq!(store.running(1).map(|(n, r)| (n, r.worker)), Some((1, 0)));

        let error = AttemptError::Failed("no".into());
        let failed = store.fail(1, &error, 5, |key| format!("w{key}")).unwrap();
        assert_eq!((failed.number, failed.worker.as_str()), (1, "w0"));
        assert!(store.running(1).is_none(), "no attempt runs any more");
        assert!(store.fail(1, &error, 5, |_| unreachable!()).is_none());

        let (delay, due) = store.schedule_retry(1, t0, &no_jitter()).unwrap();
        assert_eq!((delay, due), (Duration::from_secs(1), t0 + delay));
        assert_eq!((store.ready(), store.delayed()), (0, 1));
        assert_eq!(store.next_due(), Some(due));
        store.requeue_due(due - Duration::from_millis(1));
        assert_eq!(store.ready(), 0, "not before it is due");
        store.requeue_due(due);
        assert_eq!((store.ready(), store.delayed()), (1, 0));

        // Claimed, never started, released: the next claim is the same
        // attempt.
        assert_eq!(store.claim(1, on(1)).unwrap().attempt, 2);
        store.release(1, due);
        assert_eq!(store.claim(1, on(1)).unwrap().attempt, 2);
        store.fail(1, &error, 9, |key| format!("w{key}")).unwrap();

        let dead = store.dead_letter(1, "retries exhausted").unwrap();
        let workers: Vec<&str> = dead.attempts.iter().map(|a| a.worker.as_str()).collect();
        assert_eq!(workers, ["w0", "w1"]);
        assert!(store.is_empty());
        let kept = dead_letters.send(Ask::new(DeadRequest::Inspect(1))).await;
        let Ok(DeadReply::Task(Some(kept))) = kept else {
            panic!("the dead-letter store has task 1");
        };
        assert_eq!((kept.task, kept.attempts.len()), (10, 2));
        assert_eq!(kept.reason, "retries exhausted");
    });
}

#[test]
fn a_retried_task_keeps_its_place_among_equal_priorities() {
    crate::test_support::paused_system().block_on(async {
        let (mut store, _) = stores();
        let t0 = Instant::now();
        store.enqueue(submit(1, TaskOptions::default()), t0);
        store.enqueue(submit(2, TaskOptions::default()), t0);
        store.claim(1, on(0)).unwrap();
        let error = AttemptError::Shutdown;
        store.fail(1, &error, 1, |_| "w".into()).unwrap();
        let (_, due) = store.schedule_retry(1, t0, &no_jitter()).unwrap();
        store.requeue_due(due);
        assert_eq!(store.next_ready(None).map(|r| r.id), Some(1));
    });
}

#[test]
fn shutdown_empties_the_queues_and_withdraws_what_is_held() {
    crate::test_support::paused_system().block_on(async {
        let (mut store, _) = stores();
        let t0 = Instant::now();
        for id in [3, 1, 2] {
            store.enqueue(submit(id, TaskOptions::default()), t0);
        }
        store.delay(2, t0 + Duration::from_secs(1));
        assert_eq!((store.ready(), store.delayed()), (2, 1));
        store.claim(1, on(0)).unwrap();
        store.unqueue_all();
        assert_eq!((store.ready(), store.delayed()), (0, 0));
        assert_eq!(store.held(), [1, 2, 3], "held until each is ended");
        assert!(store.complete(1).is_some());
        assert_eq!(store.withdraw(3).map(|w| w.task), Some(30));
        assert_eq!(store.withdraw(2).map(|w| w.task), Some(20));
        assert!(store.is_empty());
    });
}

#[test]
fn a_held_task_is_claimed_without_queueing_and_released_into_its_place() {
    crate::test_support::paused_system().block_on(async {
        let (mut store, _) = stores();
        let now = Instant::now();
        store.hold(submit(1, TaskOptions::default()), now);
        assert_eq!(store.ready(), 0, "a held task does not wait in the queue");
        assert!(!store.is_empty());
        let claimed = store.claim(1, on(0)).unwrap();
        assert_eq!((claimed.attempt, claimed.task), (1, 10));
        assert!(store.complete(1).is_some());
        assert!(store.is_empty());
        // Held, then not claimed after all: it queues behind the tasks
        // already waiting at its priority, and ahead of later ones.
        store.enqueue(submit(2, TaskOptions::default()), now);
        store.hold(submit(3, TaskOptions::default()), now);
        store.enqueue(submit(4, TaskOptions::default()), now);
        store.release(3, now);
        let mut order = Vec::new();
        while let Some(ready) = store.next_ready(None) {
            order.push(ready.id);
            store.claim(ready.id, on(0));
        }
        assert_eq!(order, [2, 3, 4]);
    });
}
