//! Building a pool: the router, the dead-letter store, the workers and their
//! supervisor.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use actix::Actor;
use candado::{
    BreakerStrategy, ChildSpec, Liveness, MemoryGuard, Runtime, ShutdownPolicy, SupervisorSpec,
};
use candado_process::ProcessCommand;
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

use crate::dead_letter::DeadLetters;
use crate::forwarder;
use crate::isolation::{ProcessEntry, Remote};
use crate::messages::DiscardHook;
use crate::router::{Gauges, Router, RouterSettings, Routers, MAX_ROUTERS};
use crate::store::MemoryStore;
use crate::worker::{Exec, PoolWorker};
use crate::{ConfigError, Isolation, PoolConfig, PoolError, TaskHandler};

use super::{Advertised, Capabilities, Factory, Inner, Pool};

/// Builds a [`Pool`].
///
/// ```no_run
/// use candado::Runtime;
/// use candado_pool::{PoolBuilder, PoolConfig, TaskContext, TaskHandler};
///
/// struct Echo;
/// impl TaskHandler for Echo {
///     type Task = String;
///     type Output = String;
///     type Error = String;
///     fn handle(&mut self, s: String, _: TaskContext) -> impl std::future::Future<Output = Result<String, String>> + 'static {
///         async move { Ok(s) }
///     }
/// }
///
/// # actix::System::new().block_on(async {
/// let runtime = Runtime::builder().build().unwrap();
/// let pool = PoolBuilder::new(|| Echo).config(PoolConfig::default()).start(&runtime).await.unwrap();
/// let answer = pool.submit("hi".to_owned()).unwrap().await.unwrap();
/// assert_eq!(answer, "hi");
/// pool.shutdown(candado_pool::ShutdownMode::Graceful { deadline: std::time::Duration::from_secs(5) }).await;
/// # });
/// ```
pub struct PoolBuilder<H: TaskHandler> {
    factory: Factory<H>,
    config: PoolConfig,
    capabilities: Option<Capabilities>,
    /// What worker processes run, for `isolation = "process"` (or why it
    /// cannot be found).
    process: Option<Result<ProcessEntry<H>, String>>,
    /// Told of every task load shedding discards.
    on_discard: Option<DiscardHook<H::Task>>,
}

impl<H: TaskHandler> std::fmt::Debug for PoolBuilder<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<H: TaskHandler> PoolBuilder<H> {
    /// A builder with the default config; `factory` builds one handler per
    /// worker incarnation, on the worker's thread.
    pub fn new(factory: impl Fn() -> H + Send + Sync + 'static) -> Self {
        Self {
            factory: Arc::new(factory),
            config: PoolConfig::default(),
            capabilities: None,
            process: None,
            on_discard: None,
        }
    }

    /// Calls `hook` with a copy of every task the overflow policy
    /// discards (`overflow = "discard_oldest"`), with reason `discarded`.
    /// The task is in the dead-letter store as well, and its handle
    /// resolves [`TaskFailure::DeadLettered`](crate::TaskFailure::DeadLettered):
    /// the hook is a notification, nothing depends on it. It runs on the
    /// thread of the submitter whose task made the room, after the router's
    /// lock is released; keep it short. A hook that panics is logged and
    /// changes nothing.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// # use candado_pool::{TaskContext, TaskHandler};
    /// # struct Echo;
    /// # impl TaskHandler for Echo {
    /// #     type Task = String; type Output = String; type Error = String;
    /// #     fn handle(&mut self, s: String, _: TaskContext) -> impl std::future::Future<Output = Result<String, String>> + 'static { async move { Ok(s) } }
    /// # }
    /// let discarded = Arc::new(Mutex::new(Vec::new()));
    /// let seen = discarded.clone();
    /// let builder = candado_pool::PoolBuilder::new(|| Echo)
    ///     .on_discard(move |dead| seen.lock().unwrap().push(dead.task));
    /// # drop(builder);
    /// ```
    pub fn on_discard(
        mut self,
        hook: impl Fn(crate::DeadTask<H::Task>) + Send + Sync + 'static,
    ) -> Self {
        self.on_discard = Some(Arc::new(hook));
        self
    }

    /// Uses `config` (validated at [`start`](Self::start)).
    pub fn config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    /// Gives worker number `n` (0-based, in creation order) its own
    /// capabilities, in addition to `config.capabilities`.
    pub fn capabilities_for(
        mut self,
        f: impl Fn(usize) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.capabilities = Some(Arc::new(f));
        self
    }

    /// Starts the router, the dead-letter store and the workers.
    pub async fn start(self, runtime: &Runtime) -> Result<Pool<H>, PoolError> {
        let config = self.config;
        config.validate()?;
        let exec_of = exec_of(&config, self.factory.clone(), self.process)?;
        let (events, _) = broadcast::channel(4096);
        let gauges = Arc::new(Gauges::default());
        let breakers = match config.breaker {
            Some(b) => Some(
                BreakerStrategy::new(b.strategy_config())
                    .map_err(|e| ConfigError::invalid("breaker", e.to_string()))?,
            ),
            None => None,
        };
        let settings = RouterSettings {
            name: config.name.clone(),
            concurrency: config.concurrency,
            dispatch: config.dispatch,
            task_timeout: config.task_timeout,
            retry: config.retry,
            tick: config.router_tick,
            max_ejected_percent: config.breaker.map_or(0, |b| b.max_ejected_percent),
            rate_limit: config.rate_limit,
        };
        let (tx, rx) = oneshot::channel();
        let (ev, g, handles) = (
            events.clone(),
            gauges.clone(),
            breakers.as_ref().map(|b| b.breakers()),
        );
        let capacity = config.dead_letter_capacity;
        runtime.control_arbiter().spawn_fn(move || {
            let _ = tx.send(DeadLetters::new(capacity, ev).start());
        });
        let dead = rx.await.map_err(|_| PoolError::Stopped)?;
        // A router per worker thread (see `router/routers.rs`), or one for
        // a pool with a rate limit (one bucket for all its starts).
        let count = if config.rate_limit.is_some() {
            1
        } else {
            runtime.worker_os_threads().clamp(1, MAX_ROUTERS)
        };
        let epoch = tokio::time::Instant::now();
        let routers = (0..count)
            .map(|index| {
                Router::new(
                    settings.clone(),
                    g.clone(),
                    events.clone(),
                    MemoryStore::new(config.promote_after, dead.clone()),
                    handles.clone(),
                )
                .with_discard_hook(self.on_discard.clone())
                .in_pool(epoch, index, count)
            })
            .collect();
        let router = Routers::start(
            &config.name,
            routers,
            events.clone(),
            &runtime.control_arbiter(),
        );

        let base_caps = config.capabilities.clone();
        let extra = self.capabilities.clone();
        let capabilities_of = move |n: usize| {
            let mut caps = base_caps.clone();
            if let Some(f) = &extra {
                caps.extend(f(n));
            }
            caps
        };
        // What the workers offer, as they are created (start-up and
        // scale-up): never a walk over every index up to `max_size`.
        let advertised: Advertised =
            Arc::new(RwLock::new(config.capabilities.iter().cloned().collect()));
        let make_worker: Arc<dyn Fn(usize) -> ChildSpec + Send + Sync> = {
            let (exec_of, router, yield_every, batch, offered) = (
                exec_of,
                router.clone(),
                config.yield_every,
                config.batch,
                advertised.clone(),
            );
            let shutdown = ShutdownPolicy::Timeout(config.worker_shutdown_timeout);
            let isolated = config.isolation == Isolation::Process;
            Arc::new(move |n| {
                let (exec_of, router, caps) = (exec_of.clone(), router.clone(), capabilities_of(n));
                offered.write().extend(caps.iter().cloned());
                let spec = ChildSpec::worker(worker_id(n), move |link| {
                    PoolWorker::new(
                        link,
                        exec_of(),
                        router.clone(),
                        caps.clone(),
                        yield_every,
                        batch,
                    )
                })
                .shutdown(shutdown);
                // A worker process's own heartbeats are the worker's: a
                // frozen process is found silent.
                if isolated {
                    spec.external_heartbeats()
                } else {
                    spec
                }
            })
        };
        // Workers are alike and independent: start them all at once.
        let mut spec = SupervisorSpec::new(config.name.clone())
            .concurrent_start(true)
            .intensity(
                config.restart.intensity.max_restarts,
                config.restart.intensity.period,
            )
            .backoff(config.restart.backoff)
            .tick_interval(config.supervisor_tick)
            .heal_limit(config.heal_limit);
        if let Some(l) = config.liveness {
            spec = spec.health(
                Liveness::new(l).map_err(|e| ConfigError::invalid("liveness", e.to_string()))?,
            );
        }
        if let Some(m) = config.memory {
            spec = spec.health(
                MemoryGuard::new(m).map_err(|e| ConfigError::invalid("memory", e.to_string()))?,
            );
        }
        if let Some(b) = &breakers {
            spec = spec.health(b.clone());
        }
        for n in 0..config.size {
            spec = spec.child(make_worker(n));
        }
        let watched = Arc::new(OnceLock::new());
        forwarder::forward(runtime, &config.name, router.clone(), watched.clone());
        let supervisor = runtime.start(spec).await?;
        let _ = watched.set(supervisor.clone());
        forwarder::watch(runtime, supervisor.clone(), router.clone());
        let pool = Pool {
            inner: Arc::new(Inner {
                config,
                router,
                dead,
                supervisor,
                gauges,
                events,
                breakers: breakers.map(|b| b.breakers()),
                advertised,
                make_worker,
                next_id: AtomicU64::new(1),
                next_worker: AtomicUsize::new(0),
                workers: Mutex::new(Vec::new()),
                scaling: tokio::sync::Mutex::new(()),
                control: runtime.control_arbiter(),
            }),
        };
        {
            let size = pool.inner.config.size;
            pool.inner.next_worker.store(size, Ordering::Relaxed);
            *pool.workers() = (0..size).map(worker_id).collect();
        }
        if let Some(auto) = pool.inner.config.autoscale {
            // Weak: autoscaling must not keep a dropped pool running.
            let pool = Arc::downgrade(&pool.inner);
            runtime
                .control_arbiter()
                .spawn(async move { super::autoscale::autoscale(pool, auto).await });
        }
        Ok(pool)
    }
}

impl<H: TaskHandler> PoolBuilder<H>
where
    H::Task: Serialize,
    H::Output: DeserializeOwned,
{
    /// With `isolation = "process"`, each worker runs its handler in a
    /// process of this same program, started with the environment that
    /// makes [`run_if_process_worker(name, …)`](crate::run_if_process_worker)
    /// serve tasks: call that first thing in `main`, with the pool's
    /// factory. With `isolation = "in_process"` this is kept and unused, so
    /// one program serves both. See `docs/process.md`.
    ///
    /// ```no_run
    /// use candado::Runtime;
    /// use candado_pool::{Isolation, Pool, PoolConfig, TaskContext, TaskHandler};
    ///
    /// struct Square;
    /// impl TaskHandler for Square {
    ///     type Task = u64;
    ///     type Output = u64;
    ///     type Error = String;
    ///     fn handle(&mut self, n: u64, _: TaskContext) -> impl std::future::Future<Output = Result<u64, String>> + 'static {
    ///         async move { Ok(n * n) }
    ///     }
    /// }
    ///
    /// fn main() {
    ///     candado_pool::run_if_process_worker("square", || Square);
    ///     actix::System::new().block_on(async {
    ///         let runtime = Runtime::builder().build().unwrap();
    ///         let config = PoolConfig { isolation: Isolation::Process, ..PoolConfig::default() };
    ///         let pool = Pool::builder(|| Square)
    ///             .config(config)
    ///             .process_worker("square")
    ///             .start(&runtime)
    ///             .await
    ///             .unwrap();
    ///         assert_eq!(pool.submit(7).unwrap().await.unwrap(), 49);
    ///         runtime.shutdown().await;
    ///     });
    /// }
    /// ```
    pub fn process_worker(mut self, name: &str) -> Self {
        let command = ProcessCommand::current_exe(name)
            .map(ProcessEntry::new)
            .map_err(|e| format!("cannot find this program to start worker processes: {e}"));
        self.process = Some(command);
        self
    }

    /// Like [`process_worker`](Self::process_worker), with another program
    /// (that calls `run_if_process_worker` with a handler of the same
    /// types), its arguments, environment and working directory.
    pub fn process_command(mut self, command: ProcessCommand) -> Self {
        self.process = Some(Ok(ProcessEntry::new(command)));
        self
    }
}

/// How each worker incarnation runs its attempts, as the config's
/// isolation says.
fn exec_of<H: TaskHandler>(
    config: &PoolConfig,
    factory: Factory<H>,
    process: Option<Result<ProcessEntry<H>, String>>,
) -> Result<Arc<dyn Fn() -> Exec<H> + Send + Sync>, ConfigError> {
    Ok(match config.isolation {
        Isolation::InProcess => Arc::new(move || Exec::Local(RefCell::new(factory()))),
        Isolation::Process => {
            let entry = process
                .ok_or_else(|| {
                    ConfigError::invalid(
                        "isolation",
                        "\"process\" needs the builder's process_worker(name), and                          candado_pool::run_if_process_worker(name, factory) first thing in main",
                    )
                })?
                .map_err(|e| ConfigError::invalid("isolation", e))?;
            let (options, grace) = (config.process.options(), config.process.timeout_grace);
            Arc::new(move || {
                Exec::Remote(Box::new(Remote::new(entry.clone(), options.clone(), grace)))
            })
        }
    })
}

pub(super) fn worker_id(n: usize) -> String {
    format!("worker-{n}")
}
