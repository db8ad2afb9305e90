//! Runs only the Candado pool's 4 × 64 throughput shape, for profilers:
//! `perf record -g target/release/examples/profile_pool`.

use candado_bench::{pool, rate, Shape};

fn main() {
    let shape = Shape {
        workers: 4,
        submitters: 64,
        requests: 1_000_000,
    };
    for _ in 0..3 {
        let rate = rate(shape, pool::throughput(shape, 1));
        eprintln!("{:.0}k/s", rate / 1e3);
    }
}
