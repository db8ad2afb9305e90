//! `candado-demo`: a supervision tree under injected failures.
//!
//! The default scenario builds a three-level tree, sends work to its engines
//! while some inputs make them panic, lets a flapping child exhaust its
//! supervisor's restart intensity (which escalates to the root), then shuts the
//! tree down in order and prints what happened.

mod summary;
mod workers;

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use anyhow::{bail, Context as _};
use candado::{ChildSpec, EventStream, Runtime, Strategy, SupervisorRef, SupervisorSpec};
use clap::{Parser, ValueEnum};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use tokio::time::Instant;

use summary::Summary;
use workers::{Engine, Flappy, Work};

/// Runs a Candado supervision tree under injected failures and reports what
/// the supervisors did.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// How long to send work, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Number of engine workers.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    engines: u32,
    /// Fraction of work items that make an engine panic (0.0..=1.0).
    #[arg(long, default_value_t = 0.02)]
    panic_rate: f64,
    /// How many times the flapping child crashes on start before it recovers.
    #[arg(long, default_value_t = 4)]
    flaps: u32,
    /// Worker threads (default: number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Random seed for the injected failures.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Output format of the final report.
    #[arg(long, value_enum, default_value_t = Report::Text)]
    report: Report,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Report {
    /// A human-readable table.
    Text,
    /// One JSON object on stdout.
    Json,
}

fn tree(engines: u32, flaps: u32) -> SupervisorSpec {
    let failures_left = Arc::new(AtomicU32::new(flaps));
    let predict = (0..engines).fold(
        SupervisorSpec::new("predict")
            .strategy(Strategy::OneForOne)
            .intensity(50, Duration::from_secs(10)),
        |spec, n| {
            spec.child(ChildSpec::worker(format!("engine-{n}"), |link| Engine {
                link,
                done: 0,
            }))
        },
    );
    let backend = SupervisorSpec::new("backend")
        .intensity(2, Duration::from_secs(10))
        .child(ChildSpec::worker("flappy", move |_| Flappy {
            failures_left: failures_left.clone(),
        }));
    SupervisorSpec::new("root")
        .strategy(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(30))
        .child(ChildSpec::supervisor(predict))
        .child(ChildSpec::supervisor(backend))
}

async fn drive(root: &SupervisorRef, args: &Args, summary: &mut Summary) -> anyhow::Result<()> {
    let predict = root.supervisor("predict").await?;
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    // Addresses change with every restart: cache them, look up again after a failure.
    let mut engines: Vec<Option<Addr<Engine>>> = vec![None; args.engines as usize];
    let mut misses = 0;
    while Instant::now() < deadline {
        let n = rng.random_range(0..engines.len());
        let poison = rng.random_bool(args.panic_rate);
        if engines[n].is_none() {
            // A restarting engine has no address yet: try again a little later.
            match predict.worker::<Engine>(&format!("engine-{n}")).await {
                Ok(addr) => engines[n] = Some(addr),
                Err(_) => {
                    misses += 1;
                    if misses >= engines.len() {
                        // Every engine we tried is restarting: give them a moment.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        misses = 0;
                    }
                    continue;
                }
            }
        }
        misses = 0;
        let Some(engine) = &engines[n] else { continue };
        match engine.send(Work { poison }).await {
            Ok(_) => summary.requests_ok += 1,
            Err(_) => {
                summary.requests_failed += 1;
                engines[n] = None;
            }
        }
    }
    Ok(())
}

fn collect(events: &mut EventStream, summary: &mut Summary) {
    while let Ok(Some(event)) = events.try_recv() {
        summary.record(&event);
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("candado-demo: error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.panic_rate) {
        bail!(
            "--panic-rate must be within 0.0..=1.0, got {}",
            args.panic_rate
        );
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be within (0, 3600], got {}", args.seconds);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "candado=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // Panics are expected here: the hook's default printing would drown the report.
    std::panic::set_hook(Box::new(|_| {}));

    let summary = actix::System::new().block_on(async {
        let mut builder = Runtime::builder();
        if let Some(threads) = args.threads {
            builder = builder.worker_threads(threads);
        }
        let runtime = builder.build().context("building the runtime")?;
        let mut events = runtime.subscribe();
        let started = Instant::now();
        let root = runtime
            .start(tree(args.engines, args.flaps))
            .await
            .context("starting the tree")?;
        let mut summary = Summary::default();
        drive(&root, args, &mut summary).await?;
        summary.root_exit = Some(root.shutdown().await);
        summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        collect(&mut events, &mut summary);
        runtime.shutdown().await;
        anyhow::Ok(summary)
    })?;

    match args.report {
        Report::Text => print!("{}", summary.render()),
        Report::Json => println!("{}", serde_json::to_string(&summary)?),
    }
    Ok(())
}
