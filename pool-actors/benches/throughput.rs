//! No-op task throughput through the whole pool (submit, priority heap,
//! dispatch, worker, result back to the caller), next to raw actix
//! request/reply to the same number of actors on their own threads, in the
//! same run: the ratio is what matters on a noisy machine.
//!
//! Run: `cargo bench -p candado-pool --bench throughput`

use std::future::Future;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Arbiter, Context, Handler, Message};
use candado::Runtime;
use candado_pool::{PoolBuilder, PoolConfig, TaskContext, TaskHandler};
use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};

const WORKERS: usize = 4;
const SUBMITTERS: usize = 64;

struct Noop;

impl TaskHandler for Noop {
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

struct Echo;

impl Actor for Echo {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "u64")]
struct Ping(u64);

impl Handler<Ping> for Echo {
    type Result = u64;
    fn handle(&mut self, Ping(n): Ping, _: &mut Context<Self>) -> u64 {
        n
    }
}

/// Runs `total` requests from `SUBMITTERS` concurrent submitters; returns the time.
async fn fan_out<F, Fut>(total: u64, request: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let per = (total / SUBMITTERS as u64).max(1);
    let start = Instant::now();
    let mut joins = Vec::new();
    for s in 0..SUBMITTERS as u64 {
        let request = request.clone();
        joins.push(actix::spawn(async move {
            for i in 0..per {
                request(s * per + i).await;
            }
        }));
    }
    for j in joins {
        let _ = j.await;
    }
    start.elapsed()
}

fn throughput(c: &mut Criterion) {
    let system = actix::System::new();
    let mut group = c.benchmark_group("noop_4_workers_64_submitters");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));

    // Baseline: raw actix request/reply, 4 actors on 4 arbiters, round-robin.
    let actors: Vec<Addr<Echo>> = system.block_on(async {
        (0..WORKERS)
            .map(|_| Echo::start_in_arbiter(&Arbiter::new().handle(), |_| Echo))
            .collect()
    });
    group.bench_function(BenchmarkId::new("actix_request_reply", WORKERS), |b| {
        b.iter_custom(|iters| {
            let actors = actors.clone();
            system.block_on(fan_out(iters, move |n| {
                let actor = actors[n as usize % WORKERS].clone();
                async move {
                    let _ = actor.send(Ping(n)).await;
                }
            }))
        })
    });

    // Candado pool: 4 workers, default config (liveness and breakers on).
    let (runtime, pool) = system.block_on(async {
        let runtime = Runtime::builder().worker_threads(WORKERS).build().unwrap();
        let config = PoolConfig {
            size: WORKERS,
            queue_bound: 1_000_000,
            ..PoolConfig::default()
        };
        let pool = PoolBuilder::new(|| Noop)
            .config(config)
            .start(&runtime)
            .await
            .unwrap();
        (runtime, pool)
    });
    group.bench_function(BenchmarkId::new("candado_pool", WORKERS), |b| {
        b.iter_custom(|iters| {
            let pool = pool.clone();
            system.block_on(fan_out(iters, move |n| {
                let handle = pool.submit(n);
                async move {
                    let _ = handle.expect("queue bound is large").await;
                }
            }))
        })
    });
    group.finish();
    system.block_on(async {
        pool.shutdown_gracefully(Duration::from_secs(5)).await;
        runtime.shutdown().await;
    });
}

// The macro generates an undocumented function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::throughput);
}
use group::benches;
criterion_main!(benches);
