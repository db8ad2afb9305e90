//! [`DurableNode`]: one node of a durable queue. It claims tasks from the
//! store into its local Candado pool, keeps their leases renewed while the
//! pool is ready, reports each attempt's end (fenced), rescues tasks whose
//! lease expired on any node, and hands back what it did not finish when
//! it stops.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use candado_pool::{Pool, TaskFailure, TaskHandler, TaskOptions};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::reporting::settle_all;
use crate::{Claimed, PgStore, SharedBreakerConfig, StoreError, Wakeups};

/// Attempts reported at most in one statement.
const SETTLE_BATCH: usize = 512;

/// Claims a node has under way at once.
const MAX_CLAIMS: usize = 2;

/// How a node claims, leases and polls.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// This node's name, unique among the queue's nodes: leases are held
    /// in it (default: `host-pid`).
    pub node: String,
    /// How long a claim is good for without renewal (default 30 s). A node
    /// that dies loses its tasks to a rescue this long after its last
    /// renewal.
    pub lease: Duration,
    /// How often leases are renewed (default 10 s; well under `lease`).
    pub renew_every: Duration,
    /// How often the node claims without a notification (default 1 s).
    pub poll_every: Duration,
    /// How often the node rescues expired leases (default 5 s).
    pub rescue_every: Duration,
    /// Tasks the node holds at once, running or waiting in its pool
    /// (default 16).
    pub max_in_flight: usize,
    /// The capabilities its pool offers (tasks needing others are left).
    pub capabilities: Vec<String>,
    /// Shared per-dependency breakers (default on).
    pub breaker: Option<SharedBreakerConfig>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "node".into());
        Self {
            node: format!("{host}-{}", std::process::id()),
            lease: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            poll_every: Duration::from_secs(1),
            rescue_every: Duration::from_secs(5),
            max_in_flight: 16,
            capabilities: Vec::new(),
            breaker: Some(SharedBreakerConfig::default()),
        }
    }
}

impl NodeConfig {
    fn validate(&self) -> Result<(), StoreError> {
        let invalid = |field, problem: &str| {
            Err(StoreError::Invalid {
                field,
                problem: problem.into(),
            })
        };
        if self.node.is_empty() {
            return invalid("node", "must not be empty");
        }
        if self.max_in_flight == 0 {
            return invalid("max_in_flight", "must be at least 1");
        }
        for (field, d) in [
            ("renew_every", self.renew_every),
            ("poll_every", self.poll_every),
            ("rescue_every", self.rescue_every),
        ] {
            if d.is_zero() {
                return invalid(field, "must be greater than zero");
            }
        }
        if self.renew_every >= self.lease {
            return invalid("renew_every", "must be shorter than lease");
        }
        Ok(())
    }
}

/// What a node did, when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeReport {
    /// Tasks claimed.
    pub claimed: u64,
    /// Attempts that completed (and were accepted).
    pub completed: u64,
    /// Attempts that failed (scheduled again or dead-lettered).
    pub failed: u64,
    /// Reports fenced off: the lease had been lost to a rescue.
    pub fenced: u64,
    /// Tasks handed back unfinished at the stop.
    pub released: u64,
    /// Tasks this node rescued from expired leases.
    pub rescued: u64,
    /// Store operations that failed (the database was unreachable, say):
    /// each was logged, and the node went on. A lost report leaves its task
    /// to a rescue when its lease expires.
    pub store_errors: u64,
}

/// One node of a durable queue: a Candado pool fed from a [`PgStore`].
///
/// The pool's own retries should be off (`retry.max_retries = 0`): each
/// local attempt is one durable attempt, retried by the store with its
/// backoff, on whichever node claims it next.
pub struct DurableNode<H: TaskHandler> {
    store: PgStore,
    pool: Pool<H>,
    config: NodeConfig,
}

impl<H: TaskHandler> std::fmt::Debug for DurableNode<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableNode")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(crate) type Finished<H> = (
    Claimed<()>,
    Result<<H as TaskHandler>::Output, TaskFailure<<H as TaskHandler>::Task>>,
);

impl<H> DurableNode<H>
where
    H: TaskHandler,
    H::Task: Serialize + DeserializeOwned,
    H::Output: Serialize,
{
    /// A node running the store's tasks on `pool`.
    pub fn new(store: PgStore, pool: Pool<H>, config: NodeConfig) -> Result<Self, StoreError> {
        config.validate()?;
        Ok(Self {
            store,
            pool,
            config,
        })
    }

    /// Runs until `stop` resolves: claims, runs, renews, reports, rescues.
    /// Then it stops claiming, shuts its pool down (the running attempts
    /// finish within `drain`) and hands back what did not finish.
    ///
    /// A database that goes away does not end the node: each failed store
    /// operation is logged and counted (`store_errors`), and the node goes
    /// on; claims resume when the database is back.
    pub async fn run(self, stop: impl Future<Output = ()>, drain: Duration) -> NodeReport {
        let Self {
            store,
            pool,
            config,
        } = self;
        let wake = Wakeups::listen(&store.url, store.queue());
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished<H>>();
        let mut held: HashMap<i64, u32> = HashMap::new();
        let mut report = NodeReport::default();
        let mut renew = tokio::time::interval(config.renew_every);
        let mut rescue = tokio::time::interval(config.rescue_every);
        let mut stop = std::pin::pin!(stop);
        // Up to two claims and one report in flight, each on its own
        // connection, none waiting for another: a node claims the
        // successors of finished tasks while their ends are still being
        // written, and while an earlier claim is under way, so the tasks
        // that finish during one claim do not wait for it to return.
        let mut claiming: FuturesUnordered<Pending<'_, Claims<H>>> = FuturesUnordered::new();
        // Room promised to the claims under way.
        let mut reserved = 0_usize;
        let mut reporting: Option<Pending<'_, NodeReport>> = None;
        let mut finished: Vec<Finished<H>> = Vec::new();
        let mut claim_now = true;
        loop {
            let room = config.max_in_flight.saturating_sub(held.len() + reserved);
            // Each claim is a statement: a second one only for a fair
            // share of the node's room.
            let worth = if claiming.is_empty() {
                1
            } else {
                (config.max_in_flight / 4).max(1)
            };
            if claim_now && claiming.len() < MAX_CLAIMS && room >= worth {
                claim_now = false;
                reserved += room;
                let claim = store.claim(&config.node, &config.capabilities, room, config.lease);
                claiming.push(Box::pin(async move { (room, claim.await) }));
            }
            if reporting.is_none() && !finished.is_empty() {
                let batch = std::mem::take(&mut finished);
                let (store, pool, config) = (&store, &pool, &config);
                reporting = Some(Box::pin(async move {
                    let mut part = NodeReport::default();
                    settle_all(store, pool, config, batch, &mut part).await;
                    part
                }));
            }
            tokio::select! {
                () = &mut stop => break,
                Some(first) = done_rx.recv() => {
                    // Whatever else finished meanwhile is reported with it.
                    held.remove(&first.0.id);
                    finished.push(first);
                    while finished.len() < SETTLE_BATCH {
                        match done_rx.try_recv() {
                            Ok(more) => {
                                held.remove(&more.0.id);
                                finished.push(more);
                            }
                            Err(_) => break,
                        }
                    }
                    claim_now = true;
                }
                Some((asked, claimed)) = claiming.next(), if !claiming.is_empty() => {
                    reserved -= asked;
                    let claimed = survive(claimed, "claim", &mut report).unwrap_or_default();
                    // A full batch: there may be more at once.
                    claim_now = claimed.len() == asked;
                    start_all(&pool, &store, &config, claimed, &done_tx, &mut held, &mut report).await;
                }
                part = in_flight(&mut reporting) => {
                    reporting = None;
                    report.absorb(part);
                }
                woken = wake.wait(config.poll_every) => claim_now = woken || held.len() < config.max_in_flight,
                _ = renew.tick() => {
                    // Leases live as long as the pool can run their tasks:
                    // a node whose pool is not ready lets them expire.
                    let ready = pool.metrics().await.is_ok_and(|m| m.health.ready);
                    if ready {
                        let ids: Vec<i64> = held.keys().copied().collect();
                        let renewed = store.renew(&config.node, &ids, config.lease).await;
                        survive(renewed, "renew leases", &mut report);
                    }
                }
                _ = rescue.tick() => {
                    let rescued = survive(store.rescue().await, "rescue", &mut report);
                    report.rescued += rescued.map_or(0, |ids| ids.len() as u64);
                    claim_now = true;
                }
            }
        }
        // Claims under way when the stop came: their tasks were never
        // started, so they go back at once.
        while let Some((_, claimed)) = claiming.next().await {
            for task in survive(claimed, "claim", &mut report).unwrap_or_default() {
                report.claimed += 1;
                let released = store.release(&config.node, task.id, task.attempt).await;
                if survive(released, "hand a task back", &mut report) == Some(true) {
                    report.released += 1;
                }
            }
        }
        if let Some(part) = reporting.take() {
            report.absorb(part.await);
        }
        pool.shutdown_gracefully(drain).await;
        while let Ok((task, result)) = done_rx.try_recv() {
            held.remove(&task.id);
            finished.push((task, result));
        }
        settle_all(&store, &pool, &config, finished, &mut report).await;
        for (id, attempt) in held {
            let released = store.release(&config.node, id, attempt).await;
            if survive(released, "hand a task back", &mut report) == Some(true) {
                report.released += 1;
            }
        }
        report
    }
}

/// A store operation under way in the node's loop.
type Pending<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + 'a>>;

/// A claim's answer, with how many tasks it asked for.
type Claims<H> = (
    usize,
    Result<Vec<Claimed<<H as TaskHandler>::Task>>, StoreError>,
);

/// The result of the operation in `slot`; never resolves while the slot
/// is empty.
async fn in_flight<T>(slot: &mut Option<Pending<'_, T>>) -> T {
    match slot {
        Some(operation) => operation.await,
        None => std::future::pending().await,
    }
}

impl NodeReport {
    /// Adds the counts of `part` (a report's share) to these.
    fn absorb(&mut self, part: NodeReport) {
        self.claimed += part.claimed;
        self.completed += part.completed;
        self.failed += part.failed;
        self.fenced += part.fenced;
        self.released += part.released;
        self.rescued += part.rescued;
        self.store_errors += part.store_errors;
    }
}

/// A store operation's result; a failure is logged and counted, and the
/// node goes on.
pub(crate) fn survive<T>(
    result: Result<T, StoreError>,
    what: &str,
    report: &mut NodeReport,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            report.store_errors += 1;
            tracing::warn!(%error, operation = what, "a store operation failed; the node goes on");
            None
        }
    }
}

/// Submits claimed tasks to the pool and holds them; a task the pool
/// refuses is handed back.
async fn start_all<H: TaskHandler>(
    pool: &Pool<H>,
    store: &PgStore,
    config: &NodeConfig,
    claimed: Vec<Claimed<H::Task>>,
    done: &mpsc::UnboundedSender<Finished<H>>,
    held: &mut HashMap<i64, u32>,
    report: &mut NodeReport,
) {
    for task in claimed {
        report.claimed += 1;
        let (id, attempt) = (task.id, task.attempt);
        match start(pool, store, &config.node, task, done).await {
            Ok(true) => {
                held.insert(id, attempt);
            }
            Ok(false) => report.released += 1,
            Err(e) => {
                report.store_errors += 1;
                tracing::warn!(id, error = %e, "handing a refused task back failed; its lease will expire");
            }
        }
    }
}

/// Submits a claimed task to the pool; its end comes back on `done`. A
/// task the pool refuses (full, shutting down) is handed back: `false`.
async fn start<H>(
    pool: &Pool<H>,
    store: &PgStore,
    node: &str,
    task: Claimed<H::Task>,
    done: &mpsc::UnboundedSender<Finished<H>>,
) -> Result<bool, StoreError>
where
    H: TaskHandler,
{
    let options = TaskOptions {
        priority: Some(task.priority),
        timeout: task.timeout,
        capability: task.capability.clone(),
        dependency: task.dependency.clone(),
        ..TaskOptions::default()
    };
    let meta = Claimed {
        id: task.id,
        attempt: task.attempt,
        task: (),
        priority: task.priority,
        capability: task.capability,
        dependency: task.dependency,
        timeout: task.timeout,
    };
    match pool.submit_with(task.task, options) {
        Ok(handle) => {
            let done = done.clone();
            actix::spawn(async move {
                let _ = done.send((meta, handle.await));
            });
        }
        Err(refused) => {
            tracing::warn!(id = meta.id, error = %refused, "the pool refused a claimed task; handing it back");
            store.release(node, meta.id, meta.attempt).await?;
            return Ok(false);
        }
    }
    Ok(true)
}
