//! The observer: what is watched, and the answers built from it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::{Arbiter, ArbiterHandle};
use candado::{EventStream, Runtime, SupervisorRef, DEFAULT_EVENT_CAPACITY};
use candado_pool::{Pool, TaskHandler};
use tokio::sync::{broadcast, oneshot};

use crate::events::EventCounters;
use crate::feed::{pump, Feed};
use crate::history::{self, History};
use crate::readiness::{self, Readiness};
use crate::snapshot::{self, ObservedPool, Snapshot};
use crate::{EventFeed, ObserveError, ProcessMemory, TreeSnapshot};

/// How long a probe or a scrape waits for the control thread, a tree or a
/// pool before it reports it silent (500 ms): the control thread answers in
/// microseconds when it is well, and a prober's own timeout (Kubernetes: 1 s
/// by default) should see the 503, not a closed connection.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Builds an [`Observer`]: which trees and pools it watches.
///
/// ```
/// use actix::{Actor, Context};
/// use candado::{ChildSpec, Runtime, SupervisorSpec};
/// use candado_observe::Observer;
///
/// struct Worker;
/// impl Actor for Worker {
///     type Context = Context<Self>;
/// }
///
/// actix::System::new().block_on(async {
///     let runtime = Runtime::builder().worker_threads(1).build().unwrap();
///     let spec = SupervisorSpec::new("app").child(ChildSpec::worker("w", |_| Worker));
///     let root = runtime.start(spec).await.unwrap();
///     let observer = Observer::builder(&runtime).tree(&root).build().unwrap();
///     let text = observer.render_metrics().await;
///     assert!(text.contains(r#"candado_children{supervisor="app",state="running"} 1"#));
///     assert!(observer.health().await.is_ok());
///     assert!(observer.readiness().await.ready);
///     runtime.shutdown().await;
/// });
/// ```
#[derive(Debug)]
pub struct ObserverBuilder {
    events: EventStream,
    control: ArbiterHandle,
    trees: Vec<SupervisorRef>,
    pools: Vec<Arc<dyn ObservedPool>>,
    memory: Option<ProcessMemory>,
    probe_timeout: Duration,
}

impl ObserverBuilder {
    /// Watches the tree below `root` (a root started with
    /// [`Runtime::start`](candado::Runtime::start)).
    pub fn tree(mut self, root: &SupervisorRef) -> Self {
        if !self.trees.iter().any(|t| t.path() == root.path()) {
            self.trees.push(root.clone());
        }
        self
    }

    /// Watches `pool`: its metrics, its breakers, and its workers' tree.
    pub fn pool<H: TaskHandler>(mut self, pool: &Pool<H>) -> Self
    where
        Pool<H>: Send + Sync,
    {
        self = self.tree(pool.supervisor());
        self.pools.push(Arc::new(pool.clone()));
        self
    }

    /// Exports the RSS readings of process workers taken by `memory`'s
    /// probes (`candado_process_rss_bytes`).
    pub fn process_memory(mut self, memory: &ProcessMemory) -> Self {
        self.memory = Some(memory.clone());
        self
    }

    /// How long a probe or a scrape waits for the control thread, a tree
    /// or a pool (default [`DEFAULT_PROBE_TIMEOUT`]).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Starts the observer's thread, which counts the runtime's events from
    /// now on. Must run inside an actix `System`.
    pub fn build(self) -> Result<Observer, ObserveError> {
        if actix::System::try_current().is_none() {
            return Err(ObserveError::NoSystem);
        }
        let thread = Arbiter::new();
        let counters = EventCounters::default();
        let (feed, _) = broadcast::channel(DEFAULT_EVENT_CAPACITY);
        thread.spawn(pump(self.events, counters.clone(), feed.clone()));
        let inner = Arc::new(Inner {
            control: self.control,
            trees: self.trees,
            pools: self.pools,
            memory: self.memory,
            probe_timeout: self.probe_timeout,
            counters,
            feed,
            seen_priorities: Mutex::new(BTreeMap::new()),
            history: History::default(),
            thread,
        });
        if !inner.pools.is_empty() {
            // Weak: the sampler must not keep the observer alive.
            inner.thread.spawn(history::sample(Arc::downgrade(&inner)));
        }
        Ok(Observer { inner })
    }
}

/// Watches a runtime's events, trees and pools: renders their metrics
/// (OpenMetrics text), answers health and readiness probes, snapshots the
/// trees, and passes the events on. Cheap to clone.
///
/// Event counting runs on a thread of the observer's own, so neither user
/// load on the worker threads nor the application's own arbiter can delay
/// it; scrapes and probes run wherever they are awaited, and cost the
/// control thread one short round trip per supervisor (and per pool).
#[derive(Debug, Clone)]
pub struct Observer {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// The supervisors' thread, for the health probe's round trip.
    control: ArbiterHandle,
    trees: Vec<SupervisorRef>,
    pub(crate) pools: Vec<Arc<dyn ObservedPool>>,
    memory: Option<ProcessMemory>,
    pub(crate) probe_timeout: Duration,
    counters: EventCounters,
    /// Every event once counted, for [`Observer::subscribe`].
    feed: broadcast::Sender<Feed>,
    /// Priorities seen in each pool's queue, so an emptied one reads 0.
    seen_priorities: Mutex<BTreeMap<String, BTreeSet<u8>>>,
    /// Each pool's recent points, for the dashboard's charts.
    pub(crate) history: History,
    /// The observer's thread: event counting (and the HTTP server's
    /// command loop); stopped when the last handle goes.
    pub(crate) thread: Arbiter,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.thread.stop();
    }
}

impl Observer {
    /// A builder that subscribes to `runtime`'s events now; events before
    /// this call are not counted.
    pub fn builder(runtime: &Runtime) -> ObserverBuilder {
        ObserverBuilder {
            events: runtime.subscribe(),
            control: runtime.control_arbiter(),
            trees: Vec::new(),
            pools: Vec::new(),
            memory: None,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
        }
    }

    /// Every metric in the OpenMetrics text format, ending with `# EOF`
    /// (what `/metrics` serves). Reads the trees and pools now, each
    /// within the probe timeout; one that does not answer is reported
    /// down (`candado_tree_up`, `candado_pool_up` at 0) and its other
    /// figures are left out of this scrape.
    pub async fn render_metrics(&self) -> String {
        let inner = &self.inner;
        let mut trees = Vec::with_capacity(inner.trees.len());
        for root in &inner.trees {
            trees.push(snapshot::read_tree(root, inner.probe_timeout).await);
        }
        let mut pools = Vec::with_capacity(inner.pools.len());
        for pool in &inner.pools {
            let name = pool.name();
            let mut seen = self
                .seen_priorities()
                .get(name)
                .cloned()
                .unwrap_or_default();
            let reading = snapshot::read_pool(pool.as_ref(), inner.probe_timeout, &mut seen).await;
            self.seen_priorities()
                .entry(name.to_owned())
                .or_default()
                .extend(seen);
            pools.push(reading);
        }
        let memory = match &inner.memory {
            Some(memory) => snapshot::running_memory(memory, &trees),
            None => Vec::new(),
        };
        let snapshot = Snapshot {
            trees,
            pools,
            memory,
        };
        snapshot::render(&inner.counters, snapshot)
    }

    fn seen_priorities(&self) -> MutexGuard<'_, BTreeMap<String, BTreeSet<u8>>> {
        let seen = self.inner.seen_priorities.lock();
        seen.unwrap_or_else(|p| p.into_inner())
    }

    /// The liveness probe (`/healthz`): the control thread runs a task
    /// within the probe timeout. Every supervisor lives on that thread, so
    /// when it answers, supervisors can act.
    pub async fn health(&self) -> Result<(), ObserveError> {
        let (tx, rx) = oneshot::channel();
        let scheduled = self.inner.control.spawn(async move {
            let _ = tx.send(());
        });
        if !scheduled {
            return Err(ObserveError::ControlThreadGone);
        }
        match tokio::time::timeout(self.inner.probe_timeout, rx).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ObserveError::ControlThreadGone),
            Err(_) => Err(ObserveError::ControlThreadStalled(self.inner.probe_timeout)),
        }
    }

    /// The readiness probe (`/readyz`): see [`Readiness`].
    pub async fn readiness(&self) -> Readiness {
        let inner = &self.inner;
        let mut trees = Vec::with_capacity(inner.trees.len());
        for root in &inner.trees {
            trees.push(snapshot::read_tree(root, inner.probe_timeout).await);
        }
        let mut pools = Vec::with_capacity(inner.pools.len());
        for pool in &inner.pools {
            let metrics = tokio::time::timeout(inner.probe_timeout, pool.metrics()).await;
            pools.push((pool.name().to_owned(), metrics.ok().and_then(Result::ok)));
        }
        readiness::judge(&trees, &pools)
    }

    /// A snapshot of every watched tree that answers within the probe
    /// timeout, in the order they were added (what `/api/tree` serves).
    pub async fn trees(&self) -> Vec<TreeSnapshot> {
        let mut trees = Vec::with_capacity(self.inner.trees.len());
        for root in &self.inner.trees {
            if let Some(tree) = snapshot::read_tree(root, self.inner.probe_timeout)
                .await
                .tree
            {
                trees.push(tree);
            }
        }
        trees
    }

    /// The runtime's events from now on, each once the metrics counted it
    /// (what `/api/events` streams).
    pub fn subscribe(&self) -> EventFeed {
        EventFeed {
            rx: self.inner.feed.subscribe(),
        }
    }
}
