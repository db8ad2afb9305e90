//! Runs Candado and its peers side by side in one invocation and prints a
//! Markdown report (throughput, latency, supervision cost, failure handling,
//! targets). See `docs/performance.md`.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context as _};
use candado_bench::process_workers::{self, Hang, Work};
use candado_bench::stats::Summary;
use candado_bench::supervision::{self, Kind, SpawnReport};
use candado_bench::{failure, peers, pool, rate, Shape};
use clap::Parser;

#[path = "compare/durable.rs"]
mod durable;
#[path = "compare/throughput.rs"]
mod throughput;

/// Candado next to tokio mpsc, actix, ractor and kameo, on this machine, now.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Runs per measurement (the median and spread are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Requests per throughput run with many submitters (a tenth with one).
    #[arg(long, default_value_t = 200_000)]
    requests: usize,
    /// Largest supervised spawn measured (10,000 and this).
    #[arg(long, default_value_t = 100_000)]
    max_spawn: usize,
    /// A quick pass with small counts (a smoke test of the harness).
    #[arg(long)]
    quick: bool,
    /// Only these sections (throughput, cpu, latency, supervision, failure, process, durable).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Throughput: only these worker counts (default 1,4,64).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 64])]
    workers: Vec<usize>,
    /// Throughput: only these submitter counts (default 1,64).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 64])]
    submitters: Vec<usize>,
    /// Durable section: the PostgreSQL to measure on (a scratch database:
    /// the section deletes its own queue's rows). Default: a throwaway
    /// server started from the installed PostgreSQL, or the section is
    /// skipped when there is none.
    #[arg(long)]
    pg_url: Option<String>,
    /// Durable section: jobs per Candado run (apalis-postgres gets a quarter).
    #[arg(long, default_value_t = 30_000)]
    durable_jobs: usize,
    /// Internal: one spawn measurement in this fresh process, as JSON.
    #[arg(long, hide = true, num_args = 4, value_names = ["KIND", "COUNT", "HEARTBEAT_MS", "IDLE_MS"])]
    probe_spawn: Option<Vec<String>>,
}

fn repeat(runs: usize, mut f: impl FnMut() -> f64) -> Summary {
    let values: Vec<f64> = (0..runs).map(|_| f()).collect();
    Summary::of(&values)
}

pub(crate) fn fmt_rate(s: &Summary) -> String {
    format!("{:.0}k ±{:.0}%", s.median / 1e3, s.spread_percent())
}

/// Runs one spawn measurement in a child process of this binary.
fn probe(
    kind: Kind,
    count: usize,
    heartbeat: Duration,
    idle: Duration,
) -> anyhow::Result<SpawnReport> {
    let out = Command::new(std::env::current_exe()?)
        .arg("--probe-spawn")
        .args([
            serde_json::to_string(&kind)?,
            count.to_string(),
            heartbeat.as_millis().to_string(),
            idle.as_millis().to_string(),
        ])
        .output()
        .context("running the spawn probe")?;
    if !out.status.success() {
        bail!(
            "spawn probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

pub(crate) struct Targets(Vec<(String, String, bool)>);

impl Targets {
    pub(crate) fn add(&mut self, target: &str, measured: String, met: bool) {
        self.0.push((target.to_owned(), measured, met));
    }
}

fn main() -> anyhow::Result<()> {
    // Worker processes re-run this binary: Candado's serve calls and
    // procspawn's run their task, and neither returns. Each looks for its
    // own environment variable, so their order does not matter; ours goes
    // first so procspawn's setup never runs in our workers.
    process_workers::serve_if_worker();
    candado_bench::durable::serve_if_victim();
    procspawn::init();
    let args = Args::parse();
    // The failure benchmarks crash workers on purpose: keep their panics quiet.
    std::panic::set_hook(Box::new(|_| {}));
    if let Some(p) = &args.probe_spawn {
        let kind: Kind = serde_json::from_str(&p[0])?;
        let report = supervision::spawn(
            kind,
            p[1].parse()?,
            Duration::from_millis(p[2].parse()?),
            Duration::from_millis(p[3].parse()?),
        );
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let (runs, many, max_spawn, idle) = if args.quick {
        (1, 2_000, 2_000, Duration::from_millis(300))
    } else {
        (
            args.runs.max(1),
            args.requests,
            args.max_spawn,
            Duration::from_secs(5),
        )
    };
    let mut targets = Targets(Vec::new());
    let wants = |section: &str| args.only.is_empty() || args.only.iter().any(|s| s == section);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# Candado side by side\n");
    println!(
        "{cpus} CPUs; every number is the median of {runs} run(s), ± half the spread as a percentage of the median.\n"
    );

    if wants("throughput") {
        throughput::no_op(&args.workers, &args.submitters, many, runs, &mut targets);
    }
    if wants("cpu") {
        throughput::cpu_work(cpus, args.quick, runs, &mut targets);
    }
    if wants("latency") {
        throughput::latency_table(args.quick);
    }
    if wants("supervision") {
        // 4. Supervision cost, each in a fresh process.
        println!("\n## Supervision cost (idle workers, fresh process each)\n");
        println!("| what | count | spawn time | RSS per actor | beyond a plain actix actor | idle CPU (% of one core) |");
        println!("|---|---|---|---|---|---|");
        let default_hb = Duration::from_secs(2);
        for count in [(max_spawn / 2).min(10_000), max_spawn] {
            let plain = probe(Kind::Actix, count, default_hb, idle)?;
            let sup = probe(Kind::Supervised, count, default_hb, idle)?;
            let dynamic = probe(Kind::Dynamic, count, default_hb, idle)?;
            let beyond = sup.bytes_per_actor - plain.bytes_per_actor;
            let dynamic_beyond = dynamic.bytes_per_actor - plain.bytes_per_actor;
            for (name, r, extra) in [
                ("actix actor", &plain, String::from("—")),
                ("supervised, heartbeat 2 s", &sup, format!("{beyond:.0} B")),
                (
                    "dynamic child (`start_child`, 1,024 in flight), no heartbeat",
                    &dynamic,
                    format!("{dynamic_beyond:.0} B"),
                ),
            ] {
                println!(
                    "| {name} | {count} | {:.0} ms | {:.0} B | {extra} | {:.2} |",
                    r.spawn_ms, r.bytes_per_actor, r.idle_cpu_percent
                );
            }
            if count == max_spawn {
                targets.add(
                    "RSS per idle supervised worker ≤ 2,600 B including the actor",
                    format!(
                        "{:.0} B at {count} ({beyond:.0} B beyond a plain actix actor)",
                        sup.bytes_per_actor
                    ),
                    sup.bytes_per_actor <= 2_600.0,
                );
                targets.add(
                    &format!("spawn {count} supervised workers ≤ 0.5 s"),
                    format!("{:.2} s", sup.spawn_ms / 1e3),
                    sup.spawn_ms <= 500.0,
                );
            } else {
                targets.add(
                    &format!(
                        "heartbeats of {count} workers at the default interval < 2% of a core"
                    ),
                    format!("{:.2}%", sup.idle_cpu_percent),
                    sup.idle_cpu_percent < 2.0,
                );
            }
        }
        let fast = probe(
            Kind::Supervised,
            (max_spawn / 2).min(10_000),
            Duration::from_millis(100),
            idle,
        )?;
        println!(
            "| supervised, heartbeat 100 ms | {} | {:.0} ms | {:.0} B | | {:.2} |",
            fast.count, fast.spawn_ms, fast.bytes_per_actor, fast.idle_cpu_percent
        );
    }
    if wants("failure") {
        // 5. Failure handling.
        println!("\n## Failure handling\n");
        println!("| measurement | median | spread |");
        println!("|---|---|---|");
        for backoff in [Duration::from_millis(100), Duration::from_millis(1)] {
            let s = repeat(runs.max(3), || {
                failure::panic_to_replacement(backoff).as_secs_f64() * 1e3
            });
            println!(
            "| panic → replacement completes a task (restart backoff {} ms) | {:.1} ms | {:.1}–{:.1} ms |",
            backoff.as_millis(),
            s.median,
            s.min,
            s.max
        );
        }
        let (interval, timeout) = (Duration::from_millis(200), Duration::from_secs(1));
        // The blocks are spread evenly over a tick of the supervisor.
        let silences: Vec<_> = (0..runs)
            .map(|run| {
                let phase = failure::TICK * run as u32 / runs as u32;
                failure::silence_to_replacement(interval, timeout, phase)
            })
            .collect();
        let bound = timeout + failure::TICK;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let detected = Summary::of(&silences.iter().map(|s| ms(s.detected)).collect::<Vec<_>>());
        let replaced = Summary::of(&silences.iter().map(|s| ms(s.replaced)).collect::<Vec<_>>());
        println!(
            "| thread blocked (heartbeat 200 ms, timeout 1 s, tick 1 s; blocks spread over a tick) → liveness restart verdict | {:.0} ms | {:.0}–{:.0} ms |",
            detected.median, detected.min, detected.max
        );
        println!(
            "| thread blocked → replacement completes a task (+ 100 ms shutdown timeout, restart backoff) | {:.0} ms | {:.0}–{:.0} ms |",
            replaced.median, replaced.min, replaced.max
        );
        // The verdict reaches the harness through threads that may be
        // descheduled for a moment on a busy machine.
        let scheduling = Duration::from_millis(10);
        targets.add(
            "silent worker found within timeout + one tick of its last heartbeat",
            format!(
                "{:.0}–{:.0} ms after the block (bound {} ms from the last heartbeat, at or before it)",
                detected.min,
                detected.max,
                bound.as_millis()
            ),
            detected.max <= ms(bound + scheduling),
        );
        let workers = 100;
        let window = if args.quick {
            Duration::from_millis(600)
        } else {
            Duration::from_secs(3)
        };
        // Fault-free and faulty runs alternate, so a noisy spell of the
        // machine hits both alike.
        let (mut clean, mut faulty) = (Vec::new(), Vec::new());
        let (mut lost, mut restarts) = (0, 0);
        for _ in 0..runs {
            clean.push(failure::throughput_with_faults(workers, window, false).rate);
            let r = failure::throughput_with_faults(workers, window, true);
            lost += r.not_completed;
            restarts += r.restarts;
            faulty.push(r.rate);
        }
        let (clean, faulty) = (Summary::of(&clean), Summary::of(&faulty));
        let share = faulty.median / clean.median;
        println!(
            "| throughput, {workers} workers, fault-free (steady state: {} ms counted after {} ms of warm-up) | {} | |",
            window.as_millis(),
            failure::WARM_UP.as_millis(),
            fmt_rate(&clean)
        );
        println!(
        "| throughput, 10% of tasks fail once, 1% of workers hang | {} ({:.0}% of fault-free; {restarts} restarts, {lost} not completed) | |",
        fmt_rate(&faulty),
        share * 100.0
    );
        targets.add(
            "≥ 80% of fault-free throughput under 10% failures and 1% hangs, none lost",
            format!("{:.0}%, {lost} not completed", share * 100.0),
            share >= 0.8 && lost == 0,
        );
    }
    if wants("process") {
        process_section(args.quick, runs, &mut targets);
    }
    if wants("durable") {
        durable::section(
            args.pg_url.as_deref(),
            !args.only.is_empty(),
            args.quick,
            runs,
            args.durable_jobs,
            &mut targets,
        )?;
    }
    println!("\n## Targets\n");
    if args.quick {
        println!(
            "A `--quick` smoke run: one run at small counts, so these verdicts say nothing about the targets.\n"
        );
    }
    println!("| target | measured | met |");
    println!("|---|---|---|");
    for (t, m, met) in &targets.0 {
        println!("| {t} | {m} | {} |", if *met { "yes" } else { "**no**" });
    }
    Ok(())
}

/// A rate in thousands, with two decimals below 10k.
pub(crate) fn fmt_rate_fine(s: &Summary) -> String {
    let k = s.median / 1e3;
    let digits = if k < 10.0 { 2 } else { 0 };
    format!("{k:.digits$}k ±{:.0}%", s.spread_percent())
}

/// Process workers (`candado-process`) next to the in-process pool and
/// procspawn's pool: spawn, idle memory, throughput, a hung process.
fn process_section(quick: bool, runs: usize, targets: &mut Targets) {
    let (spawned, idle) = if quick {
        (4, Duration::from_millis(100))
    } else {
        (8, Duration::from_millis(500))
    };
    // Tasks per run: procspawn gets fewer no-ops (it is far slower), and
    // everyone fewer 1 ms tasks; a rate is a rate.
    let (noop, noop_peer, slow) = if quick {
        (2_000, 500, 200)
    } else {
        (40_000, 8_000, 2_000)
    };
    let sleep = Duration::from_millis(1);
    let shape = |requests| Shape {
        workers: 4,
        submitters: 64,
        requests,
    };
    println!("\n## Process workers\n");
    println!(
        "4 workers, 64 submitters (16 tasks in flight per worker), no-op tasks and 1 ms tasks \
         (`std::thread::sleep(1 ms)` in the handler: it blocks its thread); spawn: {spawned} workers \
         asked for at once, timed until each answered a call; memory read {} ms later.\n",
        idle.as_millis()
    );
    // Rows: process workers, the in-process pool, procspawn's pool. The
    // systems take turns, run by run, so a noisy spell hits them alike.
    let mut spawn_ms = [vec![], vec![], vec![]];
    let (mut rss, mut anon) = (spawn_ms.clone(), spawn_ms.clone());
    let (mut fast, mut blocked) = (spawn_ms.clone(), spawn_ms.clone());
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    for _ in 0..runs {
        let ours = process_workers::spawn(spawned, idle);
        let theirs = peers::procspawn_pool::spawn(spawned, idle);
        for (row, report) in [(0, ours), (2, theirs)] {
            spawn_ms[row].push(report.per_worker.as_secs_f64() * 1e3);
            rss[row].push(mib(report.rss_per_worker));
            anon[row].push(mib(report.anon_per_worker));
        }
        let (ours, peer, slow) = (shape(noop), shape(noop_peer), shape(slow));
        fast[0].push(rate(ours, process_workers::throughput(ours, Work::Noop)));
        fast[1].push(rate(ours, pool::throughput(ours, 1)));
        fast[2].push(rate(
            peer,
            peers::procspawn_pool::throughput(peer, Duration::ZERO),
        ));
        blocked[0].push(rate(
            slow,
            process_workers::throughput(slow, Work::Sleep(sleep)),
        ));
        blocked[1].push(rate(slow, pool::throughput_blocking(slow, sleep)));
        blocked[2].push(rate(slow, peers::procspawn_pool::throughput(slow, sleep)));
    }
    let summarise = |rows: &[Vec<f64>; 3]| rows.each_ref().map(|v| Summary::of(v));
    let (spawn_ms, rss, anon) = (summarise(&spawn_ms), summarise(&rss), summarise(&anon));
    let (fast, blocked) = (summarise(&fast), summarise(&blocked));
    println!("| system | spawn per worker | idle RSS per worker (anonymous part) | no-op tasks/s | 1 ms tasks/s |");
    println!("|---|---|---|---|---|");
    let names = [
        "candado process workers (`ProcessChild`, `Call`)",
        "candado pool, in-process workers (2 threads)",
        "procspawn pool (64 submitter threads)",
    ];
    for (row, name) in names.iter().enumerate() {
        let (spawn, memory) = if row == 1 {
            ("—".to_owned(), "—".to_owned())
        } else {
            (
                format!(
                    "{:.1} ms ±{:.0}%",
                    spawn_ms[row].median,
                    spawn_ms[row].spread_percent()
                ),
                format!("{:.1} MiB ({:.2} MiB)", rss[row].median, anon[row].median),
            )
        };
        println!(
            "| {name} | {spawn} | {memory} | {} | {} |",
            fmt_rate_fine(&fast[row]),
            fmt_rate_fine(&blocked[row])
        );
    }
    let ratio = |rows: &[Summary; 3]| rows[0].median / rows[2].median;
    println!(
        "| candado process workers / procspawn | {:.2} | {:.2} ({:.2}) | {:.2} | {:.2} |",
        ratio(&spawn_ms),
        ratio(&rss),
        ratio(&anon),
        ratio(&fast),
        ratio(&blocked)
    );

    let (timeout, tick) = (process_workers::PROGRESS_TIMEOUT, process_workers::TICK);
    let bound = timeout + tick + Duration::from_millis(100);
    println!(
        "\n| one worker hangs (progress timeout {} ms, heartbeat timeout {} ms, tick {} ms, process heartbeat {} ms, shutdown timeout {} ms; hangs spread over a tick) | → liveness restart verdict | → the replacement completes a task |",
        timeout.as_millis(),
        process_workers::HEARTBEAT_TIMEOUT.as_millis(),
        tick.as_millis(),
        process_workers::HEARTBEAT.as_millis(),
        process_workers::SHUTDOWN_TIMEOUT.as_millis()
    );
    println!("|---|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let span = |s: &Summary| format!("{:.0} ms ({:.0}–{:.0})", s.median, s.min, s.max);
    for (hang, what, target) in [
        (
            Hang::Spin,
            "its handler spins in `loop {}` (heartbeats go on)",
            "a hung process (handler in `loop {}`) replaced within progress timeout + one tick + 100 ms",
        ),
        (
            Hang::Freeze,
            "the process is frozen (SIGSTOP; no heartbeat: silent, then SIGKILL at once)",
            "a frozen process (SIGSTOP) replaced within heartbeat timeout + one tick + 100 ms",
        ),
    ] {
        let hangs: Vec<_> = (0..runs)
            .map(|run| process_workers::hang_to_replacement(hang, tick * run as u32 / runs as u32))
            .collect();
        let detected = Summary::of(&hangs.iter().map(|h| ms(h.detected)).collect::<Vec<_>>());
        let replaced = Summary::of(&hangs.iter().map(|h| ms(h.replaced)).collect::<Vec<_>>());
        println!("| {what} | {} | {} |", span(&detected), span(&replaced));
        targets.add(
            target,
            format!(
                "{:.0}–{:.0} ms (bound {} ms; verdict after {:.0}–{:.0} ms)",
                replaced.min,
                replaced.max,
                bound.as_millis(),
                detected.min,
                detected.max
            ),
            replaced.max <= ms(bound),
        );
    }
    targets.add(
        "no-op throughput through 4 process workers ≥ 100k tasks/s",
        format!("{:.0}k", fast[0].median / 1e3),
        fast[0].median >= 100_000.0,
    );
    targets.add(
        "no-op throughput through 4 process workers ≥ 2× procspawn's pool",
        format!(
            "{:.2}× ({:.0}k vs {:.0}k)",
            ratio(&fast),
            fast[0].median / 1e3,
            fast[2].median / 1e3
        ),
        ratio(&fast) >= 2.0,
    );
}
