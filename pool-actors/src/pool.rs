//! The pool facade: build, submit, observe, scale, shut down.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskCx, Poll};
use std::time::Duration;

use actix::{Actor, Addr};
use candado::{
    BackoffConfig, BreakerStrategy, Breakers, ChildSpec, EventStreamError, HealLimit, Liveness,
    MemoryGuard, Runtime, ShutdownPolicy, SupervisorRef, SupervisorSpec,
};
use parking_lot::RwLock;
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

use crate::dead_letter::{Ask, DeadLetters, DeadReply, DeadRequest};
use crate::forwarder;
use crate::router::{Gauges, Router, RouterSettings, SharedRouter, Submit, TaskResult};
use crate::worker::PoolWorker;
use crate::{
    ConfigError, DeadTask, DeadTaskSummary, PoolConfig, PoolError, PoolEvent, PoolMetrics,
    ShutdownMode, ShutdownReport, SubmitError, TaskFailure, TaskHandler, TaskId, TaskOptions,
    UnfinishedAction,
};

type Factory<H> = Arc<dyn Fn() -> H + Send + Sync>;
type Capabilities = Arc<dyn Fn(usize) -> Vec<String> + Send + Sync>;
/// Every capability some worker created so far offers.
type Advertised = Arc<RwLock<HashSet<String>>>;

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
        }
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
        let (events, _) = broadcast::channel(4096);
        let gauges = Arc::new(Gauges::default());
        let breakers = match config.breaker {
            Some(b) => Some(
                BreakerStrategy::new(b.into())
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
            promote_after: config.promote_after,
            tick: config.router_tick,
            max_ejected_percent: config.breaker.map_or(0, |b| b.max_ejected_percent),
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
        let router = SharedRouter::start(
            Router::<H>::new(settings, g, events.clone(), dead.clone(), handles),
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
            let (factory, router, yield_every, batch, offered) = (
                self.factory.clone(),
                router.clone(),
                config.yield_every,
                config.batch,
                advertised.clone(),
            );
            let shutdown = ShutdownPolicy::Timeout(config.worker_shutdown_timeout);
            Arc::new(move |n| {
                let (factory, router, caps) = (factory.clone(), router.clone(), capabilities_of(n));
                offered.write().extend(caps.iter().cloned());
                ChildSpec::worker(worker_id(n), move |link| {
                    PoolWorker::new(
                        link,
                        factory(),
                        router.clone(),
                        caps.clone(),
                        yield_every,
                        batch,
                    )
                })
                .shutdown(shutdown)
            })
        };
        // Workers are alike and independent: start them all at once.
        let mut spec = SupervisorSpec::new(config.name.clone())
            .concurrent_start(true)
            .intensity(config.restart.max_restarts, config.restart.period)
            .backoff(BackoffConfig {
                base: config.restart.backoff_base,
                cap: config.restart.backoff_cap,
                ..BackoffConfig::default()
            })
            .heal_limit(HealLimit {
                max: config.heal_limit.max,
                period: config.heal_limit.period,
                min_gap: config.heal_limit.min_gap,
            });
        if let Some(l) = config.liveness {
            spec = spec.health(
                Liveness::new(l.into())
                    .map_err(|e| ConfigError::invalid("liveness", e.to_string()))?,
            );
        }
        if let Some(m) = config.memory {
            spec = spec.health(
                MemoryGuard::new(m.into())
                    .map_err(|e| ConfigError::invalid("memory", e.to_string()))?,
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
                .spawn(async move { autoscale(pool, auto).await });
        }
        Ok(pool)
    }
}

fn worker_id(n: usize) -> String {
    format!("worker-{n}")
}

struct Inner<H: TaskHandler> {
    config: PoolConfig,
    router: SharedRouter<H>,
    dead: Addr<DeadLetters<H::Task>>,
    supervisor: SupervisorRef,
    gauges: Arc<Gauges>,
    events: broadcast::Sender<PoolEvent>,
    breakers: Option<Breakers>,
    advertised: Advertised,
    make_worker: Arc<dyn Fn(usize) -> ChildSpec + Send + Sync>,
    next_id: AtomicU64,
    next_worker: AtomicUsize,
    /// Worker ids, oldest first (scale-down removes the newest).
    workers: Mutex<Vec<String>>,
    /// Held by every change of size, so a bound is checked in the same
    /// step as the change it allows.
    scaling: tokio::sync::Mutex<()>,
    /// The control thread, to stop the workers when the pool is dropped.
    control: actix::ArbiterHandle,
}

impl<H: TaskHandler> Drop for Inner<H> {
    /// The last handle to a pool that was never shut down: nothing may run
    /// without an owner. The pool shuts down now, handing every unfinished
    /// task back to its submitter (`TaskFailure::Returned`), and its
    /// workers stop. (After `shutdown()` this changes nothing.)
    fn drop(&mut self) {
        let (tx, _) = oneshot::channel();
        self.gauges.closed.store(true, Ordering::SeqCst);
        self.router.shutdown(
            ShutdownMode::Immediate {
                unfinished: UnfinishedAction::Return,
            },
            tx,
        );
        let supervisor = self.supervisor.clone();
        // Torn down with its runtime, there is no thread left to ask.
        let _ = self.control.spawn(async move {
            supervisor.shutdown().await;
        });
    }
}

#[cfg(test)]
impl<H: TaskHandler> Pool<H> {
    /// The router, for white-box tests.
    pub(crate) fn router(&self) -> &SharedRouter<H> {
        &self.inner.router
    }
}

/// A running pool of supervised workers. Cheap to clone.
pub struct Pool<H: TaskHandler> {
    inner: Arc<Inner<H>>,
}

impl<H: TaskHandler> Clone for Pool<H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<H: TaskHandler> std::fmt::Debug for Pool<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner.config.name)
            .finish_non_exhaustive()
    }
}

/// Scales `pool` on its queue depth, every `check_every`, for as long as it
/// runs.
async fn autoscale<H: TaskHandler>(
    pool: std::sync::Weak<Inner<H>>,
    settings: crate::AutoscaleSettings,
) {
    let mut idle_checks: u32 = 0;
    loop {
        tokio::time::sleep(settings.check_every).await;
        let Some(inner) = pool.upgrade() else {
            return;
        };
        let pool = Pool { inner };
        let metrics = pool.inner.router.metrics();
        if pool.inner.gauges.closed.load(Ordering::Relaxed) {
            return;
        }
        let size = pool.size();
        let waiting = metrics.tasks.queued as usize;
        let max = pool.inner.config.max_size;
        if waiting > size.saturating_mul(settings.queue_per_worker) && size < max {
            idle_checks = 0;
            let _ = pool.scale_up(1).await;
        } else if waiting == 0 && metrics.workers.ready > 0 && size > pool.inner.config.min_size {
            idle_checks = idle_checks.saturating_add(1);
            if idle_checks >= settings.idle_checks {
                idle_checks = 0;
                let _ = pool.scale_down(1).await;
            }
        } else {
            idle_checks = 0;
        }
    }
}

/// The eventual result of one task. Resolves exactly once.
pub struct TaskHandle<H: TaskHandler> {
    id: TaskId,
    rx: oneshot::Receiver<TaskResult<H>>,
}

impl<H: TaskHandler> std::fmt::Debug for TaskHandle<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<H: TaskHandler> TaskHandle<H> {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }
}

impl<H: TaskHandler> Future for TaskHandle<H> {
    type Output = Result<H::Output, TaskFailure<H::Task>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(TaskFailure::PoolGone)))
    }
}

/// A subscription to a pool's events.
#[derive(Debug)]
pub struct PoolEvents {
    rx: broadcast::Receiver<PoolEvent>,
    gauges: Arc<Gauges>,
}

impl Drop for PoolEvents {
    fn drop(&mut self) {
        self.gauges.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PoolEvents {
    /// The next event. A subscriber that fell more than the buffer (4,096
    /// events) behind is told how many it missed
    /// ([`EventStreamError::Lagged`]), then gets the oldest event still
    /// kept; [`EventStreamError::Closed`] once the pool is gone.
    pub async fn recv(&mut self) -> Result<PoolEvent, EventStreamError> {
        self.rx.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => EventStreamError::Lagged(n),
            broadcast::error::RecvError::Closed => EventStreamError::Closed,
        })
    }

    /// The next event if one is queued (`Ok(None)` if none is); errors as
    /// for [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Option<PoolEvent>, EventStreamError> {
        match self.rx.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(broadcast::error::TryRecvError::Empty) => Ok(None),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Err(EventStreamError::Lagged(n)),
            Err(broadcast::error::TryRecvError::Closed) => Err(EventStreamError::Closed),
        }
    }
}

impl<H: TaskHandler> Pool<H> {
    /// A builder.
    pub fn builder(factory: impl Fn() -> H + Send + Sync + 'static) -> PoolBuilder<H> {
        PoolBuilder::new(factory)
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.inner.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks intake, capability and room for `n` tasks, and reserves the room.
    fn admit(&self, n: usize, capabilities: &[Option<String>]) -> Result<(), AdmitError> {
        if self.inner.gauges.closed.load(Ordering::Relaxed) {
            return Err(match self.inner.gauges.failed.get() {
                Some(reason) => AdmitError::Failed(reason.clone()),
                None => AdmitError::Closed,
            });
        }
        if capabilities.iter().any(Option::is_some) {
            let advertised = self.inner.advertised.read();
            if let Some(c) = capabilities
                .iter()
                .flatten()
                .find(|c| !advertised.contains(*c))
            {
                return Err(AdmitError::Capability(c.clone()));
            }
        }
        let bound = self.inner.config.queue_bound;
        self.inner
            .gauges
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w + n <= bound).then_some(w + n)
            })
            .map(|_| ())
            .map_err(|_| AdmitError::Full(bound))
    }

    fn submission(
        &self,
        task: H::Task,
        options: TaskOptions,
        reply: Option<oneshot::Sender<TaskResult<H>>>,
    ) -> (TaskId, Submit<H>) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let submit = Submit {
            id,
            task,
            options,
            reply,
            submitted_at: Instant::now(),
        };
        (id, submit)
    }

    /// Submits a task with default options; the handle resolves with its result.
    pub fn submit(&self, task: H::Task) -> Result<TaskHandle<H>, SubmitError<H::Task>> {
        self.submit_with(task, TaskOptions::default())
    }

    /// Submits a task with a priority, timeout, capability or dependency.
    /// Returns at once: a full queue is an error, not a wait.
    pub fn submit_with(
        &self,
        task: H::Task,
        options: TaskOptions,
    ) -> Result<TaskHandle<H>, SubmitError<H::Task>> {
        if let Err(e) = self.admit(1, std::slice::from_ref(&options.capability)) {
            return Err(e.into_submit_error(task));
        }
        let (tx, rx) = oneshot::channel();
        let (id, submit) = self.submission(task, options, Some(tx));
        self.deliver(std::iter::once(submit));
        Ok(TaskHandle { id, rx })
    }

    /// Submits a task whose result nobody awaits (it is still retried and,
    /// if it keeps failing, dead-lettered).
    pub fn send(
        &self,
        task: H::Task,
        options: TaskOptions,
    ) -> Result<TaskId, SubmitError<H::Task>> {
        if let Err(e) = self.admit(1, std::slice::from_ref(&options.capability)) {
            return Err(e.into_submit_error(task));
        }
        let (id, submit) = self.submission(task, options, None);
        self.deliver(std::iter::once(submit));
        Ok(id)
    }

    /// Hands submissions to the router, in order.
    fn deliver(&self, submits: impl IntoIterator<Item = Submit<H>>) {
        self.inner.router.submit(submits);
    }

    /// Submits several tasks at once: all are accepted, or none.
    pub fn submit_batch(
        &self,
        tasks: Vec<(H::Task, TaskOptions)>,
    ) -> Result<Vec<TaskHandle<H>>, SubmitError<Vec<H::Task>>> {
        let capabilities: Vec<Option<String>> =
            tasks.iter().map(|(_, o)| o.capability.clone()).collect();
        if let Err(e) = self.admit(tasks.len(), &capabilities) {
            return Err(e.into_submit_error(tasks.into_iter().map(|(t, _)| t).collect()));
        }
        let mut handles = Vec::with_capacity(tasks.len());
        let mut batch = Vec::with_capacity(tasks.len());
        for (task, options) in tasks {
            let (tx, rx) = oneshot::channel();
            let (id, submit) = self.submission(task, options, Some(tx));
            handles.push(TaskHandle { id, rx });
            batch.push(submit);
        }
        self.deliver(batch);
        Ok(handles)
    }

    /// Subscribes to the pool's events from now on.
    pub fn subscribe(&self) -> PoolEvents {
        self.inner
            .gauges
            .subscribers
            .fetch_add(1, Ordering::Relaxed);
        PoolEvents {
            gauges: self.inner.gauges.clone(),
            rx: self.inner.events.subscribe(),
        }
    }

    /// A metrics snapshot.
    pub async fn metrics(&self) -> Result<PoolMetrics, PoolError> {
        let mut metrics = self.inner.router.metrics();
        if let Ok(tree) = self.inner.supervisor.tree_health().await {
            metrics.health.status = metrics.health.status.max(tree);
        }
        Ok(metrics)
    }

    /// The worker supervisor (introspection, events' `supervisor` path).
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.inner.supervisor
    }

    /// The breakers of the pool's breaker strategy, if it has one.
    pub fn breakers(&self) -> Option<&Breakers> {
        self.inner.breakers.as_ref()
    }

    /// Current number of workers (not counting ones being drained); 0
    /// once the pool failed (see [`PoolEvent::Failed`]).
    pub fn size(&self) -> usize {
        if self.inner.gauges.failed.get().is_some() {
            return 0;
        }
        self.workers().len()
    }

    /// Adds `n` workers. Changes of size are serialised: two calls at once
    /// never take the pool past `max_size`.
    pub async fn scale_up(&self, n: usize) -> Result<usize, PoolError> {
        let _scaling = self.inner.scaling.lock().await;
        let from = self.size();
        let max = self.inner.config.max_size;
        if from.checked_add(n).is_none_or(|to| to > max) {
            return Err(self.out_of_bounds(from.saturating_add(n)));
        }
        for _ in 0..n {
            let index = self.inner.next_worker.fetch_add(1, Ordering::Relaxed);
            self.inner
                .supervisor
                .add_child((self.inner.make_worker)(index))
                .await?;
            self.workers().push(worker_id(index));
        }
        let to = self.size();
        let _ = self.inner.events.send(PoolEvent::Scaled { from, to });
        Ok(to)
    }

    /// Removes the `n` newest workers: they get no new work, finish what they
    /// hold, then stop.
    pub async fn scale_down(&self, n: usize) -> Result<usize, PoolError> {
        let _scaling = self.inner.scaling.lock().await;
        let from = self.size();
        if n > from || from - n < self.inner.config.min_size {
            return Err(self.out_of_bounds(from.saturating_sub(n)));
        }
        let leaving: Vec<String> = {
            let mut workers = self.workers();
            let keep = workers.len() - n;
            workers.split_off(keep)
        };
        let (tx, rx) = oneshot::channel();
        self.inner.router.drain(&leaving, tx);
        rx.await.map_err(|_| PoolError::Stopped)?;
        for id in &leaving {
            self.inner.supervisor.remove_child(id).await?;
        }
        let to = self.size();
        let _ = self.inner.events.send(PoolEvent::Scaled { from, to });
        Ok(to)
    }

    fn out_of_bounds(&self, requested: usize) -> PoolError {
        PoolError::ScaleOutOfBounds {
            requested,
            min: self.inner.config.min_size,
            max: self.inner.config.max_size,
        }
    }

    /// Lists the dead-letter store.
    pub async fn dead_letters(&self) -> Result<Vec<DeadTaskSummary>, PoolError> {
        match self.inner.dead.send(Ask::new(DeadRequest::List)).await {
            Ok(DeadReply::List(list)) => Ok(list),
            _ => Err(PoolError::Stopped),
        }
    }

    /// A dead task with its payload and history.
    pub async fn inspect_dead(&self, id: TaskId) -> Result<DeadTask<H::Task>, PoolError> {
        match self
            .inner
            .dead
            .send(Ask::new(DeadRequest::Inspect(id)))
            .await
        {
            Ok(DeadReply::Task(Some(task))) => Ok(task),
            Ok(_) => Err(PoolError::UnknownDeadTask(id)),
            Err(_) => Err(PoolError::Stopped),
        }
    }

    /// Submits a dead task again (fresh attempts, same options) and returns
    /// its new handle. Atomic: the task leaves the store only once the pool
    /// has made room for it; if it cannot (queue full, shutting down), the
    /// error says why and the task stays in the store. Of two replays of one
    /// task at once, one wins and the other gets
    /// [`PoolError::UnknownDeadTask`].
    pub async fn replay(&self, id: TaskId) -> Result<TaskHandle<H>, PoolError> {
        let options = match self
            .inner
            .dead
            .send(Ask::new(DeadRequest::Inspect(id)))
            .await
        {
            Ok(DeadReply::Task(Some(task))) => task.options,
            Ok(_) => return Err(PoolError::UnknownDeadTask(id)),
            Err(_) => return Err(PoolError::Stopped),
        };
        // Room first: the store gives the task up only to a pool that has
        // already reserved its place in the queue.
        self.admit(1, std::slice::from_ref(&options.capability))
            .map_err(AdmitError::into_pool_error)?;
        let dead = match self.inner.dead.send(Ask::new(DeadRequest::Take(id))).await {
            Ok(DeadReply::Task(Some(task))) => task,
            other => {
                self.inner.gauges.waiting.fetch_sub(1, Ordering::AcqRel);
                return Err(match other {
                    Err(_) => PoolError::Stopped,
                    Ok(_) => PoolError::UnknownDeadTask(id),
                });
            }
        };
        let (tx, rx) = oneshot::channel();
        let (id, submit) = self.submission(dead.task, dead.options, Some(tx));
        // Should a shutdown have begun in between, the router hands the
        // task back through the handle: it is never dropped.
        self.deliver(std::iter::once(submit));
        Ok(TaskHandle { id, rx })
    }

    /// Removes one dead task (or all, with `None`); returns how many.
    pub async fn purge_dead(&self, id: Option<TaskId>) -> Result<usize, PoolError> {
        match self.inner.dead.send(Ask::new(DeadRequest::Purge(id))).await {
            Ok(DeadReply::Purged(n)) => Ok(n),
            _ => Err(PoolError::Stopped),
        }
    }

    /// Stops the pool (see [`ShutdownMode`]) and its workers; returns the
    /// books. Every call, concurrent or later, returns the same report: a
    /// call while a graceful shutdown runs waits for it (keeping the
    /// earlier deadline), and an immediate call ends it at once.
    pub async fn shutdown(&self, mode: ShutdownMode) -> ShutdownReport {
        self.inner.gauges.closed.store(true, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        self.inner.router.shutdown(mode, tx);
        // The router answers every caller once it has stopped (at once
        // after that), and it lives as long as this pool; should it ever
        // drop the reply, its books as they stand are the answer.
        let report = match rx.await {
            Ok(report) => report,
            Err(_) => self.inner.router.books(),
        };
        // Workers stop only once the router's books are closed, so a
        // graceful drain is never cut short by another caller.
        self.inner.supervisor.shutdown().await;
        report
    }

    /// Graceful shutdown with `deadline` (see [`ShutdownMode::Graceful`]).
    pub async fn shutdown_gracefully(&self, deadline: Duration) -> ShutdownReport {
        self.shutdown(ShutdownMode::Graceful { deadline }).await
    }

    /// Immediate shutdown (see [`ShutdownMode::Immediate`]).
    pub async fn shutdown_now(&self, unfinished: UnfinishedAction) -> ShutdownReport {
        self.shutdown(ShutdownMode::Immediate { unfinished }).await
    }
}

enum AdmitError {
    Closed,
    Failed(String),
    Full(usize),
    Capability(String),
}

impl AdmitError {
    fn into_submit_error<T>(self, task: T) -> SubmitError<T> {
        match self {
            AdmitError::Closed => SubmitError::ShuttingDown { task },
            AdmitError::Failed(reason) => SubmitError::PoolFailed { task, reason },
            AdmitError::Full(bound) => SubmitError::QueueFull { task, bound },
            AdmitError::Capability(capability) => {
                SubmitError::UnknownCapability { task, capability }
            }
        }
    }

    fn into_pool_error(self) -> PoolError {
        match self {
            AdmitError::Closed => PoolError::Stopped,
            AdmitError::Failed(reason) => PoolError::Failed(reason),
            AdmitError::Full(bound) => PoolError::QueueFull { bound },
            AdmitError::Capability(capability) => PoolError::UnknownCapability(capability),
        }
    }
}
