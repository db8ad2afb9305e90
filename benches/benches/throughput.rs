//! Micro benchmarks with criterion: no-op request/reply through the Candado
//! pool next to the tokio mpsc floor and raw actix, 4 workers and 64
//! submitters, plus single-task latency on an idle pool. Each iteration
//! measures only the request phase of a fresh runtime (see `candado_bench`).
//!
//! Run: `cargo bench -p candado-bench --bench throughput`. The whole
//! side-by-side set (peers included) is the `compare` binary.

use std::time::Duration;

use candado_bench::{peers, pool, Shape};
use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};

fn shape(requests: u64) -> Shape {
    Shape {
        workers: 4,
        submitters: 64,
        requests: usize::try_from(requests).unwrap_or(usize::MAX).max(64),
    }
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("noop_4_workers_64_submitters");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("tokio_mpsc_floor", 4), |b| {
        b.iter_custom(|iters| peers::tokio_mpsc::throughput(shape(iters)))
    });
    group.bench_function(BenchmarkId::new("actix_request_reply", 4), |b| {
        b.iter_custom(|iters| peers::actix_rr::throughput(shape(iters)))
    });
    group.bench_function(BenchmarkId::new("candado_pool", 4), |b| {
        b.iter_custom(|iters| pool::throughput(shape(iters), 1))
    });
    group.finish();
}

fn latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("single_task_latency_idle_pool");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("candado_pool", |b| {
        b.iter_custom(|iters| {
            let samples = usize::try_from(iters).unwrap_or(usize::MAX);
            pool::latency(4, samples).iter().sum()
        })
    });
    group.finish();
}

// The macro generates an undocumented function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::throughput, super::latency);
}
use group::benches;
criterion_main!(benches);
