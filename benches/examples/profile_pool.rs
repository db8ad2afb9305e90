//! Runs one system's throughput shape alone (4 × 64 unless given), for profilers:
//! `perf record -g target/release/examples/profile_pool [run|candado|actix|kameo|kameo-apart|alongside|faults|fault-free|process|procspawn] [workers] [submitters]`.

use candado_bench::process_workers::{self, Work};
use candado_bench::{failure, peers, pool, rate, Shape};

fn main() {
    // `process` and `procspawn` re-run this binary as their workers.
    process_workers::serve_if_worker();
    procspawn::init();
    let system = std::env::args().nth(1).unwrap_or_else(|| "candado".into());
    let number = |n: usize, default: usize| {
        std::env::args()
            .nth(n)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let shape = Shape {
        workers: number(2, 4),
        submitters: number(3, 64),
        requests: 1_000_000,
    };
    for _ in 0..3 {
        let elapsed = match system.as_str() {
            "actix" => peers::actix_rr::throughput(shape),
            "kameo" => peers::kameo_pool::throughput(shape),
            "kameo-apart" => peers::kameo_pool::throughput_apart(shape),
            "faults" | "fault-free" => {
                let window = std::time::Duration::from_secs(3);
                let run = failure::throughput_with_faults(100, window, system == "faults");
                eprintln!(
                    "{system}: {:.0}k/s (whole run {:.0}k/s), {} restarts",
                    run.rate / 1e3,
                    run.whole_rate / 1e3,
                    run.restarts
                );
                continue;
            }
            "alongside" => pool::throughput_alongside(shape, 1),
            "run" => pool::throughput_run(shape, 1),
            "process" => process_workers::throughput(shape, Work::Noop),
            "procspawn" => {
                // A tenth of the tasks: procspawn runs about 30k a second.
                let shape = Shape {
                    requests: shape.requests / 10,
                    ..shape
                };
                let elapsed = peers::procspawn_pool::throughput(shape, std::time::Duration::ZERO);
                eprintln!("{system}: {:.0}k/s", rate(shape, elapsed) / 1e3);
                continue;
            }
            _ => pool::throughput(shape, 1),
        };
        eprintln!("{system}: {:.0}k/s", rate(shape, elapsed) / 1e3);
    }
}
