//! One node in the demo's own process: the scenario's tasks go into the
//! table, a [`DurableNode`] feeds them to the demo's pool, and the report
//! reads their outcomes from the table.

use std::time::Duration;

use candado::{BreakerState, Runtime};
use candado_postgres::{DurableNode, PgStore};
use tokio::time::Instant;

use super::table::TableClient;
use super::{node_config, queue_name, store_config, wait_settled, DurableSummary, NodeSummary};
use super::{HEARTBEAT, LEASE};
use crate::workload::DEPENDENCY;
use crate::{pool_config, DemoError, Latency, LiveMode, Report, RunOptions, Scenario};

pub(super) async fn run(
    scenario: &Scenario,
    options: RunOptions,
    url: &str,
) -> Result<Report, DemoError> {
    let config = pool_config(scenario, options.isolation)?;
    let mut builder = Runtime::builder();
    if let Some(threads) = options.threads {
        builder = builder.worker_threads(threads);
    }
    let runtime = builder.build()?;
    let start = Instant::now();
    let queue = queue_name();
    let store = PgStore::connect(store_config(url, &queue)).await?;
    let (pool, dashboard) = crate::run::start_pool(scenario, options, config, &runtime).await?;
    let name = "node-1";
    let node = DurableNode::new(store.clone(), pool.clone(), node_config(name, scenario))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = actix::spawn(node.run(
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));

    let mut stream = super::Stream::new(scenario);
    let mut shown = Instant::now();
    while stream.step(&store, |_, job| job).await {
        if options.live != LiveMode::Off && shown.elapsed() >= options.live.period() {
            shown = Instant::now();
            show(&store, &queue, start, stream.submitted, stream.planned).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_settled(&store, scenario.drain_deadline).await;
    let _ = stop.send(());
    let report = node
        .await
        .map_err(|e| DemoError::Node(format!("the node's task failed: {e}")))?;
    let metrics = pool.metrics().await?;
    let table = TableClient::connect(url).await?.read(&queue).await?;
    let breakers = pool.breakers().cloned();
    let summary = NodeSummary::new(name, report);
    let c = table.counts;
    let (submitted, completed, dead) = (stream.submitted, c.done, c.dead);
    let returned = c.ready;
    let report = Report {
        scenario: scenario.name.clone(),
        isolation: options.isolation,
        submitted,
        rejected: stream.rejected,
        completed,
        dead_lettered: dead,
        returned,
        lost: submitted as i64 - (completed + dead + returned) as i64,
        // The table holds each accepted task once, none is left running,
        // and the node's own count of accepted completions agrees.
        books_agree: table.rows == submitted && c.running == 0 && summary.completed == completed,
        retries: metrics.tasks.retried,
        failed_attempts: metrics.tasks.failed,
        restarts: metrics.performance.restarts_by_reason.clone(),
        breaker_opens: breakers.as_ref().map_or(0, |b| b.opened_total()),
        dependency_breaker_closed: breakers
            .as_ref()
            .and_then(|b| b.dependency_state(DEPENDENCY))
            != Some(BreakerState::Open),
        stuck_threads: 0,
        processes_started: 0,
        processes_killed: Default::default(),
        memory_reclaimed_bytes: 0,
        alerts: metrics.health.alerts.clone(),
        latency_ms: Latency {
            p50: metrics.performance.latency_lifetime_ms.p50,
            p99: metrics.performance.latency_lifetime_ms.p99,
            max: metrics.performance.latency_lifetime_ms.max,
        },
        elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        worker_reuse_rate: metrics.performance.worker_reuse_rate,
        final_workers: pool.size(),
        interrupted_by: None,
        durable: Some(DurableSummary {
            queue,
            nodes: vec![summary],
            rescued: table.rescued,
            duplicates: 0,
            unexplained_duplicates: 0,
            rescue_ms: None,
            rescue_bound_ms: u64::try_from((LEASE + HEARTBEAT).as_millis()).unwrap_or(u64::MAX),
        }),
    };
    if let Some(dashboard) = dashboard {
        dashboard.stop().await;
    }
    runtime.shutdown().await;
    Ok(report)
}

/// A status line on stderr: the queue's counts.
pub(super) async fn show(
    store: &PgStore,
    queue: &str,
    start: Instant,
    submitted: u64,
    planned: u64,
) {
    if let Ok(c) = store.counts().await {
        eprintln!(
            "[{:>5.1}s] {queue}: {submitted}/{planned} enqueued | ready {} running {} done {} dead {}",
            start.elapsed().as_secs_f64(),
            c.ready,
            c.running,
            c.done,
            c.dead
        );
    }
}
