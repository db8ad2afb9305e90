//! Candado's durable store end to end, in a loop, for a profiler:
//! `cargo run --release -p candado-bench --example profile_durable -- [NODES] [JOBS] [ROUNDS]`.
//! Starts a throwaway PostgreSQL (see `compare --only durable`) unless
//! `CANDADO_BENCH_PG_URL` names one, and prints jobs/s per round.

use candado_bench::durable::{candado, server};

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let nodes = args.first().copied().unwrap_or(1);
    let jobs = args.get(1).copied().unwrap_or(30_000);
    let rounds = args.get(2).copied().unwrap_or(5);
    let (url, _server) = match std::env::var("CANDADO_BENCH_PG_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let (url, s) = server::start_bench()?;
            (url, Some(s))
        }
    };
    eprintln!("database: {url}");
    for _ in 0..rounds {
        let elapsed = candado::throughput(&url, nodes, jobs)?;
        println!(
            "{nodes} node(s), {jobs} jobs: {:.0} jobs/s",
            jobs as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}
