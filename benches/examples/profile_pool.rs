//! Runs one system's throughput shape alone (4 × 64 unless given), for profilers:
//! `perf record -g target/release/examples/profile_pool [run|candado|actix|tokio|kameo|kameo-apart|alongside|faults|fault-free|process|procspawn] [workers] [submitters] [µs of CPU per request]`.
//! With CPU work, each run lasts about a second of the cores' limit, and
//! the share of that limit is printed too.

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
    let micros = number(4, 0);
    let per_request = std::time::Duration::from_micros(micros as u64);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limit = candado_bench::work::limit(cores, per_request);
    candado_bench::work::set(per_request);
    let shape = Shape {
        workers: number(2, 4),
        submitters: number(3, 64),
        requests: if micros == 0 {
            1_000_000
        } else {
            limit as usize
        },
    };
    for _ in 0..3 {
        let elapsed = match system.as_str() {
            "actix" => peers::actix_rr::throughput(shape),
            "kameo" => peers::kameo_pool::throughput(shape),
            "tokio" => peers::tokio_mpsc::throughput(shape),
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
        let rate = rate(shape, elapsed);
        if micros == 0 {
            eprintln!("{system}: {:.0}k/s", rate / 1e3);
        } else {
            eprintln!(
                "{system}: {:.1}k/s ({:.1}% of the limit)",
                rate / 1e3,
                rate / limit * 100.0
            );
        }
    }
}
