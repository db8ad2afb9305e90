//! The throughput and latency sections of `compare`: no-op request/reply
//! next to the peers, the same under CPU work per request, and latency.
//!
//! Candado's headline column is the arrangement the README teaches: the
//! application started with `RuntimeBuilder::run` and its submitters with
//! `Runtime::spawn` ([`pool::throughput_run`]). The other arrangements are
//! labelled extras, so every figure can be read like for like.

use std::time::Duration;

use candado_bench::stats::{quantile, Summary};
use candado_bench::{peers, pool, rate, work, Shape};

use super::{fmt_rate, fmt_rate_fine, Targets};

/// The systems of the no-op table, in column order.
const SYSTEMS: [&str; 9] = [
    "tokio mpsc (floor)",
    "actix",
    "ractor factory",
    "kameo pool",
    "**candado pool** (README: `run`)",
    "candado pool, callers on the System arbiter",
    "candado pool, callers on the System arbiter, concurrency 16",
    "ractor factory, callers apart",
    "kameo pool, callers apart",
];

fn throughput(system: usize, shape: Shape) -> Duration {
    match system {
        0 => peers::tokio_mpsc::throughput(shape),
        1 => peers::actix_rr::throughput(shape),
        2 => peers::ractor_factory::throughput(shape),
        3 => peers::kameo_pool::throughput(shape),
        4 => pool::throughput_run(shape, 1),
        5 => pool::throughput(shape, 1),
        6 => pool::throughput(shape, 16),
        7 => peers::ractor_factory::throughput_apart(shape),
        _ => peers::kameo_pool::throughput_apart(shape),
    }
}

/// Runs `systems` on `shape` `runs` times, round-robin over the systems
/// run by run, so a noisy spell of the machine hits them all alike.
fn interleaved(systems: &[usize], shape: Shape, runs: usize) -> Vec<Summary> {
    let mut samples = vec![Vec::with_capacity(runs); systems.len()];
    for _ in 0..runs {
        for (out, &system) in samples.iter_mut().zip(systems) {
            out.push(rate(shape, throughput(system, shape)));
        }
    }
    samples.iter().map(|v| Summary::of(v)).collect()
}

/// The no-op table, with its targets (issue 22).
pub(crate) fn no_op(
    workers: &[usize],
    submitters: &[usize],
    many: usize,
    runs: usize,
    targets: &mut Targets,
) {
    println!("## No-op request/reply throughput (requests/s)\n");
    println!(
        "Candado's first column is the README's arrangement (`RuntimeBuilder::run`, submitters started with `Runtime::spawn`: the application on the worker threads, beside the workers); the others are extras.\n"
    );
    println!(
        "| workers | submitters | {} | candado / kameo | candado / ractor | candado / floor |",
        SYSTEMS.join(" | ")
    );
    println!("|---|---|{}---|---|---|", "---|".repeat(SYSTEMS.len()));
    let all: Vec<usize> = (0..SYSTEMS.len()).collect();
    for &workers in workers {
        for &submitters in submitters {
            let requests = if submitters == 1 { many / 10 } else { many };
            let shape = Shape {
                workers,
                submitters,
                requests,
            };
            let results = interleaved(&all, shape, runs);
            let cells: Vec<String> = results.iter().map(fmt_rate).collect();
            let m = |i: usize| results[i].median;
            let (floor, ractor, kameo, candado) = (m(0), m(2), m(3), m(4));
            println!(
                "| {workers} | {submitters} | {} | {:.2} | {:.2} | {:.2} |",
                cells.join(" | "),
                candado / kameo,
                candado / ractor,
                candado / floor,
            );
            let ratios = format!(
                "{:.2}× kameo, {:.2}× ractor",
                candado / kameo,
                candado / ractor
            );
            match (workers, submitters) {
                (1, 1) => targets.add(
                    "README arrangement, 1 × 1: pool ≥ kameo's pool",
                    ratios,
                    candado >= kameo,
                ),
                (4 | 64, 64) => targets.add(
                    &format!(
                        "README arrangement, {workers} × 64: pool ≥ 1.5× kameo's pool and ≥ ractor's factory"
                    ),
                    ratios,
                    candado >= 1.5 * kameo && candado >= ractor,
                ),
                _ => {}
            }
            if (workers, submitters) == (4, 64) {
                let (apart, ractor_apart, kameo_apart) = (m(5), m(7), m(8));
                targets.add(
                    "(extra) callers on their own thread, workers on 2, for all three: pool ahead of ractor's factory and kameo's pool",
                    format!(
                        "{:.2}× ractor, {:.2}× kameo",
                        apart / ractor_apart,
                        apart / kameo_apart
                    ),
                    apart > ractor_apart && apart > kameo_apart,
                );
            }
        }
    }
}

/// The systems of the CPU-work table: the floor, the peers in their own
/// arrangement, and Candado in the README's.
const CPU_SYSTEMS: [usize; 4] = [0, 2, 3, 4];

/// 4 workers × 64 submitters, each request spinning `work` of CPU in its
/// handler, against the most the machine's cores allow.
pub(crate) fn cpu_work(cores: usize, quick: bool, runs: usize, targets: &mut Targets) {
    println!("\n## CPU-bound requests: 4 workers × 64 submitters, each request spins in its handler (requests/s)\n");
    println!(
        "The limit is {cores} cores ÷ the work per request; each cell is the rate and its share of that limit.\n"
    );
    let names: Vec<&str> = CPU_SYSTEMS.iter().map(|&s| SYSTEMS[s]).collect();
    println!("| work per request | limit | {} |", names.join(" | "));
    println!("|---|---|{}", "---|".repeat(names.len()));
    for micros in [50, 500] {
        let per_request = Duration::from_micros(micros);
        let limit = work::limit(cores, per_request);
        // About a second of work per run (a tenth in a quick pass).
        let seconds = if quick { 0.1 } else { 1.0 };
        let shape = Shape {
            workers: 4,
            submitters: 64,
            requests: ((limit * seconds) as usize).max(64),
        };
        work::set(per_request);
        let results = interleaved(&CPU_SYSTEMS, shape, runs);
        work::set(Duration::ZERO);
        let cells: Vec<String> = results
            .iter()
            .map(|s| format!("{} ({:.1}%)", fmt_rate_fine(s), s.median / limit * 100.0))
            .collect();
        println!(
            "| {micros} µs | {:.1}k | {} |",
            limit / 1e3,
            cells.join(" | ")
        );
        if micros == 50 {
            let share = results[3].median / limit;
            // The floor's share in the same run: what a channel hop and a
            // reply alone leave of the limit on this machine today.
            let floor = results[0].median / limit;
            targets.add(
                "README arrangement, 4 × 64, 50 µs of CPU per request: pool ≥ 97% of the cores' limit",
                format!(
                    "{:.1}% (the tokio floor {:.1}% in this run)",
                    share * 100.0,
                    floor * 100.0
                ),
                share >= 0.97,
            );
        }
    }
}

fn latency(system: usize, workers: usize, samples: usize) -> Vec<Duration> {
    match system {
        0 => peers::tokio_mpsc::latency(workers, samples),
        1 => peers::actix_rr::latency(workers, samples),
        2 => peers::ractor_factory::latency(workers, samples),
        3 => peers::kameo_pool::latency(workers, samples),
        4 => pool::latency_run(workers, samples),
        _ => pool::latency(workers, samples),
    }
}

/// Submit-to-result latency on an idle set of 4 workers.
pub(crate) fn latency_table(quick: bool) {
    let samples = if quick { 200 } else { 2_000 };
    println!("\n## Submit-to-result latency, one task at a time, 4 idle workers (µs)\n");
    println!("| system | p50 | p99 |");
    println!("|---|---|---|");
    for (s, name) in SYSTEMS.iter().enumerate().take(6) {
        let us: Vec<f64> = latency(s, 4, samples)
            .iter()
            .map(|d| d.as_secs_f64() * 1e6)
            .collect();
        println!(
            "| {name} | {:.1} | {:.1} |",
            quantile(&us, 0.5),
            quantile(&us, 0.99)
        );
    }
}
