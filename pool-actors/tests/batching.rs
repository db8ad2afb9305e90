//! Workers running short tasks take them in batches while tasks queue up:
//! what a batch changes (the order against later, better tasks) and what it
//! must not (each task's own timeout).

mod common;

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use candado::Runtime;
use candado_pool::{
    Blame, BreakerSettings, Pool, PoolBuilder, PoolConfig, RetryConfig, TaskContext, TaskHandler,
    TaskOptions,
};
use common::run_paused;

/// A task: logs `tag` when it starts, works `us` microseconds of virtual
/// time (0: it is done at once), and, if `submit` is set, submits that tag at priority 0
/// as it starts. With `crash`, its first attempt panics in the handler
/// itself, killing the worker; with `fail`, it fails.
#[derive(Debug, Clone)]
struct Step {
    tag: u64,
    us: u64,
    submit: Option<u64>,
    crash: bool,
    fail: bool,
}

fn step(tag: u64, us: u64) -> Step {
    Step {
        tag,
        us,
        submit: None,
        crash: false,
        fail: false,
    }
}

#[derive(Clone, Default)]
struct Recorder {
    log: Arc<Mutex<Vec<u64>>>,
    pool: Arc<OnceLock<Pool<Recorder>>>,
}

impl TaskHandler for Recorder {
    type Task = Step;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        this: Step,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        self.log.lock().unwrap().push(this.tag);
        if this.crash && ctx.attempt() == 1 {
            panic!("the worker crashes");
        }
        if let (Some(tag), Some(pool)) = (this.submit, self.pool.get()) {
            // Its handle is dropped: the test waits for the whole pool.
            drop(
                pool.submit_with(step(tag, 0), TaskOptions::priority(0))
                    .unwrap(),
            );
        }
        async move {
            if this.us > 0 {
                tokio::time::sleep(Duration::from_micros(this.us)).await;
            }
            if this.fail {
                return Err(format!("step {} fails", this.tag));
            }
            Ok(this.tag)
        }
    }

    /// A failing step stands for a broken worker (the breaker tests).
    fn blame(&self, _: &String) -> Blame {
        Blame::Worker
    }
}

/// One worker, `batch`, `max_retries`.
async fn start_with(
    batch: usize,
    task_timeout: Duration,
    max_retries: u32,
) -> (Runtime, Pool<Recorder>, Recorder) {
    start_config(PoolConfig {
        size: 1,
        batch,
        task_timeout,
        retry: RetryConfig {
            max_retries,
            ..RetryConfig::default()
        },
        ..PoolConfig::default()
    })
    .await
}

async fn start_config(config: PoolConfig) -> (Runtime, Pool<Recorder>, Recorder) {
    let runtime = Runtime::builder().current_thread().build().unwrap();
    let recorder = Recorder::default();
    let factory = recorder.clone();
    let pool = PoolBuilder::new(move || factory.clone())
        .config(config)
        .start(&runtime)
        .await
        .unwrap();
    assert!(recorder.pool.set(pool.clone()).is_ok());
    (runtime, pool, recorder)
}

/// One worker, `batch`, no retries (a failed attempt shows in the result).
async fn start(batch: usize, task_timeout: Duration) -> (Runtime, Pool<Recorder>, Recorder) {
    start_with(batch, task_timeout, 0).await
}

/// Submits `steps` at the default priority, waits (a minute of virtual
/// time at most) for each to succeed and for the pool to end balanced;
/// returns the start order and the number of failed attempts.
async fn run(pool: Pool<Recorder>, recorder: Recorder, steps: Vec<Step>) -> (Vec<u64>, u64) {
    let handles: Vec<_> = steps.into_iter().map(|s| pool.submit(s).unwrap()).collect();
    for handle in handles {
        let tag = tokio::time::timeout(Duration::from_secs(60), handle).await;
        assert!(tag.as_ref().is_ok_and(Result::is_ok), "{tag:?}");
    }
    let failed = pool.metrics().await.unwrap().tasks.failed;
    let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
    assert!(report.balanced(), "{report:?}");
    let log = recorder.log.lock().unwrap().clone();
    (log, failed)
}

/// Ten instant tasks; the fifth submits tag 100 at a better priority.
fn ten_with_an_urgent_one() -> Vec<Step> {
    (0..10)
        .map(|tag| Step {
            submit: (tag == 4).then_some(100),
            ..step(tag, 0)
        })
        .collect()
}

#[test]
fn a_worker_on_short_tasks_takes_a_batch_and_a_later_better_task_waits_for_it() {
    run_paused(|| async {
        let (_runtime, pool, recorder) = start(4, Duration::from_secs(5)).await;
        let (order, _) = run(pool, recorder, ten_with_an_urgent_one()).await;
        // Tasks 1 and 2 are handed over one at a time while the worker's
        // pace is measured; then it takes 3..=6 (its next task and three
        // more), so the urgent task submitted by 4 runs after 6.
        assert_eq!(order, [0, 1, 2, 3, 4, 5, 6, 100, 7, 8, 9]);
    });
}

#[test]
fn a_failure_ends_the_batch_and_the_rest_goes_back_to_the_queue() {
    run_paused(|| async {
        let (_runtime, pool, recorder) = start(4, Duration::from_secs(5)).await;
        // As above, but task 4 fails: the batch 3..=6 ends there, so the
        // router weighs the failure before the worker runs anything more,
        // and 5 and 6 go back to the queue, behind the urgent task.
        let handles: Vec<_> = ten_with_an_urgent_one()
            .into_iter()
            .map(|s| {
                let fails = s.tag == 4;
                (fails, pool.submit(Step { fail: fails, ..s }).unwrap())
            })
            .collect();
        for (fails, handle) in handles {
            assert_eq!(handle.await.is_err(), fails);
        }
        let metrics = pool.metrics().await.unwrap();
        assert_eq!(metrics.tasks.failed, 1, "handing back costs no attempt");
        let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
        let order = recorder.log.lock().unwrap().clone();
        assert_eq!(order, [0, 1, 2, 3, 4, 100, 5, 6, 7, 8, 9]);
    });
}

#[test]
fn with_a_batch_of_one_a_better_task_runs_next() {
    run_paused(|| async {
        let (_runtime, pool, recorder) = start(1, Duration::from_secs(5)).await;
        let (order, _) = run(pool, recorder, ten_with_an_urgent_one()).await;
        assert_eq!(order, [0, 1, 2, 3, 4, 100, 5, 6, 7, 8, 9]);
    });
}

#[test]
fn each_task_of_a_batch_gets_its_whole_timeout_from_when_it_starts() {
    run_paused(|| async {
        // Instant tasks set the pace; the batch taken after task 2 holds 3,
        // 4 and 5, none of which waits long enough (5 ms) for the batch to
        // be broken up. Task 5 starts 2 ms after it was handed over and
        // works 2 ms: past its 3 ms timeout, had that started at the
        // handover.
        let (_runtime, pool, recorder) = start(4, Duration::from_millis(3)).await;
        let steps = vec![
            step(0, 0),
            step(1, 0),
            step(2, 2_000),
            step(3, 2_000),
            step(4, 0),
            step(5, 2_000),
        ];
        let (order, failed) = run(pool, recorder, steps).await;
        assert_eq!(order, [0, 1, 2, 3, 4, 5]);
        assert_eq!(failed, 0);
    });
}

#[test]
fn tasks_behind_one_that_waits_long_go_back_to_the_queue_for_another_worker() {
    run_paused(|| async {
        let (_runtime, pool, recorder) = start_config(PoolConfig {
            size: 2,
            batch: 4,
            ..PoolConfig::default()
        })
        .await;
        // Instant tasks, but for one that waits a second: whichever batch it
        // lands in, the tasks behind it go back to the queue once it has
        // waited 5 ms, and the other worker runs them.
        let slow = 10;
        let handles: Vec<_> = (0..24)
            .map(|tag| {
                let us = if tag == slow { 1_000_000 } else { 0 };
                (tag, pool.submit(step(tag, us)).unwrap())
            })
            .collect();
        let started = tokio::time::Instant::now();
        let mut slow_handle = None;
        for (tag, handle) in handles {
            if tag == slow {
                slow_handle = Some(handle);
                continue;
            }
            assert_eq!(handle.await.unwrap(), tag);
            assert!(
                started.elapsed() < Duration::from_millis(10),
                "task {tag} waited {:?} for the slow one",
                started.elapsed()
            );
        }
        assert_eq!(slow_handle.unwrap().await.unwrap(), slow);
        let failed = pool.metrics().await.unwrap().tasks.failed;
        assert_eq!(failed, 0, "handing tasks back costs no attempt");
        drop(recorder);
        let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}

#[test]
fn a_worker_that_dies_in_a_batch_loses_none_of_it_and_reruns_none_it_finished() {
    run_paused(|| async {
        let (_runtime, pool, recorder) = start_with(4, Duration::from_secs(5), 3).await;
        // The batch taken after task 2 holds 3..=6; 4 kills the worker as
        // it starts.
        let steps = (0..8)
            .map(|tag| Step {
                crash: tag == 4,
                ..step(tag, 0)
            })
            .collect();
        let (mut order, failed) = run(pool, recorder, steps).await;
        // 3 finished before the crash and is not run again; 4 is. 5 and 6,
        // handed over but not started, went back to the queue: their one
        // attempt is the one that succeeds.
        order.sort_unstable();
        assert_eq!(order, [0, 1, 2, 3, 4, 4, 5, 6, 7]);
        assert_eq!(failed, 1, "only the crashed attempt failed");
    });
}

/// Two workers, batches of 4, no retries; one failure opens a worker's
/// breaker for a minute.
fn touchy() -> PoolConfig {
    PoolConfig {
        size: 2,
        batch: 4,
        retry: RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        },
        breaker: Some(BreakerSettings {
            config: candado::BreakerConfig {
                failure_threshold: 1,
                cooldown_base: Duration::from_secs(60),
                ..Default::default()
            },
            ..BreakerSettings::default()
        }),
        ..PoolConfig::default()
    }
}

/// Has the first worker fail a task, which opens its breaker.
async fn trip_a_worker(pool: &Pool<Recorder>) {
    let failing = Step {
        fail: true,
        ..step(99, 0)
    };
    assert!(pool.submit(failing).unwrap().await.is_err());
}

#[test]
fn a_worker_whose_breaker_opened_does_not_keep_the_others_from_taking_batches() {
    run_paused(|| async {
        let (_runtime, pool, recorder) = start_config(touchy()).await;
        trip_a_worker(&pool).await;
        // Before its supervisor has even looked, the worker whose breaker
        // opened is out of service: the other one is the only one left, so
        // it takes batches as if it were alone.
        let (order, _) = run(pool, recorder, ten_with_an_urgent_one()).await;
        assert_eq!(order, [99, 0, 1, 2, 3, 4, 5, 6, 100, 7, 8, 9]);
    });
}

#[test]
fn a_worker_whose_breaker_cooled_down_takes_tasks_again() {
    run_paused(|| async {
        let (_runtime, pool, recorder) = start_config(touchy()).await;
        trip_a_worker(&pool).await;
        let completed = async |pool: &Pool<Recorder>| {
            let metrics = pool.metrics().await.unwrap();
            let first = metrics.per_worker.iter().find(|w| w.id == "worker-0");
            first.expect("worker-0 is listed").completed
        };
        for tag in 0..4 {
            pool.submit(step(tag, 0)).unwrap().await.unwrap();
        }
        assert_eq!(completed(&pool).await, 0, "its breaker is open");
        // Past the cooldown its breaker is half-open: it gets its probes.
        tokio::time::sleep(Duration::from_secs(61)).await;
        for tag in 4..8 {
            pool.submit(step(tag, 0)).unwrap().await.unwrap();
        }
        assert!(completed(&pool).await > 0, "back in service");
        drop(recorder);
        let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}
