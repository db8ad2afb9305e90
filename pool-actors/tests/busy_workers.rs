//! Workers under a stream of tasks: they run them back to back, hold their
//! replies for bursts, and still share their thread, deliver every reply,
//! and lose nothing when submitters and workers race on real threads.

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candado::Runtime;
use candado_pool::{PoolBuilder, PoolConfig, TaskContext, TaskHandler, TaskOptions};
use common::{config, run_paused, start, Job};

/// Instant tasks that note how far a ticker on the same thread has got.
struct Probe {
    ticks: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<u64>>>,
}

impl TaskHandler for Probe {
    type Task = u64;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        n: u64,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        self.seen
            .lock()
            .unwrap()
            .push(self.ticks.load(Ordering::SeqCst));
        std::future::ready(Ok(n))
    }
}

#[test]
fn a_worker_running_tasks_back_to_back_still_yields_its_thread() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let (ticks, seen) = (Arc::new(AtomicU64::new(0)), Arc::default());
        let (t, s) = (ticks.clone(), Arc::clone(&seen));
        let pool = PoolBuilder::new(move || Probe {
            ticks: t.clone(),
            seen: Arc::clone(&s),
        })
        .config(config(1))
        .start(&runtime)
        .await
        .unwrap();
        // Another task on the same thread, standing in for the worker's own
        // heartbeats and for the other actors there.
        let ticker = {
            let ticks = ticks.clone();
            actix::spawn(async move {
                loop {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            })
        };
        let handles = pool
            .submit_batch((0..200).map(|n| (n, TaskOptions::default())).collect())
            .unwrap();
        for (n, handle) in (0..).zip(handles) {
            assert_eq!(handle.await, Ok(n));
        }
        ticker.abort();
        let distinct: HashSet<u64> = seen.lock().unwrap().iter().copied().collect();
        // 200 back-to-back tasks with a yield every 32: the ticker gets to
        // run between bursts (a worker that never yields runs all 200 in one
        // go, and every task sees the same count).
        assert!(
            distinct.len() >= 3,
            "the ticker ran {} times during 200 tasks",
            distinct.len()
        );
        pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn replies_a_dying_worker_still_holds_reach_their_submitters() {
    run_paused(|| async {
        let h = start(config(1)).await;
        // Instant tasks from a deep queue: the worker holds their replies
        // for a burst. Then its handler crashes the worker mid-burst.
        let mut jobs: Vec<(Job, TaskOptions)> = (0..60)
            .map(|_| (Job::FailTimes(0), TaskOptions::default()))
            .collect();
        jobs.push((Job::CrashWorker, TaskOptions::default()));
        jobs.extend((0..60).map(|_| (Job::FailTimes(0), TaskOptions::default())));
        let mut handles = h.pool.submit_batch(jobs).unwrap();
        let crash = handles.remove(60);
        for handle in handles {
            assert_eq!(handle.await, Ok(0), "every reply arrives");
        }
        // The crashing task lost its first attempt with the worker, then ran.
        assert_eq!(crash.await, Ok(99));
        let metrics = h.pool.metrics().await.unwrap();
        assert_eq!(
            metrics.per_worker[0].incarnation, 2,
            "the worker was replaced"
        );
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

/// Instant tasks that answer with their own number.
struct Echo;

impl TaskHandler for Echo {
    type Task = u64;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        n: u64,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        std::future::ready(Ok(n))
    }
}

#[test]
fn submitters_and_workers_racing_on_real_threads_lose_no_task() {
    let system = actix::System::new();
    system.block_on(async {
        let runtime = Runtime::builder().worker_threads(2).build().unwrap();
        let pool = PoolBuilder::new(|| Echo)
            .config(PoolConfig {
                size: 4,
                queue_bound: 1_000_000,
                ..PoolConfig::default()
            })
            .start(&runtime)
            .await
            .unwrap();
        // Eight OS threads submit at once, with mixed priorities, while the
        // workers on two other threads settle attempts and take the next.
        let submitters: Vec<_> = (0..8u64)
            .map(|t| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    (0..2_000u64)
                        .map(|i| {
                            let n = t * 10_000 + i;
                            let options = TaskOptions::priority((n % 3) as u8);
                            (n, pool.submit_with(n, options).unwrap())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let all = async {
            for submitter in submitters {
                for (n, handle) in submitter.join().unwrap() {
                    assert_eq!(handle.await, Ok(n));
                }
            }
        };
        // A guard against a hang, not a speed assertion.
        tokio::time::timeout(Duration::from_secs(120), all)
            .await
            .expect("every task completes");
        let report = pool.shutdown_gracefully(Duration::from_secs(5)).await;
        assert_eq!(report.submitted, 16_000);
        assert_eq!(report.completed, 16_000);
        runtime.shutdown().await;
    });
}

#[test]
fn a_busy_pool_releases_a_retry_on_time_without_waiting_for_its_clock() {
    run_paused(|| async {
        let mut h = start(config(2)).await;
        // A stream of 1 ms tasks keeps both workers, and the router, busy...
        let stream = h
            .pool
            .submit_batch(
                (0..4_000)
                    .map(|n| (common::work(1, n), TaskOptions::priority(20)))
                    .collect(),
            )
            .unwrap();
        // ...while a task fails once and waits 1 s (no jitter) for its retry.
        let flaky = h.pool.submit(Job::FailTimes(1)).unwrap();
        let id = flaky.id();
        assert_eq!(flaky.await, Ok(0));
        let latency = common::drain(&mut h.events)
            .into_iter()
            .find_map(|e| match e {
                candado_pool::PoolEvent::TaskCompleted {
                    id: done,
                    latency_ms,
                    ..
                } if done == id => Some(latency_ms),
                _ => None,
            })
            .expect("the flaky task completed");
        // Never early; and released by the next worker to finish a task
        // (1 ms later at most), not by the router's clock, which leaves
        // retries to a busy router's callers for up to 10 ms.
        assert!(
            (1_000..=1_004).contains(&latency),
            "retried {latency} ms after submission"
        );
        for handle in stream {
            handle.await.unwrap();
        }
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}
