//! A scripted task handler and a paused-time harness for pool tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candado::Runtime;
use candado_pool::{
    Blame, Pool, PoolBuilder, PoolConfig, PoolEvent, PoolEvents, TaskContext, TaskHandler,
};

/// What a test task does.
#[derive(Debug, Clone)]
pub enum Job {
    /// Logs `tag` when it starts, works `ms` of (virtual) time, returns `tag`.
    Work { ms: u64, tag: u64 },
    /// Always fails.
    Fail,
    /// Fails its first `n` attempts.
    FailTimes(u32),
    /// Panics inside the task.
    Panic,
    /// On its first attempt, panics in the handler itself, killing the
    /// worker actor; later attempts succeed.
    CrashWorker,
    /// Fails until the flag is set.
    Until(Arc<AtomicBool>),
    /// Never finishes and never reports progress.
    Hang,
    /// Fails with an error the handler blames on the worker.
    BreakWorker,
    /// Hangs on its first attempt (no progress), returns 7 after.
    HangOnce,
    /// Panics in the handler itself on every attempt: kills its worker.
    CrashAlways,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Job::Work { ms: a, tag: t }, Job::Work { ms: b, tag: u }) => a == b && t == u,
            (Job::FailTimes(a), Job::FailTimes(b)) => a == b,
            (Job::Until(a), Job::Until(b)) => Arc::ptr_eq(a, b),
            (Job::Fail, Job::Fail)
            | (Job::Panic, Job::Panic)
            | (Job::CrashWorker, Job::CrashWorker)
            | (Job::Hang, Job::Hang)
            | (Job::BreakWorker, Job::BreakWorker)
            | (Job::HangOnce, Job::HangOnce)
            | (Job::CrashAlways, Job::CrashAlways) => true,
            _ => false,
        }
    }
}

pub fn work(ms: u64, tag: u64) -> Job {
    Job::Work { ms, tag }
}

/// Runs `Job`s; logs the tags of `Work` in start order.
pub struct Tester {
    pub log: Arc<Mutex<Vec<u64>>>,
}

impl TaskHandler for Tester {
    type Task = Job;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        job: Job,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        if matches!(job, Job::CrashWorker) && ctx.attempt() == 1 || matches!(job, Job::CrashAlways)
        {
            panic!("the worker itself crashes");
        }
        let log = self.log.clone();
        async move {
            match job {
                Job::Work { ms, tag } => {
                    log.lock().unwrap().push(tag);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(tag)
                }
                Job::Fail => Err("always fails".into()),
                Job::FailTimes(n) if ctx.attempt() <= n => {
                    Err(format!("attempt {} fails", ctx.attempt()))
                }
                Job::FailTimes(_) => Ok(0),
                Job::Panic => panic!("the task panics"),
                Job::Until(flag) if flag.load(Ordering::SeqCst) => Ok(1),
                Job::Until(_) => Err("not yet".into()),
                Job::CrashWorker => Ok(99),
                Job::CrashAlways => unreachable!("it panicked before"),
                Job::Hang => std::future::pending().await,
                Job::BreakWorker => Err("worker: its connection is broken".into()),
                Job::HangOnce if ctx.attempt() == 1 => std::future::pending().await,
                Job::HangOnce => Ok(7),
            }
        }
    }

    fn blame(&self, error: &String) -> Blame {
        if error.starts_with("worker:") {
            Blame::Worker
        } else {
            Blame::Task
        }
    }
}

/// Runs `body` inside an actix System whose clock is paused (virtual time).
pub fn run_paused<F, Fut>(body: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("test runtime")
    });
    system.block_on(body());
}

/// A pool on a single-threaded runtime (deterministic on virtual time).
pub struct Harness {
    pub runtime: Runtime,
    pub pool: Pool<Tester>,
    pub log: Arc<Mutex<Vec<u64>>>,
    pub events: PoolEvents,
}

pub async fn start(config: PoolConfig) -> Harness {
    start_with(config, None).await
}

/// Like [`start`], with per-worker capabilities.
pub async fn start_with(
    config: PoolConfig,
    capabilities: Option<fn(usize) -> Vec<String>>,
) -> Harness {
    let runtime = Runtime::builder().current_thread().build().unwrap();
    let log: Arc<Mutex<Vec<u64>>> = Arc::default();
    let shared = log.clone();
    let mut builder = PoolBuilder::new(move || Tester {
        log: shared.clone(),
    })
    .config(config);
    if let Some(f) = capabilities {
        builder = builder.capabilities_for(f);
    }
    let pool = builder.start(&runtime).await.unwrap();
    let events = pool.subscribe();
    Harness {
        runtime,
        pool,
        log,
        events,
    }
}

/// A config with quick retries and no jitter; liveness off unless a test wants it.
pub fn config(size: usize) -> PoolConfig {
    PoolConfig {
        name: "pool".into(),
        size,
        retry: candado_pool::RetryConfig {
            jitter: 0.0,
            ..Default::default()
        },
        ..PoolConfig::default()
    }
}

/// Lets ready tasks run without moving time.
pub async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

pub async fn advance(d: Duration) {
    tokio::time::sleep(d).await;
    settle().await;
}

/// Every queued event (a test that overruns the buffer is a broken test).
pub fn drain(events: &mut PoolEvents) -> Vec<PoolEvent> {
    let mut out = Vec::new();
    loop {
        match events.try_recv() {
            Ok(Some(e)) => out.push(e),
            Ok(None) => return out,
            Err(e) => panic!("the test's subscriber: {e}"),
        }
    }
}

/// Worker of each completed task, by task tag order of completion.
pub fn completions(events: &[PoolEvent]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            PoolEvent::TaskCompleted { id, worker, .. } => Some((*id, worker.clone())),
            _ => None,
        })
        .collect()
}
