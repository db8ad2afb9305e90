//! The Candado pool under the same shapes as its peers: no-op tasks through
//! the router's priority heap, dispatch, a supervised worker, and the result
//! back to the caller.

use std::future::Future;
use std::time::{Duration, Instant};

use candado::Runtime;
use candado_pool::{Pool, PoolBuilder, PoolConfig, TaskContext, TaskHandler};

use crate::Shape;

/// A handler whose task is its own answer (after the CPU work set with
/// [`crate::work::set`]; none by default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

impl TaskHandler for Noop {
    type Task = u64;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        n: u64,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        crate::work::spin();
        std::future::ready(Ok(n))
    }
}

/// A handler that blocks its worker's thread for the given time
/// (`std::thread::sleep`, as a blocking call in a handler would), then
/// answers its task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Blocking(pub Duration);

impl TaskHandler for Blocking {
    type Task = u64;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        n: u64,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        std::thread::sleep(self.0);
        std::future::ready(Ok(n))
    }
}

/// The pool config the benchmarks use: defaults (liveness with heartbeats,
/// breakers) with `workers` workers, up to `concurrency` tasks in flight on
/// each, and a queue bound that never refuses.
pub fn config(workers: usize, concurrency: usize) -> PoolConfig {
    PoolConfig {
        size: workers,
        concurrency,
        max_size: workers.max(PoolConfig::default().max_size),
        queue_bound: 10_000_000,
        ..PoolConfig::default()
    }
}

/// Runs `body` against a fresh runtime (two worker threads, the machine's
/// cores) and a pool of `workers` [`Noop`] workers, then shuts both down.
pub fn with_pool<T>(
    workers: usize,
    concurrency: usize,
    body: impl AsyncFnOnce(&Pool<Noop>) -> T,
) -> T {
    with_pool_on(workers, concurrency, async |pool, _| body(pool).await)
}

/// [`with_pool`], with the runtime the pool runs on passed to `body` too.
pub fn with_pool_on<T>(
    workers: usize,
    concurrency: usize,
    body: impl AsyncFnOnce(&Pool<Noop>, &Runtime) -> T,
) -> T {
    with_handler_on(Noop, workers, concurrency, body)
}

/// [`with_pool_on`] with workers that run `handler` (cloned per worker).
fn with_handler_on<H, T>(
    handler: H,
    workers: usize,
    concurrency: usize,
    body: impl AsyncFnOnce(&Pool<H>, &Runtime) -> T,
) -> T
where
    H: TaskHandler + Clone + Send + Sync,
{
    let system = actix::System::new();
    let out = system.block_on(async {
        let runtime = Runtime::builder()
            .worker_threads(2)
            .build()
            .expect("runtime");
        let pool = PoolBuilder::new(move || handler.clone())
            .config(config(workers, concurrency))
            .start(&runtime)
            .await
            .expect("pool starts");
        let out = body(&pool, &runtime).await;
        pool.shutdown_gracefully(Duration::from_secs(10)).await;
        runtime.shutdown().await;
        out
    });
    actix::System::current().stop();
    drop(system);
    out
}

/// Wall time of `shape.total()` no-op tasks from `shape.submitters`
/// concurrent submitters, each awaiting its result before the next, with
/// `concurrency` tasks at most in flight per worker (the default is 1).
pub fn throughput(shape: Shape, concurrency: usize) -> Duration {
    with_pool(shape.workers, concurrency, async |pool| {
        submitters(pool, shape, actix::spawn).await
    })
}

/// [`throughput`] (concurrency 1) of tasks that each block their worker's
/// thread for `block` ([`Blocking`]).
pub fn throughput_blocking(shape: Shape, block: Duration) -> Duration {
    with_handler_on(Blocking(block), shape.workers, 1, async |pool, _| {
        submitters(pool, shape, actix::spawn).await
    })
}

/// [`fan_out`](crate::peers::fan_out) of `shape`'s submitters, spawned
/// with `spawn`, each submitting a task and awaiting its result at a time.
async fn submitters<H, S, J, E>(pool: &Pool<H>, shape: Shape, spawn: S) -> Duration
where
    H: TaskHandler<Task = u64, Output = u64>,
    H::Error: std::fmt::Debug,
    S: Fn(crate::peers::Share) -> J,
    J: Future<Output = Result<usize, E>>,
    E: std::fmt::Debug,
{
    let pool = pool.clone();
    let call = move |_, _, n: u64| {
        let pool = pool.clone();
        async move {
            pool.submit(n)
                .expect("accepted")
                .await
                .expect("no-op succeeds")
        }
    };
    crate::peers::fan_out(shape, call, spawn).await
}

/// [`throughput`] with the submitters spread over the runtime's worker
/// threads, next to the workers (the arrangement ractor and kameo are
/// measured in by default: callers and actors on the same threads).
pub fn throughput_alongside(shape: Shape, concurrency: usize) -> Duration {
    with_pool_on(shape.workers, concurrency, async |pool, runtime| {
        let threads = runtime.worker_arbiters();
        let next = std::cell::Cell::new(0);
        let spawn = |share: crate::peers::Share| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let thread = &threads[next.replace(next.get() + 1) % threads.len()];
            thread.spawn(async move {
                let _ = tx.send(share.await);
            });
            rx
        };
        submitters(pool, shape, spawn).await
    })
}

/// [`throughput`] in the arrangement the README teaches: the application
/// started with `RuntimeBuilder::run` (on a worker thread, beside the
/// workers) and its submitters started with `Runtime::spawn`, which spreads
/// them over the worker threads. Two worker threads, the pool's defaults.
pub fn throughput_run(shape: Shape, concurrency: usize) -> Duration {
    Runtime::builder()
        .worker_threads(2)
        .run(async move |runtime| {
            let pool = PoolBuilder::new(|| Noop)
                .config(config(shape.workers, concurrency))
                .start(runtime)
                .await
                .expect("pool starts");
            let elapsed = submitters(&pool, shape, |share| runtime.spawn(share)).await;
            pool.shutdown_gracefully(Duration::from_secs(10)).await;
            elapsed
        })
        .expect("the application runs")
}

/// Submit-to-result latency of `samples` single tasks on an idle pool of
/// `workers`, one at a time, after a warm-up.
pub fn latency(workers: usize, samples: usize) -> Vec<Duration> {
    with_pool(workers, 1, async |pool| sample(pool, samples).await)
}

/// 100 warm-up tasks, then the submit-to-result time of `samples` tasks,
/// one at a time.
async fn sample<H>(pool: &Pool<H>, samples: usize) -> Vec<Duration>
where
    H: TaskHandler<Task = u64, Output = u64>,
    H::Error: std::fmt::Debug,
{
    for n in 0..100 {
        pool.submit(n).expect("accepted").await.expect("warm-up");
    }
    let mut out = Vec::with_capacity(samples);
    for n in 0..samples as u64 {
        let start = Instant::now();
        let got = pool
            .submit(n)
            .expect("accepted")
            .await
            .expect("no-op succeeds");
        out.push(start.elapsed());
        assert_eq!(got, n);
    }
    out
}

/// [`latency`] in the README's arrangement: the caller is the application
/// itself, started with `RuntimeBuilder::run` on a worker thread.
pub fn latency_run(workers: usize, samples: usize) -> Vec<Duration> {
    Runtime::builder()
        .worker_threads(2)
        .run(async move |runtime| {
            let pool = PoolBuilder::new(|| Noop)
                .config(config(workers, 1))
                .start(runtime)
                .await
                .expect("pool starts");
            let out = sample(&pool, samples).await;
            pool.shutdown_gracefully(Duration::from_secs(10)).await;
            out
        })
        .expect("the application runs")
}
