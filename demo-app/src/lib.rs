//! `candado-demo`: a pool of Candado workers under injected failures (panics,
//! crashing workers, silent hangs, starved threads, slow tasks, leaks and a
//! dependency outage), with a live view and a report that proves nothing was
//! lost.
//!
//! # Layout
//! - [`Scenario`] — what to submit and which faults to inject (built-ins and TOML).
//! - [`bounds`] — the bound of every scenario field; [`ScenarioError`] names the field outside one.
//! - [`run`] — runs one scenario and returns its [`Report`] (`run.rs`);
//!   [`run_until`] with [`on_signals`]: Ctrl-C drains and reports (`interrupt.rs`).
//!   With [`RunOptions::serve`], the dashboard serves it live (`dashboard.rs`).
//! - [`workload`] — the tasks, their faults and the flaky dependency.
//! - [`init_logging`] — `--log-format`: logs to stderr as text or JSON lines (`logging.rs`).
//! - [`serve_if_worker`] — `--isolation process`: the demo binary as its own
//!   worker processes, and the [`WorkerSettings`] they get (`isolation.rs`);
//!   also the node processes of a durable run.
//! - [`run_on_store`] — `--store`: a scenario on the durable queue of
//!   `candado-postgres`, one node or several node processes with one killed
//!   (`durable.rs`, `durable/*`); [`DurableSummary`] in the report.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod bounds;
mod dashboard;
mod durable;
mod error;
mod interrupt;
mod isolation;
mod live;
mod logging;
mod processes;
mod report;
mod rss;
mod run;
mod scenario;
pub mod workload;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use candado::{BackoffConfig, BreakerConfig, HealLimit, Intensity, LivenessConfig, MemoryConfig};
use candado_pool::{
    AutoscaleSettings, BreakerSettings, Dispatch, Isolation, PoolConfig, PoolDefault,
    ProcessSettings, RestartSettings, RetryConfig,
};

pub use durable::{run_on_store, DurableSummary, NodeSummary, HEARTBEAT, LEASE, NODE_ENV};
pub use error::{DemoError, ScenarioError};
pub use interrupt::{on_signals, FORCED};
pub use isolation::{serve_if_worker, WorkerSettings, SETTINGS_ENV, WORKER_ENTRY};
pub use live::LiveMode;
pub use logging::{init_logging, LogFormat};
pub use report::{Latency, Report};
pub use run::{run, run_until};
pub use scenario::{Faults, Outage, Scenario, BUILT_IN};

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// The live view.
    pub live: LiveMode,
    /// Worker threads (default: the number of CPUs).
    pub threads: Option<usize>,
    /// Where the workers run their tasks (default in the demo's process).
    /// With [`Isolation::Process`] the worker processes are this program
    /// re-executed: its `main` must call [`serve_if_worker`] first thing.
    pub isolation: Isolation,
    /// Serves the dashboard and the observer's endpoints here during the
    /// run (`--serve`; default none).
    pub serve: Option<SocketAddr>,
}

impl RunOptions {
    /// Picks the live view for where the output goes: a redrawn block when
    /// stdout is a terminal and carries no JSON, plain lines otherwise.
    pub fn for_output(json: bool) -> Self {
        let live = if !json && std::io::stdout().is_terminal() {
            LiveMode::Terminal
        } else {
            LiveMode::Lines
        };
        Self {
            live,
            threads: None,
            isolation: Isolation::InProcess,
            serve: None,
        }
    }
}

/// The pool configuration a scenario runs with: demo-sized timeouts, so every
/// defence acts within seconds (see `docs/demo.md`). Validates `s` first, for
/// `isolation` too (see [`Scenario::check_isolation`]): its sizes become
/// bytes and processes.
pub fn pool_config(s: &Scenario, isolation: Isolation) -> Result<PoolConfig, DemoError> {
    s.validate()?;
    s.check_isolation(isolation)?;
    // Within its bound (at most 1 GiB), the limit in bytes fits a u64.
    let limit = s.worker_memory_limit_mib.saturating_mul(bounds::MIB);
    let (size, max_size, concurrency) = isolation::shape(s, isolation);
    Ok(PoolConfig {
        name: "demo".into(),
        size,
        min_size: 1,
        max_size,
        concurrency,
        dispatch: Dispatch::LeastLoaded,
        queue_bound: s.queue_bound,
        worker_shutdown_timeout: Duration::from_millis(300),
        task_timeout: s.task_timeout,
        promote_after: Some(Duration::from_secs(5)),
        yield_every: 256,
        retry: RetryConfig {
            max_retries: 3,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
            jitter: 0.2,
            ..Default::default()
        },
        restart: RestartSettings {
            intensity: Intensity {
                max_restarts: 1_000,
                period: Duration::from_secs(60),
            },
            backoff: BackoffConfig {
                base: Duration::from_millis(50),
                cap: Duration::from_secs(1),
                ..BackoffConfig::default()
            },
        },
        liveness: Some(LivenessConfig {
            heartbeat_interval: Some(Duration::from_millis(250)),
            heartbeat_timeout: Duration::from_millis(1_500),
            ping_interval: None,
            progress_timeout: Some(Duration::from_millis(1_000)),
            ..LivenessConfig::pool_default()
        }),
        memory: Some(MemoryConfig {
            // Machine-wide thresholds would make the demo depend on the machine.
            warning_percent: None,
            critical_percent: None,
            brake_floor: None,
            leak_rate_per_min: None,
            child_warning_bytes: Some(limit / 2),
            child_critical_bytes: Some(limit),
            max_age: s.max_worker_age,
            ..MemoryConfig::default()
        }),
        breaker: Some(BreakerSettings {
            config: BreakerConfig {
                cooldown_base: Duration::from_secs(1),
                cooldown_cap: Duration::from_secs(4),
                stability_window: Duration::from_secs(10),
                ..BreakerConfig::default()
            },
            ..BreakerSettings::default()
        }),
        heal_limit: HealLimit {
            max: 10_000,
            period: Duration::from_secs(60),
            min_gap: Duration::ZERO,
        },
        autoscale: (s.max_workers > s.workers).then_some(AutoscaleSettings {
            check_every: Duration::from_secs(1),
            queue_per_worker: 50,
            idle_checks: 3,
        }),
        isolation,
        process: ProcessSettings {
            // Well under the heartbeat timeout above.
            heartbeat_interval: Duration::from_millis(250),
            // A leak is measured within a tenth of a second.
            memory_interval: Duration::from_millis(100),
            // A task that ignores its timeout loses its process soon after,
            // and before liveness's progress timeout would find it stuck.
            timeout_grace: Duration::from_millis(250),
            ..ProcessSettings::default()
        },
        ..PoolConfig::default()
    })
}
