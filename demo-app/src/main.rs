//! `candado-demo`: runs a scenario and prints its report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use candado_demo::{init_logging, on_signals, run_until, LogFormat, RunOptions, Scenario};
use candado_pool::Isolation;
use clap::{Parser, ValueEnum};

/// Runs a pool of Candado workers under injected failures (panics, hangs,
/// starved threads, leaks, a dependency outage, slow tasks; with
/// `--isolation process`, also `loop {}`, abort, leaks kept for good, exit 42
/// and stack overflows) and reports what every defence did. Exits 0 when every accepted task completed, was
/// dead-lettered with its history, or was handed back; 1 when any was lost;
/// 2 on bad usage. Ctrl-C (SIGINT) stops submitting, drains, prints the
/// report and exits 130 (SIGTERM: 143); a second Ctrl-C exits 130 at once,
/// without a report.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Built-in scenario: calm, chaos, leak, outage, overload,
    /// process-faults (which needs `--isolation process`) or cluster (which
    /// needs `--store`).
    #[arg(long, default_value = "chaos", conflicts_with = "scenario_file")]
    scenario: String,
    /// A scenario from a TOML file (see docs/demo.md for its fields).
    #[arg(long, value_name = "PATH")]
    scenario_file: Option<PathBuf>,
    /// Report format printed at the end.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    report: ReportFormat,
    /// Scales the scenario's timeline: its duration, the outage and the
    /// worker age (e.g. 0.2 for a quick look).
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    time_scale: f64,
    /// Worker threads (default: the number of CPUs).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Overrides the scenario's random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Where the workers run their tasks: in the demo's process (actors on
    /// its threads), or each in an OS process of its own (the demo binary,
    /// re-executed), which can be killed, measured and replaced.
    #[arg(long, value_enum, default_value_t = IsolationArg::InProcess)]
    isolation: IsolationArg,
    /// Runs the scenario on a durable queue in this PostgreSQL database
    /// (`postgres://…` or `host=… dbname=…`): tasks go into its table and
    /// the report reads their outcomes there. Needed by `cluster`.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Logs on stderr as text or JSON lines; `RUST_LOG` picks the levels
    /// (default: none for text, `info` for JSON).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Serves the live dashboard (and /metrics, /healthz, /readyz, /api/...)
    /// on this address while the scenario runs, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    serve: Option<std::net::SocketAddr>,
}

/// `--isolation`, spelled as in a pool's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum IsolationArg {
    /// Workers are actors on the demo's threads (the default).
    #[value(name = "in_process", alias = "in-process")]
    InProcess,
    /// One worker process per task slot.
    Process,
}

impl From<IsolationArg> for Isolation {
    fn from(arg: IsolationArg) -> Self {
        match arg {
            IsolationArg::InProcess => Isolation::InProcess,
            IsolationArg::Process => Isolation::Process,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// A table for people.
    Text,
    /// One JSON object on stdout.
    Json,
}

fn parse_scale(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if value > 0.0 && value <= 10.0 {
        Ok(value)
    } else {
        Err("must be within (0, 10]".into())
    }
}

fn scenario(args: &Args) -> anyhow::Result<Scenario> {
    let mut scenario = match &args.scenario_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Scenario::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Scenario::built_in(&args.scenario)?,
    };
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let scenario = scenario.shortened(args.time_scale)?;
    scenario.check_isolation(args.isolation.into())?;
    scenario.check_store(args.store.as_deref(), args.isolation.into())?;
    scenario.check_serve(args.serve.is_some())?;
    Ok(scenario)
}

fn main() -> ExitCode {
    // In a worker process (`--isolation process`) this serves tasks and
    // never returns.
    candado_demo::serve_if_worker();
    let args = Args::parse();
    let scenario = match scenario(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("candado-demo: error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(args.log_format) {
        eprintln!("candado-demo: error: {e}");
        return ExitCode::from(2);
    }
    // Panics are injected on purpose: keep the default hook from printing them.
    std::panic::set_hook(Box::new(|_| {}));

    let json = args.report == ReportFormat::Json;
    let mut options = RunOptions::for_output(json);
    options.threads = args.threads.map(usize::from);
    options.isolation = args.isolation.into();
    options.serve = args.serve;
    if !json {
        println!(
            "Candado demo — scenario `{}`: {}\n",
            scenario.name, scenario.description
        );
    }
    // Ctrl-C drains and reports (exit 130); a second one exits at once.
    // On a durable store the default action stands: the queue is in the
    // table, and whatever a killed run held is rescued by the next.
    let report = actix::System::new().block_on(async {
        match &args.store {
            Some(url) => candado_demo::run_on_store(&scenario, options, url)
                .await
                .map_err(|e| e.to_string()),
            None => {
                let stop = on_signals().map_err(|e| e.to_string())?;
                run_until(&scenario, options, stop)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    });
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("candado-demo: error: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        match serde_json::to_string(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("candado-demo: error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        println!("\n{}", report.render());
    }
    ExitCode::from(report.exit_status())
}
