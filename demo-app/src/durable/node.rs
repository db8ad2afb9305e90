//! A node process of the `cluster` scenario: the demo binary re-executed
//! with [`NODE_ENV`] set. It runs a [`DurableNode`] whose pool runs the
//! demo's workload, records the task number of every run it starts in a
//! file of its own, and runs until its stdin closes (the parent's order to
//! stop: it then hands back what it holds and prints its counters as one
//! JSON line on stdout) or until it is killed.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candado::Runtime;
use candado_pool::{Isolation, PoolBuilder, TaskContext, TaskHandler};
use candado_postgres::{DurableNode, PgStore};
use serde::{Deserialize, Serialize};

use super::{node_config, store_config, NodeSummary};
use crate::workload::{Engine, Job};
use crate::{pool_config, DemoError, Latency, Scenario, WorkerSettings};

/// The environment variable that makes the demo binary a node process; it
/// carries the node's settings (JSON).
pub const NODE_ENV: &str = "CANDADO_DEMO_NODE";

/// A task of the cluster: the demo's job and its number in the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct DurableJob {
    pub(super) seq: u64,
    pub(super) job: Job,
}

/// What a node process needs from the parent.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct NodeSettings {
    pub(super) url: String,
    pub(super) queue: String,
    pub(super) node: String,
    pub(super) scenario: Scenario,
    pub(super) worker: WorkerSettings,
    /// The file of the runs it starts.
    pub(super) runs: PathBuf,
    pub(super) threads: Option<usize>,
}

/// What a node process prints when it stops.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct NodeLine {
    pub(super) summary: NodeSummary,
    pub(super) retries: u64,
    pub(super) failed_attempts: u64,
    pub(super) restarts: BTreeMap<String, u64>,
    pub(super) breaker_opens: u64,
    pub(super) latency_ms: Latency,
}

/// The demo's engine, recording each run it starts: one line with the
/// task's number, written at once (a line written is a run begun, even
/// if the process is killed a moment later). Only a pool's first attempt
/// counts: its retries of an injected fault run within one durable
/// attempt.
struct RecordingEngine {
    engine: Engine,
    runs: Arc<Mutex<std::fs::File>>,
}

impl TaskHandler for RecordingEngine {
    type Task = DurableJob;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        task: DurableJob,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        if ctx.attempt() == 1 {
            let line = format!("{}\n", task.seq);
            let written = self
                .runs
                .lock()
                .map_err(|_| ())
                .and_then(|mut f| f.write_all(line.as_bytes()).map_err(|_| ()));
            if written.is_err() {
                tracing::warn!(seq = task.seq, "cannot record a run");
            }
        }
        self.engine.handle(task.job, ctx)
    }
}

/// Starts node `name`: this program, re-executed with `settings`.
pub(super) fn spawn(settings: &NodeSettings) -> Result<Child, DemoError> {
    let text = serde_json::to_string(settings).map_err(|e| DemoError::Node(e.to_string()))?;
    let exe = std::env::current_exe()
        .map_err(|e| DemoError::Node(format!("cannot find this program: {e}")))?;
    Command::new(exe)
        .env(NODE_ENV, text)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| DemoError::Node(format!("cannot start node {}: {e}", settings.node)))
}

/// The runs file of node `name` in `dir`.
pub(super) fn runs_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.runs"))
}

/// If this process is a node process, runs the node until its stdin
/// closes, prints its [`NodeLine`] and exits (1 if it could not run);
/// otherwise returns at once.
pub(crate) fn serve_if_node() {
    let Ok(text) = std::env::var(NODE_ENV) else {
        return;
    };
    // Panics are injected on purpose.
    std::panic::set_hook(Box::new(|_| {}));
    let code = match serde_json::from_str::<NodeSettings>(&text) {
        Ok(settings) => match actix::System::new().block_on(serve(settings)) {
            Ok(line) => {
                println!("{}", serde_json::to_string(&line).unwrap_or_default());
                0
            }
            Err(error) => {
                eprintln!("candado-demo node: {error}");
                1
            }
        },
        Err(error) => {
            eprintln!("candado-demo node: {NODE_ENV} is not node settings: {error}");
            1
        }
    };
    std::process::exit(code)
}

async fn serve(settings: NodeSettings) -> Result<NodeLine, DemoError> {
    let NodeSettings {
        url,
        queue,
        node,
        scenario,
        worker,
        runs,
        threads,
    } = settings;
    let runs = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&runs)
        .map_err(|e| DemoError::Node(format!("{}: {e}", runs.display())))?;
    let runs = Arc::new(Mutex::new(runs));
    let mut builder = Runtime::builder();
    if let Some(threads) = threads {
        builder = builder.worker_threads(threads);
    }
    let runtime = builder.build()?;
    let store = PgStore::connect(store_config(&url, &queue)).await?;
    let config = pool_config(&scenario, Isolation::InProcess)?;
    let pool = PoolBuilder::new(move || RecordingEngine {
        engine: worker.engine(),
        runs: runs.clone(),
    })
    .config(config)
    .start(&runtime)
    .await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = stop.send(());
    });
    let durable = DurableNode::new(store, pool.clone(), node_config(&node, &scenario))?;
    let report = durable
        .run(
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        )
        .await;
    let metrics = pool.metrics().await?;
    let line = NodeLine {
        summary: NodeSummary::new(&node, report),
        retries: metrics.tasks.retried,
        failed_attempts: metrics.tasks.failed,
        restarts: metrics.performance.restarts_by_reason.clone(),
        breaker_opens: pool.breakers().map_or(0, |b| b.opened_total()),
        latency_ms: Latency {
            p50: metrics.performance.latency_lifetime_ms.p50,
            p99: metrics.performance.latency_lifetime_ms.p99,
            max: metrics.performance.latency_lifetime_ms.max,
        },
    };
    runtime.shutdown().await;
    Ok(line)
}
