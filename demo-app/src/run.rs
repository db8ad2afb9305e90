//! One run: the pool, the task stream, the live view, and the count of
//! every outcome from the submitter's side.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use candado::{BreakerState, EventStreamError, Runtime, ShutdownSignal};
use candado_pool::{
    Isolation, Pool, PoolBuilder, PoolConfig, PoolEvent, ShutdownReport, SubmitError, TaskFailure,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::time::Instant;

use crate::dashboard::Dashboard;
use crate::isolation::worker_command;
use crate::processes::EventWatch;
use crate::rss::RssWatch;
use crate::workload::{next_job, Dependency, Engine, DEPENDENCY};
use crate::{
    bounds, live, pool_config, DemoError, Latency, LiveMode, Report, RunOptions, Scenario,
    WorkerSettings,
};

fn breaker_label(state: Option<BreakerState>) -> &'static str {
    match state {
        None | Some(BreakerState::Closed) => "closed",
        Some(BreakerState::Open) => "OPEN",
        Some(BreakerState::HalfOpen) => "half-open",
    }
}

/// The scenario's pool on `runtime` (its workers in processes if `options`
/// say so) and its dashboard: what an in-memory run and a durable node share.
pub(crate) async fn start_pool(
    scenario: &Scenario,
    options: RunOptions,
    config: PoolConfig,
    runtime: &Runtime,
) -> Result<(Pool<Engine>, Option<Dashboard>), DemoError> {
    let settings = WorkerSettings {
        dependency: Dependency::new(SystemTime::now(), scenario.outage),
        leak_mib: scenario.leak_mib,
    };
    let mut pool = PoolBuilder::new({
        let settings = settings.clone();
        move || settings.engine()
    })
    .config(config);
    if options.isolation == Isolation::Process {
        pool = pool.process_command(worker_command(&settings)?);
    }
    let pool = pool.start(runtime).await?;
    let dashboard = Dashboard::start(options.serve, runtime, &pool)?;
    Ok((pool, dashboard))
}

/// Runs `scenario` to the end and reports. Must run inside an actix `System`.
pub async fn run(scenario: &Scenario, options: RunOptions) -> Result<Report, DemoError> {
    run_until(scenario, options, std::future::pending()).await
}

/// Like [`run`], but `stop` (e.g. a Ctrl-C, see [`on_signals`](crate::on_signals))
/// ends the task stream early: nothing more is submitted, the pool drains
/// as at the scenario's end, and the report says which signal it was.
pub async fn run_until(
    scenario: &Scenario,
    options: RunOptions,
    stop: impl Future<Output = ShutdownSignal>,
) -> Result<Report, DemoError> {
    let config = pool_config(scenario, options.isolation)?;
    let mut builder = Runtime::builder();
    if let Some(threads) = options.threads {
        builder = builder.worker_threads(threads);
    }
    let runtime = builder.build()?;
    let events = runtime.subscribe();
    let rss = match options.isolation {
        Isolation::Process => RssWatch::start(),
        Isolation::InProcess => None,
    };
    let start = Instant::now();
    let (pool, dashboard) = start_pool(scenario, options, config, &runtime).await?;
    let watch = EventWatch::start(events, pool.supervisor().path().to_owned());
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
    let mut interrupted = None;
    tokio::pin!(stop);
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
        tokio::select! {
            () = tokio::time::sleep(slice) => {}
            signal = &mut stop => {
                interrupted = Some(signal);
                break;
            }
        }
    }
    let rejected = refused.load(Ordering::Relaxed);

    let (books, closed) = close(&pool, scenario.drain_deadline).await;
    let metrics = pool.metrics().await?;
    let tally = watch.finish().await;
    if tally.missed > 0 {
        tracing::warn!(
            missed = tally.missed,
            "runtime events dropped: the worker counts are lower bounds"
        );
    }
    // Processes that ended before the pool closed its books were replaced;
    // the rest ended with the pool.
    let reclaimed = rss.map_or(0, |rss| {
        rss.ended()
            .iter()
            .filter(|e| e.at < closed)
            .map(|e| e.rss)
            .sum()
    });
    let processes = options.isolation == Isolation::Process;
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
    let dependency_breaker_closed = breakers
        .as_ref()
        .and_then(|b| b.dependency_state(DEPENDENCY))
        != Some(BreakerState::Open);
    let report = Report {
        scenario: scenario.name.clone(),
        isolation: options.isolation,
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
        stuck_threads: tally.stuck_threads,
        processes_started: if processes { tally.started } else { 0 },
        processes_killed: if processes {
            tally.ended
        } else {
            Default::default()
        },
        memory_reclaimed_bytes: reclaimed,
        alerts: metrics.health.alerts.clone(),
        latency_ms: Latency {
            p50: metrics.performance.latency_lifetime_ms.p50,
            p99: metrics.performance.latency_lifetime_ms.p99,
            max: metrics.performance.latency_lifetime_ms.max,
        },
        elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        worker_reuse_rate: metrics.performance.worker_reuse_rate,
        final_workers: pool.size(),
        durable: None,
        interrupted_by: interrupted.map(|s| s.to_string()),
    };
    if let Some(dashboard) = dashboard {
        dashboard.stop().await;
    }
    runtime.shutdown().await;
    Ok(report)
}

/// Shuts `pool` down gracefully within `deadline`; returns its books and
/// when it closed them (its `shut_down` event), the moment after which its
/// workers (and their processes) are stopped for good, not replaced.
async fn close(pool: &Pool<Engine>, deadline: Duration) -> (ShutdownReport, std::time::Instant) {
    let mut events = pool.subscribe();
    let closed = async {
        loop {
            match events.recv().await {
                Ok(PoolEvent::ShutDown(_)) | Err(EventStreamError::Closed) => {
                    return std::time::Instant::now()
                }
                Ok(_) | Err(EventStreamError::Lagged(_)) => {}
            }
        }
    };
    let (books, closed) = tokio::join!(pool.shutdown_gracefully(deadline), closed);
    (books, closed)
}
