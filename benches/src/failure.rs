//! How fast failures are handled: a panicking worker's replacement, a
//! silent worker's replacement, and throughput while tasks fail and workers
//! hang.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candado::{Runtime, VerdictKind};
use candado_pool::{
    Pool, PoolBuilder, PoolConfig, PoolEvent, RestartSettings, RetryConfig, TaskContext,
    TaskHandler,
};

/// What a benchmark task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Answers at once.
    Noop(u64),
    /// Panics in the handler itself, killing its worker actor.
    CrashWorker,
    /// Blocks its worker's thread for this long (a CPU-starved event loop:
    /// no heartbeat leaves that thread).
    BlockThread(Duration),
    /// Fails its first attempt, then answers.
    FailOnce(u64),
    /// Hangs without progress on its first attempt, then answers.
    HangOnce(u64),
}

/// A handler for [`Job`]s that records when a thread block began.
#[derive(Debug, Clone, Default)]
pub struct Faulty {
    blocked_at: Arc<Mutex<Option<Instant>>>,
}

impl TaskHandler for Faulty {
    type Task = Job;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        job: Job,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        let first = ctx.attempt() == 1;
        match job {
            Job::CrashWorker => panic!("benchmark: the worker crashes"),
            Job::BlockThread(d) => {
                *self.blocked_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                std::thread::sleep(d);
            }
            _ => {}
        }
        async move {
            match job {
                Job::Noop(n) => Ok(n),
                Job::FailOnce(_) if first => Err("benchmark: first attempt fails".into()),
                Job::HangOnce(_) if first => std::future::pending().await,
                Job::FailOnce(n) | Job::HangOnce(n) => Ok(n),
                Job::CrashWorker | Job::BlockThread(_) => Ok(0),
            }
        }
    }
}

async fn start(config: PoolConfig, handler: Faulty) -> (Runtime, Pool<Faulty>) {
    let runtime = Runtime::builder()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let pool = PoolBuilder::new(move || handler.clone())
        .config(config)
        .start(&runtime)
        .await
        .expect("pool starts");
    (runtime, pool)
}

fn run<T>(body: impl Future<Output = T>) -> T {
    let system = actix::System::new();
    let out = system.block_on(body);
    actix::System::current().stop();
    out
}

/// Waits for the next restart of any worker.
async fn restarted(events: &mut candado_pool::PoolEvents) {
    loop {
        match events.recv().await {
            Ok(PoolEvent::WorkerRestarted { .. }) => return,
            Ok(_) | Err(candado::EventStreamError::Lagged(_)) => {}
            Err(candado::EventStreamError::Closed) => return,
        }
    }
}

/// Time from submitting a task that crashes the only worker until a task on
/// its replacement completes, with the restart backoff set to `backoff`.
pub fn panic_to_replacement(backoff: Duration) -> Duration {
    run(async move {
        let config = PoolConfig {
            size: 1,
            restart: RestartSettings {
                backoff: candado::BackoffConfig {
                    base: backoff,
                    cap: backoff.max(Duration::from_millis(1)),
                    ..candado::BackoffConfig::default()
                },
                ..RestartSettings::default()
            },
            retry: RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            },
            ..PoolConfig::default()
        };
        let (runtime, pool) = start(config, Faulty::default()).await;
        pool.submit(Job::Noop(1))
            .expect("accepted")
            .await
            .expect("warm-up");
        let mut events = pool.subscribe();
        let start = Instant::now();
        let crash = pool.submit(Job::CrashWorker).expect("accepted");
        restarted(&mut events).await;
        let got = pool
            .submit(Job::Noop(2))
            .expect("accepted")
            .await
            .expect("replacement works");
        let elapsed = start.elapsed();
        assert_eq!(got, 2);
        let _ = crash.await;
        pool.shutdown_gracefully(Duration::from_secs(5)).await;
        runtime.shutdown().await;
        elapsed
    })
}

/// How fast a silent worker was found and replaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SilenceRun {
    /// From the block to liveness's restart verdict (as an event reached a
    /// subscriber).
    pub detected: Duration,
    /// From the block until a task on the replacement completed: detection,
    /// then the old incarnation's shutdown timeout (its blocked thread
    /// cannot stop it), the restart backoff and the new start.
    pub replaced: Duration,
}

/// The supervisor's tick: detection of silence waits for the first tick
/// past the heartbeat timeout, so liveness promises to find a silent worker
/// within timeout + one tick of its last heartbeat.
pub const TICK: Duration = Duration::from_secs(1);

/// A silent worker: its thread is blocked, so no heartbeat leaves it. The
/// block begins `phase` after the pool has warmed up: where it falls
/// between two of the supervisor's ticks decides whether the first tick past
/// the timeout comes early or late, so runs should spread it over a tick.
pub fn silence_to_replacement(
    interval: Duration,
    timeout: Duration,
    phase: Duration,
) -> SilenceRun {
    run(async move {
        let config = PoolConfig {
            size: 1,
            worker_shutdown_timeout: Duration::from_millis(100),
            liveness: Some(candado::LivenessConfig {
                heartbeat_interval: Some(interval),
                heartbeat_timeout: timeout,
                ping_interval: None,
                ..candado_pool::PoolDefault::pool_default()
            }),
            retry: RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            },
            ..PoolConfig::default()
        };
        let handler = Faulty::default();
        let blocked_at = handler.blocked_at.clone();
        let (runtime, pool) = start(config, handler).await;
        pool.submit(Job::Noop(1))
            .expect("accepted")
            .await
            .expect("warm-up");
        actix_rt::time::sleep(phase).await;
        let mut verdicts = runtime.subscribe();
        let verdict = actix::spawn(async move {
            let restart = |e: &candado::Event| {
                matches!(
                    &e.kind,
                    candado::EventKind::VerdictChanged { strategy, verdict: VerdictKind::Restart, .. }
                        if strategy == "liveness"
                )
            };
            verdicts.wait_for(restart).await.expect("a restart verdict");
            Instant::now()
        });
        let mut events = pool.subscribe();
        let block = pool
            .submit(Job::BlockThread(timeout + TICK * 3))
            .expect("accepted");
        restarted(&mut events).await;
        let got = pool
            .submit(Job::Noop(2))
            .expect("accepted")
            .await
            .expect("replacement works");
        let replaced = Instant::now();
        assert_eq!(got, 2);
        let since = blocked_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .expect("the block began");
        let detected = verdict.await.expect("verdict watcher");
        let _ = block.await;
        pool.shutdown_gracefully(Duration::from_secs(10)).await;
        runtime.shutdown().await;
        SilenceRun {
            detected: detected.saturating_duration_since(since),
            replaced: replaced.duration_since(since),
        }
    })
}

/// Outcome of a throughput run with faults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRun {
    /// Tasks completed per second in the measured window (steady state).
    pub rate: f64,
    /// Tasks completed per second from the first submission until the last
    /// submit loop ended (ramp-up and drain included).
    pub whole_rate: f64,
    /// Tasks that did not complete (dead-lettered or lost).
    pub not_completed: u64,
    /// Worker restarts seen.
    pub restarts: u64,
}

/// One task in ten, picked by a hash of its number: failures land on
/// workers at random. (Every tenth number would not: with round-robin
/// dispatch in lockstep, the same workers would get every failing task, and
/// their breakers would rightly isolate them one after another.)
fn fails(n: u64) -> bool {
    // splitmix64's finaliser.
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).is_multiple_of(10)
}

/// Tasks kept in flight by [`throughput_with_faults`]. It must keep the pool
/// saturated while failed tasks sit out their retry delay: at 500k tasks/s,
/// one in ten waiting 50–100 ms is about 4,000 tasks out of play at any time.
/// With only 4,096 in flight (this harness's first version) the workers ran
/// dry, and the faulty run measured Little's law (in-flight tasks / mean
/// latency) instead of what faults cost the pool.
pub const IN_FLIGHT: u64 = 32_768;

/// Time the pool is given to reach its steady state before a faults run is
/// measured: the first retries come back after 50 ms and the first hung
/// worker is restarted after its 500 ms progress timeout.
pub const WARM_UP: Duration = Duration::from_millis(600);

/// Tasks completed per second through `workers` workers, counted over
/// `window` after [`WARM_UP`], with [`IN_FLIGHT`] tasks kept in flight (each
/// loop submits its next task when the last one ends, so a task waiting for
/// a retry does not hold the others up).
///
/// Only the steady state is counted: the pool is loaded before the window
/// opens and still loaded when it closes. Counting from the first submission
/// to the last reply instead ([`FaultRun::whole_rate`]) adds the ramp-up and
/// the drain, where a few slow tasks (a retry sitting out its delay, a task
/// stuck behind a hang) keep the run going with the pool nearly idle.
///
/// With `faults`, one task in ten (at random) fails its first attempt (retried after
/// 50 ms), and one worker in a hundred (at least one) is kept hung: every
/// 500 ms as many tasks that hang without progress on their first attempt
/// are injected; liveness (500 ms progress timeout) restarts their workers.
/// Every task is awaited at the end, to count any that did not complete.
pub fn throughput_with_faults(workers: usize, window: Duration, faults: bool) -> FaultRun {
    run(async move {
        let config = PoolConfig {
            size: workers,
            max_size: workers.max(64),
            queue_bound: 10_000_000,
            task_timeout: Duration::from_secs(10),
            retry: RetryConfig {
                base: Duration::from_millis(50),
                cap: Duration::from_millis(200),
                ..RetryConfig::default()
            },
            liveness: Some(candado::LivenessConfig {
                progress_timeout: Some(Duration::from_millis(500)),
                ..candado_pool::PoolDefault::pool_default()
            }),
            heal_limit: candado::HealLimit {
                max: 1_000,
                period: Duration::from_secs(60),
                min_gap: Duration::ZERO,
            },
            ..PoolConfig::default()
        };
        let (runtime, pool) = start(config, Faulty::default()).await;
        let start = Instant::now();
        let deadline = start + WARM_UP + window;
        let completions = Arc::new(AtomicU64::new(0));
        let loops: Vec<_> = (0..IN_FLIGHT)
            .map(|l| {
                let pool = pool.clone();
                let completions = completions.clone();
                actix::spawn(async move {
                    let mut failed = 0u64;
                    let mut n = l;
                    while Instant::now() < deadline {
                        let job = if faults && fails(n) {
                            Job::FailOnce(n)
                        } else {
                            Job::Noop(n)
                        };
                        match pool.submit(job).expect("accepted").await {
                            Ok(got) if got == n => {
                                completions.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => failed += 1,
                        }
                        n += IN_FLIGHT;
                    }
                    failed
                })
            })
            .collect();
        let hangs = actix::spawn({
            let pool = pool.clone();
            async move {
                let mut hangs = Vec::new();
                let hung = if faults { (workers / 100).max(1) } else { 0 };
                let mut next = u64::MAX / 2;
                while Instant::now() < deadline {
                    for _ in 0..hung {
                        hangs.push(pool.submit(Job::HangOnce(next)).expect("accepted"));
                        next += 1;
                    }
                    actix_rt::time::sleep(Duration::from_millis(500)).await;
                }
                hangs
            }
        });
        actix_rt::time::sleep_until((start + WARM_UP).into()).await;
        let (opened, before) = (Instant::now(), completions.load(Ordering::Relaxed));
        actix_rt::time::sleep_until(deadline.into()).await;
        let (closed, after) = (Instant::now(), completions.load(Ordering::Relaxed));
        let mut not_completed = 0u64;
        for l in loops {
            not_completed += l.await.expect("submit loop");
        }
        let whole = start.elapsed();
        for h in hangs.await.expect("hang injector") {
            if h.await.is_err() {
                not_completed += 1;
            }
        }
        let restarts = pool
            .metrics()
            .await
            .map(|m| m.performance.restarts_by_reason.values().sum::<u64>())
            .unwrap_or(0);
        pool.shutdown_gracefully(Duration::from_secs(10)).await;
        runtime.shutdown().await;
        FaultRun {
            rate: (after - before) as f64 / (closed - opened).as_secs_f64(),
            whole_rate: completions.load(Ordering::Relaxed) as f64 / whole.as_secs_f64(),
            not_completed,
            restarts,
        }
    })
}
