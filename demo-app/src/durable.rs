//! `--store postgres://…`: a scenario on the durable queue of
//! `candado-postgres`. Tasks are enqueued into PostgreSQL at the scenario's
//! rate, [`DurableNode`](candado_postgres::DurableNode)s claim them into
//! Candado pools, and the report reads every outcome from the table.
//!
//! - this file: what every node shares (lease, heartbeat, retries), the
//!   task stream into the table, the wait for the queue to empty, and the
//!   report's [`DurableSummary`];
//! - `single.rs`: one node, in the demo's own process (`nodes = 1`);
//! - `cluster.rs`: node processes, one killed with SIGKILL mid-run and
//!   replaced (`nodes` above 1, the `cluster` scenario);
//! - `node.rs`: a node process's side;
//! - `table.rs`: outcomes, rescues and duplicate runs, read from the table.

mod cluster;
mod node;
mod single;
mod table;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use candado_pool::{Isolation, RetryConfig, TaskOptions};
use candado_postgres::{NewTask, NodeConfig, PgStore, SharedBreakerConfig, StoreConfig};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub(crate) use node::serve_if_node;
pub use node::NODE_ENV;

use crate::workload::{next_job, Job};
use crate::{bounds, DemoError, Report, RunOptions, Scenario};

/// How long a node's claim lasts without renewal: a killed node's tasks
/// are rescued this long after its last renewal.
pub const LEASE: Duration = Duration::from_secs(2);

/// A node's heartbeat: it renews its leases, and rescues expired ones,
/// this often. A killed node's tasks are rescued within `LEASE + HEARTBEAT`
/// of the kill.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// What a durable run adds to the [`Report`]: the queue, the nodes, and
/// what the kill of a node cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DurableSummary {
    /// The queue the run used (`candado-demo-<ms since the epoch>`); its
    /// rows stay in the database for inspection.
    pub queue: String,
    /// Each node, in the order started; a killed node's counters died with
    /// it (all zero, `killed: true`).
    pub nodes: Vec<NodeSummary>,
    /// Tasks whose lease expired (their node was killed) and that another
    /// node rescued.
    pub rescued: u64,
    /// Runs beyond what the table records: tasks started by the killed node
    /// and started again after their rescue.
    pub duplicates: u64,
    /// Duplicate runs of tasks that were never rescued. Must be 0: only an
    /// expired lease can run a task twice.
    pub unexplained_duplicates: u64,
    /// From the kill to the last rescue of the killed node's tasks, in
    /// milliseconds (the database's clock, which every node shares).
    pub rescue_ms: Option<u64>,
    /// The bound on `rescue_ms`: lease + one heartbeat, in milliseconds.
    pub rescue_bound_ms: u64,
}

/// One node's own counters, as it reported them when it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// The node's name (its lease holder).
    pub name: String,
    /// Killed with SIGKILL mid-run.
    pub killed: bool,
    /// Tasks claimed.
    pub claimed: u64,
    /// Completions the table accepted.
    pub completed: u64,
    /// Failed attempts reported (retried or dead-lettered by the store).
    pub failed: u64,
    /// Late reports fenced off (their lease had been lost).
    pub fenced: u64,
    /// Tasks handed back at the stop.
    pub released: u64,
    /// Tasks it rescued from expired leases.
    pub rescued: u64,
    /// Store operations that failed.
    pub store_errors: u64,
}

impl DurableSummary {
    /// The report's rows for a durable run, through `row(key, value)`.
    pub(crate) fn rows(&self, row: &mut impl FnMut(&str, String)) {
        row("durable queue", self.queue.clone());
        for node in &self.nodes {
            let value = if node.killed {
                "killed with SIGKILL (its counters died with it)".to_owned()
            } else {
                format!(
                    "claimed {}, completed {}, failed {}, fenced {}, handed back {}, rescued {}, store errors {}",
                    node.claimed,
                    node.completed,
                    node.failed,
                    node.fenced,
                    node.released,
                    node.rescued,
                    node.store_errors
                )
            };
            row(&format!("  {}", node.name), value);
        }
        row("rescued (lease expired)", self.rescued.to_string());
        if self.nodes.iter().any(|n| n.killed) {
            row(
                "ran twice (after a rescue)",
                format!(
                    "{} (unexplained: {})",
                    self.duplicates, self.unexplained_duplicates
                ),
            );
        }
        if let Some(ms) = self.rescue_ms {
            row(
                "rescued after the kill",
                format!(
                    "{ms} ms at most (lease + heartbeat: {} ms)",
                    self.rescue_bound_ms
                ),
            );
        }
    }
}

impl NodeSummary {
    fn new(name: &str, report: candado_postgres::NodeReport) -> Self {
        Self {
            name: name.to_owned(),
            killed: false,
            claimed: report.claimed,
            completed: report.completed,
            failed: report.failed,
            fenced: report.fenced,
            released: report.released,
            rescued: report.rescued,
            store_errors: report.store_errors,
        }
    }
}

impl Scenario {
    /// Checks that this scenario can run with `store` (a connection string,
    /// or none) and `isolation`: several `nodes` need a store
    /// ([`DemoError::NeedsStore`]), and their node processes run their
    /// workers in-process ([`DemoError::NodesInProcess`]).
    pub fn check_store(&self, store: Option<&str>, isolation: Isolation) -> Result<(), DemoError> {
        if self.nodes > 1 && store.is_none() {
            return Err(DemoError::NeedsStore {
                scenario: self.name.clone(),
                nodes: self.nodes,
            });
        }
        if self.nodes > 1 && isolation == Isolation::Process {
            return Err(DemoError::NodesInProcess {
                scenario: self.name.clone(),
            });
        }
        Ok(())
    }
}

impl Scenario {
    /// Refuses `--serve` for a scenario whose pools run in node processes
    /// (the dashboard shows the pools of the process that serves it).
    pub fn check_serve(&self, serve: bool) -> Result<(), DemoError> {
        if self.nodes > 1 && serve {
            return Err(DemoError::NodesNotServed {
                scenario: self.name.clone(),
            });
        }
        Ok(())
    }
}

/// Runs `scenario` on the durable queue at `url` (a libpq connection
/// string or `postgres://` URL) and reports, the outcomes read from the
/// table. Must run inside an actix `System`.
pub async fn run_on_store(
    scenario: &Scenario,
    options: RunOptions,
    url: &str,
) -> Result<Report, DemoError> {
    scenario.validate()?;
    scenario.check_isolation(options.isolation)?;
    scenario.check_store(Some(url), options.isolation)?;
    scenario.check_serve(options.serve.is_some())?;
    if scenario.nodes > 1 {
        cluster::run(scenario, options, url).await
    } else {
        single::run(scenario, options, url).await
    }
}

/// A fresh queue per run, so that its counts are the run's.
fn queue_name() -> String {
    format!("candado-demo-{}", epoch_ms(SystemTime::now()))
}

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The store's retries cover what a node's own retries cannot: its death.
/// (Each node's pool keeps the demo's retries, so an injected fault, which
/// hits a pool's first attempt only, recovers as it does in memory.)
fn store_config(url: &str, queue: &str) -> StoreConfig {
    let mut config = StoreConfig::new(url, queue);
    config.max_connections = 4;
    config.retry = RetryConfig {
        max_retries: 3,
        base: Duration::from_millis(200),
        cap: Duration::from_secs(2),
        jitter: 0.2,
        ..Default::default()
    };
    config
}

fn node_config(name: &str, scenario: &Scenario) -> NodeConfig {
    let slots = scenario.max_workers.saturating_mul(scenario.concurrency);
    NodeConfig {
        node: name.to_owned(),
        lease: LEASE,
        renew_every: HEARTBEAT,
        rescue_every: HEARTBEAT,
        poll_every: Duration::from_millis(200),
        // Room for every task slot, and as many waiting.
        max_in_flight: slots.saturating_mul(2).max(1),
        // As the pool's own breaker: 5 failures in a row, a short cooldown.
        breaker: Some(SharedBreakerConfig {
            failure_threshold: 5,
            cooldown: Duration::from_secs(1),
        }),
        ..NodeConfig::default()
    }
}

/// The scenario's task stream into the table: by time t, `rate × t`
/// tasks offered, until exactly `rate × duration` are.
struct Stream<'a> {
    scenario: &'a Scenario,
    rng: SmallRng,
    start: Instant,
    planned: u64,
    offered: u64,
    /// Enqueued (committed).
    submitted: u64,
    /// Refused by the store (logged).
    rejected: u64,
}

impl<'a> Stream<'a> {
    fn new(scenario: &'a Scenario) -> Self {
        Self {
            scenario,
            rng: SmallRng::seed_from_u64(scenario.seed),
            start: Instant::now(),
            planned: scenario.task_count(),
            offered: 0,
            submitted: 0,
            rejected: 0,
        }
    }

    /// Enqueues the tasks due by now, each made by `make` from its number
    /// and job; `false` once every task was offered.
    async fn step<T: Serialize>(&mut self, store: &PgStore, make: impl Fn(u64, Job) -> T) -> bool {
        let due = bounds::task_count(self.scenario.rate, self.start.elapsed())
            .unwrap_or(self.planned)
            .min(self.planned);
        while self.offered < due {
            let (job, options) = next_job(self.scenario, &mut self.rng);
            let task = new_task(make(self.offered, job), options);
            self.offered += 1;
            match store.enqueue(task).await {
                Ok(_) => self.submitted += 1,
                Err(error) => {
                    tracing::error!(%error, "enqueue refused");
                    self.rejected += 1;
                }
            }
        }
        self.offered < self.planned
    }
}

fn new_task<T>(task: T, options: TaskOptions) -> NewTask<T> {
    let mut task = NewTask::new(task);
    if let Some(priority) = options.priority {
        task = task.priority(priority);
    }
    task.capability = options.capability;
    task.dependency = options.dependency;
    task.timeout = options.timeout;
    task
}

/// Waits until no task of the queue is ready or running, at most `limit`.
async fn wait_settled(store: &PgStore, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match store.counts().await {
            Ok(c) if c.ready + c.running == 0 => return,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot count the queue"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_nodes_need_a_store_and_in_process_workers() {
        let cluster = Scenario::built_in("cluster").unwrap();
        assert_eq!(cluster.nodes, 3);
        let err = cluster.check_store(None, Isolation::InProcess).unwrap_err();
        assert!(
            matches!(err, DemoError::NeedsStore { nodes: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("--store"), "{err}");
        let err = cluster
            .check_store(Some("host=/tmp"), Isolation::Process)
            .unwrap_err();
        assert!(matches!(err, DemoError::NodesInProcess { .. }), "{err}");
        cluster
            .check_store(Some("host=/tmp"), Isolation::InProcess)
            .unwrap();
        // One node runs anywhere, with a store or without.
        let calm = Scenario::built_in("calm").unwrap();
        calm.check_store(None, Isolation::Process).unwrap();
        calm.check_store(Some("host=/tmp"), Isolation::Process)
            .unwrap();
    }

    #[test]
    fn nodes_are_bounded() {
        let many = Scenario {
            nodes: 9,
            ..Scenario::default()
        };
        assert_eq!(many.validate().unwrap_err().field(), "nodes");
        let none = Scenario {
            nodes: 0,
            ..Scenario::default()
        };
        assert_eq!(none.validate().unwrap_err().field(), "nodes");
    }
}
