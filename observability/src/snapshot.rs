//! What one scrape reads: the trees, the pools and the memory readings,
//! and the collector that writes them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use candado::{BreakersSnapshot, ChildStatus, SupervisorRef};
use candado_pool::{Pool, PoolError, PoolMetrics, TaskHandler, TaskId};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

use crate::events::EventCounters;
use crate::{memory, pool_metrics, tree_metrics, DeadLetter, ProcessMemory, TreeSnapshot};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A pool, whatever its handler: what the observer reads of it.
pub(crate) trait ObservedPool: Send + Sync + 'static {
    /// Its name (its config's `name`, also its worker supervisor's path).
    fn name(&self) -> &str;
    fn metrics(&self) -> BoxFuture<'_, Result<PoolMetrics, PoolError>>;
    /// Its breakers and how many times they opened, if it has breakers.
    fn breakers(&self) -> Option<(BreakersSnapshot, u64)>;
    /// Its dead letters without their payloads, newest first, at most
    /// `limit`; and how many it holds in all.
    fn dead_letters(
        &self,
        limit: usize,
    ) -> BoxFuture<'_, Result<(Vec<DeadLetter>, usize), PoolError>>;
    /// Replays dead task `id` through [`Pool::replay`]; its new id.
    fn replay(&self, id: TaskId) -> BoxFuture<'_, Result<TaskId, PoolError>>;
}

impl<H: TaskHandler> ObservedPool for Pool<H>
where
    Pool<H>: Send + Sync,
{
    fn name(&self) -> &str {
        self.supervisor().path()
    }

    fn metrics(&self) -> BoxFuture<'_, Result<PoolMetrics, PoolError>> {
        Box::pin(Pool::metrics(self))
    }

    fn breakers(&self) -> Option<(BreakersSnapshot, u64)> {
        Pool::breakers(self).map(|b| (b.snapshot(), b.opened_total()))
    }

    fn dead_letters(
        &self,
        limit: usize,
    ) -> BoxFuture<'_, Result<(Vec<DeadLetter>, usize), PoolError>> {
        Box::pin(async move {
            let listed = Pool::dead_letters(self).await?;
            let mut dead = Vec::with_capacity(listed.len().min(limit));
            for summary in listed.iter().rev().take(limit) {
                match self.inspect_dead(summary.id).await {
                    Ok(task) => dead.push(DeadLetter {
                        id: task.id,
                        reason: task.reason,
                        options: task.options,
                        attempts: task.attempts,
                    }),
                    // Replayed or purged since the listing.
                    Err(PoolError::UnknownDeadTask(_)) => {}
                    Err(other) => return Err(other),
                }
            }
            Ok((dead, listed.len()))
        })
    }

    fn replay(&self, id: TaskId) -> BoxFuture<'_, Result<TaskId, PoolError>> {
        // The handle is dropped: the task runs all the same, and its
        // outcome shows in the pool's books and events.
        Box::pin(async move { Pool::replay(self, id).await.map(|handle| handle.id()) })
    }
}

impl std::fmt::Debug for dyn ObservedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pool").field(&self.name()).finish()
    }
}

/// One tree as a scrape found it.
#[derive(Debug)]
pub(crate) struct TreeReading {
    /// The root's path.
    pub(crate) root: String,
    /// `None` if the tree is down or did not answer in time.
    pub(crate) tree: Option<TreeSnapshot>,
}

/// One pool as a scrape found it.
#[derive(Debug)]
pub(crate) struct PoolReading {
    pub(crate) name: String,
    /// `None` if it did not answer in time.
    pub(crate) metrics: Option<PoolMetrics>,
    /// Ready tasks by priority, with 0 for every priority seen before.
    pub(crate) queue_depth: BTreeMap<u8, u64>,
    pub(crate) breakers: Option<(BreakersSnapshot, u64)>,
}

/// Everything one scrape reads; encoded by its [`Collector`] impl.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) trees: Vec<TreeReading>,
    pub(crate) pools: Vec<PoolReading>,
    /// (supervisor, child, bytes) of running process workers.
    pub(crate) memory: Vec<(String, String, u64)>,
}

/// Walks `root` within `timeout`.
pub(crate) async fn read_tree(root: &SupervisorRef, timeout: Duration) -> TreeReading {
    let tree = match tokio::time::timeout(timeout, TreeSnapshot::of(root)).await {
        Ok(Ok(tree)) => Some(tree),
        Ok(Err(_)) | Err(_) => None,
    };
    TreeReading {
        root: root.path().to_owned(),
        tree,
    }
}

/// Reads `pool` within `timeout`; `seen` holds the priorities seen in its
/// queue so far (updated), so a priority that empties reads 0, not nothing.
pub(crate) async fn read_pool(
    pool: &dyn ObservedPool,
    timeout: Duration,
    seen: &mut BTreeSet<u8>,
) -> PoolReading {
    let metrics = match tokio::time::timeout(timeout, pool.metrics()).await {
        Ok(Ok(metrics)) => Some(metrics),
        Ok(Err(_)) | Err(_) => None,
    };
    let ready = metrics
        .as_ref()
        .map(|m| m.tasks.ready_by_priority.clone())
        .unwrap_or_default();
    seen.extend(ready.keys());
    let queue_depth = seen
        .iter()
        .map(|p| (*p, ready.get(p).copied().unwrap_or(0)))
        .collect();
    PoolReading {
        name: pool.name().to_owned(),
        metrics,
        queue_depth,
        breakers: pool.breakers(),
    }
}

/// The memory readings of process workers that are running now: a reading
/// of a child its supervisor's snapshot shows down (or gone) is stale. A
/// supervisor outside the observed trees is taken at its word.
pub(crate) fn running_memory(
    memory: &ProcessMemory,
    trees: &[TreeReading],
) -> Vec<(String, String, u64)> {
    let supervisors: BTreeMap<&str, &candado::SupervisorInfo> = trees
        .iter()
        .filter_map(|t| t.tree.as_ref())
        .flat_map(TreeSnapshot::supervisors)
        .map(|s| (s.path.as_str(), s))
        .collect();
    memory
        .readings()
        .into_iter()
        .filter(
            |(supervisor, child, _)| match supervisors.get(supervisor.as_str()) {
                Some(info) => info
                    .children
                    .iter()
                    .any(|c| &c.id == child && c.status == ChildStatus::Running),
                None => true,
            },
        )
        .collect()
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        tree_metrics::encode(&self.trees, &mut encoder)?;
        pool_metrics::encode(&self.pools, &mut encoder)?;
        memory::encode(&self.memory, &mut encoder)
    }
}

/// The OpenMetrics text of the event counters and a snapshot, `candado_`
/// prefixed, ending with `# EOF`.
pub(crate) fn render(counters: &EventCounters, snapshot: Snapshot) -> String {
    let mut registry = Registry::with_prefix("candado");
    counters.register(&mut registry);
    registry.register_collector(Box::new(snapshot));
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String does not fail");
    text
}
