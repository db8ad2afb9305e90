//! `candado-demo`: a pool of Candado workers under injected failures (panics,
//! crashing workers, silent hangs, starved threads, slow tasks, leaks and a
//! dependency outage), with a live view and a report that proves nothing was
//! lost.
//!
//! # Layout
//! - [`Scenario`] — what to submit and which faults to inject (built-ins and TOML).
//! - [`bounds`] — the bound of every scenario field; [`ScenarioError`] names the field outside one.
//! - [`run`] — runs one scenario and returns its [`Report`].
//! - [`workload`] — the tasks, their faults and the flaky dependency.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod bounds;
mod error;
mod live;
mod report;
mod scenario;
pub mod workload;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candado::{BreakerState, Runtime};
use candado_pool::{
    AutoscaleSettings, BreakerSettings, Dispatch, HealLimitSettings, LivenessSettings,
    MemorySettings, PoolBuilder, PoolConfig, RestartSettings, RetryConfig, SubmitError,
    TaskFailure,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::time::Instant;

pub use error::{DemoError, ScenarioError};
pub use live::LiveMode;
pub use report::{Latency, Report};
pub use scenario::{Faults, Outage, Scenario, BUILT_IN};
use workload::{next_job, Dependency, Engine, DEPENDENCY};

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// The live view.
    pub live: LiveMode,
    /// Worker threads (default: the number of CPUs).
    pub threads: Option<usize>,
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
        }
    }
}

/// The pool configuration a scenario runs with: demo-sized timeouts, so every
/// defence acts within seconds (see `docs/demo.md`). Validates `s` first:
/// its sizes become bytes.
pub fn pool_config(s: &Scenario) -> Result<PoolConfig, ScenarioError> {
    s.validate()?;
    // Within its bound (at most 1 GiB), the limit in bytes fits a u64.
    let limit = s.worker_memory_limit_mib.saturating_mul(bounds::MIB);
    Ok(PoolConfig {
        name: "demo".into(),
        size: s.workers,
        min_size: 1,
        max_size: s.max_workers,
        concurrency: s.concurrency,
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
        },
        restart: RestartSettings {
            max_restarts: 1_000,
            period: Duration::from_secs(60),
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_secs(1),
        },
        liveness: Some(LivenessSettings {
            heartbeat_interval: Some(Duration::from_millis(250)),
            heartbeat_timeout: Duration::from_millis(1_500),
            ping_interval: None,
            progress_timeout: Some(Duration::from_millis(1_000)),
            ..LivenessSettings::default()
        }),
        memory: Some(MemorySettings {
            // Machine-wide thresholds would make the demo depend on the machine.
            warning_percent: None,
            critical_percent: None,
            brake_floor: None,
            leak_rate_per_min: None,
            child_warning_bytes: Some(limit / 2),
            child_critical_bytes: Some(limit),
            max_age: s.max_worker_age,
            ..MemorySettings::default()
        }),
        breaker: Some(BreakerSettings {
            cooldown_base: Duration::from_secs(1),
            cooldown_cap: Duration::from_secs(4),
            stability_window: Duration::from_secs(10),
            ..BreakerSettings::default()
        }),
        heal_limit: HealLimitSettings {
            max: 10_000,
            period: Duration::from_secs(60),
            min_gap: Duration::ZERO,
        },
        autoscale: (s.max_workers > s.workers).then_some(AutoscaleSettings {
            check_every: Duration::from_secs(1),
            queue_per_worker: 50,
            idle_checks: 3,
        }),
        ..PoolConfig::default()
    })
}

fn breaker_label(state: Option<BreakerState>) -> &'static str {
    match state {
        None | Some(BreakerState::Closed) => "closed",
        Some(BreakerState::Open) => "OPEN",
        Some(BreakerState::HalfOpen) => "half-open",
    }
}

/// Runs `scenario` to the end and reports. Must run inside an actix `System`.
pub async fn run(scenario: &Scenario, options: RunOptions) -> Result<Report, DemoError> {
    scenario.validate()?;
    let mut builder = Runtime::builder();
    if let Some(threads) = options.threads {
        builder = builder.worker_threads(threads);
    }
    let runtime = builder.build()?;
    let mut events = runtime.subscribe();
    let start = Instant::now();
    let dependency = Arc::new(Dependency::new(start, scenario.outage));
    let leak = scenario.leak_mib;
    let pool = PoolBuilder::new(move || Engine::new(dependency.clone(), leak))
        .config(pool_config(scenario)?)
        .start(&runtime)
        .await?;
    let breakers = pool.breakers().cloned();
    let planned = scenario.task_count();
    let refused = Arc::new(AtomicU64::new(0));

    // Live view.
    let view = {
        let (pool, name, breakers) = (pool.clone(), scenario.name.clone(), breakers.clone());
        let refused = refused.clone();
        let mut threads = runtime.subscribe();
        actix::spawn(async move {
            let (mut drawn, mut stuck) = (0, 0usize);
            loop {
                tokio::time::sleep(options.live.period()).await;
                while let Ok(Some(event)) = threads.try_recv() {
                    match event.kind {
                        candado::EventKind::ThreadStuck { .. } => stuck += 1,
                        candado::EventKind::ThreadRecovered { .. } => {
                            stuck = stuck.saturating_sub(1)
                        }
                        _ => {}
                    }
                }
                let Ok(metrics) = pool.metrics().await else {
                    return;
                };
                let dependency = breaker_label(
                    breakers
                        .as_ref()
                        .and_then(|b| b.dependency_state(DEPENDENCY)),
                );
                let frame = live::Frame {
                    scenario: &name,
                    elapsed: start.elapsed(),
                    planned,
                    refused: refused.load(Ordering::Relaxed),
                    metrics: &metrics,
                    dependency,
                    stuck_threads: stuck,
                };
                match options.live {
                    LiveMode::Off => {}
                    LiveMode::Lines => eprintln!("{}", live::line(&frame)),
                    LiveMode::Terminal => {
                        let lines = live::block(&frame);
                        live::redraw(&mut std::io::stdout(), drawn, &lines);
                        drawn = lines.len();
                    }
                }
            }
        })
    };

    // The task stream: by time t, `rate × t` tasks offered (in 20 ms slices),
    // until exactly `planned` are: the count the live view shows.
    let mut rng = SmallRng::seed_from_u64(scenario.seed);
    let mut handles = Vec::new();
    let slice = Duration::from_millis(20);
    let mut offered = 0u64;
    loop {
        let due = bounds::task_count(scenario.rate, start.elapsed())
            .unwrap_or(planned)
            .min(planned);
        while offered < due {
            offered += 1;
            let (job, options) = next_job(scenario, &mut rng);
            match pool.submit_with(job, options) {
                Ok(handle) => handles.push(handle),
                Err(SubmitError::QueueFull { .. }) => {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(other) => {
                    tracing::error!(error = %other, "submission refused");
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if offered >= planned {
            break;
        }
        tokio::time::sleep(slice).await;
    }
    let rejected = refused.load(Ordering::Relaxed);

    let books = pool.shutdown_gracefully(scenario.drain_deadline).await;
    let metrics = pool.metrics().await?;
    view.abort();
    if options.live == LiveMode::Terminal {
        println!();
    }

    // Count every outcome from the submitter's side.
    // A handle that never resolves (or says the pool vanished) is a lost task.
    let (mut completed, mut dead, mut returned) = (0u64, 0u64, 0u64);
    let submitted = handles.len() as u64;
    for handle in handles {
        match tokio::time::timeout(Duration::from_secs(5), handle).await {
            Ok(Ok(_)) => completed += 1,
            Ok(Err(TaskFailure::DeadLettered { .. })) => dead += 1,
            Ok(Err(TaskFailure::Returned { .. })) => returned += 1,
            Ok(Err(TaskFailure::PoolGone)) | Err(_) => {}
        }
    }
    let mut stuck_threads = 0;
    while let Ok(Some(event)) = events.try_recv() {
        if matches!(event.kind, candado::EventKind::ThreadStuck { .. }) {
            stuck_threads += 1;
        }
    }
    let dependency_breaker_closed = breakers
        .as_ref()
        .and_then(|b| b.dependency_state(DEPENDENCY))
        != Some(BreakerState::Open);
    let report = Report {
        scenario: scenario.name.clone(),
        submitted,
        rejected,
        completed,
        dead_lettered: dead,
        returned,
        lost: submitted as i64 - (completed + dead + returned) as i64,
        books_agree: books.submitted == submitted
            && books.completed == completed
            && books.dead_lettered == dead
            && books.returned == returned,
        retries: metrics.tasks.retried,
        failed_attempts: metrics.tasks.failed,
        restarts: metrics.performance.restarts_by_reason.clone(),
        breaker_opens: breakers.as_ref().map_or(0, |b| b.opened_total()),
        dependency_breaker_closed,
        stuck_threads,
        alerts: metrics.health.alerts.clone(),
        latency_ms: Latency {
            p50: metrics.performance.latency_ms.p50,
            p99: metrics.performance.latency_ms.p99,
            max: metrics.performance.latency_ms.max,
        },
        elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        worker_reuse_rate: metrics.performance.worker_reuse_rate,
        final_workers: pool.size(),
    };
    runtime.shutdown().await;
    Ok(report)
}
