//! Node processes on one queue (`nodes` above 1): the demo starts them,
//! enqueues the scenario's tasks, kills the first node with SIGKILL half
//! way through (once it holds tasks) and starts a replacement, waits for
//! the queue to empty, stops the rest, and reads what became of every task
//! from the table and the nodes' run files.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, SystemTime};

use candado_postgres::PgStore;
use tokio::time::Instant;

use super::node::{self, DurableJob, NodeLine, NodeSettings};
use super::table::{self, TableClient};
use super::{epoch_ms, queue_name, store_config, wait_settled, DurableSummary, NodeSummary};
use super::{HEARTBEAT, LEASE};
use crate::workload::Dependency;
use crate::{
    pool_config, DemoError, Latency, LiveMode, Report, RunOptions, Scenario, WorkerSettings,
};

/// How long a stopped node may take to hand back its tasks and exit.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// The victim is killed once it holds this many tasks' leases.
const KILL_HOLDING: u64 = 3;

struct Node {
    name: String,
    child: Child,
}

pub(super) async fn run(
    scenario: &Scenario,
    options: RunOptions,
    url: &str,
) -> Result<Report, DemoError> {
    // The nodes' pools run in-process; check their config here, once.
    pool_config(scenario, candado_pool::Isolation::InProcess)?;
    let start = Instant::now();
    let queue = queue_name();
    let store = PgStore::connect(store_config(url, &queue)).await?;
    let watch = TableClient::connect(url).await?;
    let dir = std::env::temp_dir().join(&queue);
    std::fs::create_dir_all(&dir)
        .map_err(|e| DemoError::Node(format!("{}: {e}", dir.display())))?;
    let worker = WorkerSettings {
        dependency: Dependency::new(SystemTime::now(), scenario.outage),
        leak_mib: scenario.leak_mib,
    };
    let spawn = |name: String| -> Result<Node, DemoError> {
        let settings = NodeSettings {
            url: url.to_owned(),
            queue: queue.clone(),
            node: name.clone(),
            scenario: scenario.clone(),
            worker: worker.clone(),
            runs: node::runs_file(&dir, &name),
            // Several nodes share the machine: one worker thread each.
            threads: Some(options.threads.unwrap_or(1)),
        };
        Ok(Node {
            child: node::spawn(&settings)?,
            name,
        })
    };
    let mut nodes = Vec::new();
    for i in 1..=scenario.nodes {
        nodes.push(spawn(format!("node-{i}"))?);
    }
    let victim = nodes[0].name.clone();
    let mut killed: Option<(Node, i64)> = None;

    let mut stream = super::Stream::new(scenario);
    let mut shown = Instant::now();
    let half = scenario.duration / 2;
    loop {
        let more = stream
            .step(&store, |seq, job| DurableJob { seq, job })
            .await;
        // Half way, once the victim holds a few tasks; from three quarters
        // on, once it holds any; at the stream's end, in any case.
        let elapsed = start.elapsed();
        let wanted = if elapsed >= half + half / 2 {
            1
        } else {
            KILL_HOLDING
        };
        if killed.is_none()
            && elapsed >= half
            && (!more || watch.held(&queue, &victim).await? >= wanted)
        {
            let mut node = nodes.remove(0);
            let at = epoch_ms(SystemTime::now());
            let _ = node.child.kill(); // SIGKILL
            let _ = node.child.wait();
            tracing::info!(node = %node.name, "killed with SIGKILL");
            if options.live != LiveMode::Off {
                eprintln!(
                    "[{:>5.1}s] {} killed with SIGKILL; starting node-{}",
                    start.elapsed().as_secs_f64(),
                    node.name,
                    scenario.nodes + 1
                );
            }
            killed = Some((node, at));
            nodes.push(spawn(format!("node-{}", scenario.nodes + 1))?);
        }
        if !more && killed.is_some() {
            break;
        }
        if options.live != LiveMode::Off && shown.elapsed() >= options.live.period() {
            shown = Instant::now();
            super::single::show(&store, &queue, start, stream.submitted, stream.planned).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The killed node's tasks come back a lease and a heartbeat later.
    wait_settled(&store, scenario.drain_deadline + LEASE + HEARTBEAT * 2).await;
    let mut lines = Vec::new();
    let mut stopped_cleanly = true;
    for node in nodes {
        match stop(node).await {
            Ok(line) => lines.push(line),
            Err(error) => {
                tracing::error!(%error, "a node did not stop cleanly");
                stopped_cleanly = false;
            }
        }
    }
    let table = watch.read(&queue).await?;
    let Some((killed, killed_at)) = killed else {
        return Err(DemoError::Node("no node was killed".into()));
    };

    let mut names = vec![killed.name.clone()];
    names.extend(lines.iter().map(|l| l.summary.name.clone()));
    let (duplicates, unexplained) = duplicates(&dir, &names, &table);
    let _ = std::fs::remove_dir_all(&dir);
    let rescue_ms = table
        .rescues
        .iter()
        .filter(|(node, _)| *node == killed.name)
        .map(|(_, at)| u64::try_from(at - killed_at).unwrap_or(0))
        .max();
    let foreign_rescues = table.rescues.iter().any(|(node, _)| *node != killed.name);

    let c = table.counts;
    let (submitted, completed, dead, returned) = (stream.submitted, c.done, c.dead, c.ready);
    let mut restarts = BTreeMap::new();
    for line in &lines {
        for (reason, n) in &line.restarts {
            *restarts.entry(reason.clone()).or_default() += n;
        }
    }
    let worst = |f: fn(&Latency) -> f64| lines.iter().map(|l| f(&l.latency_ms)).fold(0.0, f64::max);
    let mut summaries = vec![NodeSummary {
        name: killed.name.clone(),
        killed: true,
        ..NodeSummary::default()
    }];
    summaries.extend(lines.iter().map(|l| l.summary.clone()));
    let breaker_open = store
        .breakers()
        .await
        .map(|b| b.iter().any(|b| b.open_for.is_some()))
        .unwrap_or(false);
    Ok(Report {
        scenario: scenario.name.clone(),
        isolation: options.isolation,
        submitted,
        rejected: stream.rejected,
        completed,
        dead_lettered: dead,
        returned,
        lost: submitted as i64 - (completed + dead + returned) as i64,
        // Each accepted task once in the table, none left running, every
        // surviving node stopped and reported, no live node's lease
        // expired, and every duplicate run explained by a rescue.
        books_agree: table.rows == submitted
            && c.running == 0
            && stopped_cleanly
            && !foreign_rescues
            && unexplained == 0,
        retries: lines.iter().map(|l| l.retries).sum(),
        failed_attempts: lines.iter().map(|l| l.failed_attempts).sum(),
        restarts,
        breaker_opens: lines.iter().map(|l| l.breaker_opens).sum(),
        dependency_breaker_closed: !breaker_open,
        stuck_threads: 0,
        processes_started: 0,
        processes_killed: Default::default(),
        memory_reclaimed_bytes: 0,
        alerts: Vec::new(),
        latency_ms: Latency {
            p50: worst(|l| l.p50),
            p99: worst(|l| l.p99),
            max: worst(|l| l.max),
        },
        elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        worker_reuse_rate: 0.0,
        final_workers: (summaries.len() - 1) * scenario.workers,
        interrupted_by: None,
        durable: Some(DurableSummary {
            queue,
            nodes: summaries,
            rescued: table.rescued,
            duplicates,
            unexplained_duplicates: unexplained,
            rescue_ms,
            rescue_bound_ms: u64::try_from((LEASE + HEARTBEAT).as_millis()).unwrap_or(u64::MAX),
        }),
    })
}

/// Closes `node`'s stdin (it stops and hands back what it holds) and reads
/// the line it prints, within [`STOP_LIMIT`]; kills it past that.
async fn stop(mut node: Node) -> Result<NodeLine, DemoError> {
    drop(node.child.stdin.take());
    let deadline = Instant::now() + STOP_LIMIT;
    let status = loop {
        match node.child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(None) | Err(_) => {
                let _ = node.child.kill();
                let _ = node.child.wait();
                return Err(DemoError::Node(format!(
                    "{} did not stop within {STOP_LIMIT:?}",
                    node.name
                )));
            }
        }
    };
    let mut text = String::new();
    if let Some(mut out) = node.child.stdout.take() {
        let _ = out.read_to_string(&mut text);
    }
    if !status.success() {
        return Err(DemoError::Node(format!(
            "{} ended with {status}",
            node.name
        )));
    }
    serde_json::from_str(text.trim())
        .map_err(|e| DemoError::Node(format!("{} reported no counters ({e}): {text}", node.name)))
}

/// Runs beyond what the table records, from the run files of the nodes
/// `names`: `(of rescued tasks, of tasks never rescued)`.
fn duplicates(dir: &Path, names: &[String], table: &table::Table) -> (u64, u64) {
    let mut starts: HashMap<u64, u64> = HashMap::new();
    for name in names {
        for seq in runs(dir, name) {
            *starts.entry(seq).or_default() += 1;
        }
    }
    let (mut duplicates, mut unexplained) = (0, 0);
    for (seq, started) in &starts {
        let recorded = table.by_seq.get(seq).copied().unwrap_or_default();
        let extra = started.saturating_sub(recorded.reported);
        if recorded.expired == 0 {
            unexplained += extra;
        } else {
            duplicates += extra;
        }
    }
    (duplicates, unexplained)
}

/// The task numbers node `name` started, one entry per run.
fn runs(dir: &Path, name: &str) -> Vec<u64> {
    std::fs::read_to_string(node::runs_file(dir, name))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}
