//! Every peer answers a tiny throughput shape and a short latency run, twice
//! in a row in the same thread, proving each call builds and tears down its
//! own runtime (or actix System) cleanly.

use std::time::Duration;

use candado_bench::{peers, Shape};

const SHAPE: Shape = Shape {
    workers: 2,
    submitters: 4,
    requests: 400,
};

const SAMPLES: usize = 10;

/// Runs `throughput` and `latency` twice each and checks what they return.
fn check(throughput: fn(Shape) -> Duration, latency: fn(usize, usize) -> Vec<Duration>) {
    for _ in 0..2 {
        assert!(throughput(SHAPE) > Duration::ZERO);
        let samples = latency(2, SAMPLES);
        assert_eq!(samples.len(), SAMPLES);
        assert!(samples.iter().all(|s| *s > Duration::ZERO));
    }
}

#[test]
fn tokio_mpsc_runs_twice() {
    check(peers::tokio_mpsc::throughput, peers::tokio_mpsc::latency);
}

#[test]
fn actix_rr_runs_twice() {
    check(peers::actix_rr::throughput, peers::actix_rr::latency);
}

#[test]
fn ractor_factory_runs_twice() {
    check(
        peers::ractor_factory::throughput,
        peers::ractor_factory::latency,
    );
}

#[test]
fn kameo_pool_runs_twice() {
    check(peers::kameo_pool::throughput, peers::kameo_pool::latency);
}

#[test]
fn candado_pool_runs_twice_in_the_readme_arrangement_with_callers_apart_and_alongside() {
    use candado_bench::pool;
    check(|shape| pool::throughput_run(shape, 1), pool::latency_run);
    check(|shape| pool::throughput(shape, 1), pool::latency);
    check(|shape| pool::throughput_alongside(shape, 1), pool::latency);
}
