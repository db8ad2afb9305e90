//! The pool facade: build, submit, observe, scale, shut down.
//!
//! - `builder.rs`: [`PoolBuilder`], which starts the router, the dead-letter
//!   store, the workers and their supervisor;
//! - `handle.rs`: [`TaskHandle`] and [`PoolEvents`], what a caller holds;
//! - `autoscale.rs`: scaling on queue depth;
//! - `admission.rs`: admission beyond the plain `submit`: load shedding on
//!   a full queue, the hand-off, broadcast.

mod admission;
mod autoscale;
mod builder;
mod handle;

pub use builder::PoolBuilder;
pub use handle::{PoolEvents, TaskHandle};

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use candado::{Breakers, ChildSpec, SupervisorRef};
use parking_lot::RwLock;
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;

use crate::dead_letter::{Ask, DeadLetters, DeadReply, DeadRequest};
use crate::messages::{Submit, TaskResult};
use crate::router::{Gauges, Routers};
use crate::{
    DeadTask, DeadTaskSummary, PoolConfig, PoolError, PoolEvent, PoolMetrics, ShutdownMode,
    ShutdownReport, SubmitError, TaskHandler, TaskId, TaskOptions, UnfinishedAction,
};

type Factory<H> = Arc<dyn Fn() -> H + Send + Sync>;
type Capabilities = Arc<dyn Fn(usize) -> Vec<String> + Send + Sync>;
/// Every capability some worker created so far offers.
type Advertised = Arc<RwLock<HashSet<String>>>;

struct Inner<H: TaskHandler> {
    config: PoolConfig,
    router: Routers<H>,
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
    pub(crate) fn router(&self) -> &Routers<H> {
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
            route: None,
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
        let _unseen = match self.admit_options(&[&options]) {
            Ok(unseen) => unseen,
            Err(e) => return Err(e.into_submit_error(task)),
        };
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
        let _unseen = match self.admit_options(&[&options]) {
            Ok(unseen) => unseen,
            Err(e) => return Err(e.into_submit_error(task)),
        };
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
        let options: Vec<&TaskOptions> = tasks.iter().map(|(_, o)| o).collect();
        let _unseen = match self.admit_options(&options) {
            Ok(unseen) => unseen,
            Err(e) => return Err(e.into_submit_error(tasks.into_iter().map(|(t, _)| t).collect())),
        };
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
            self.workers().push(builder::worker_id(index));
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
        self.inner
            .router
            .drain(&leaving)
            .await
            .map_err(|_| PoolError::Stopped)?;
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
    Invalid(String),
    Closed,
    Failed(String),
    Full(usize),
    Capability(String),
}

impl AdmitError {
    fn into_submit_error<T>(self, task: T) -> SubmitError<T> {
        match self {
            AdmitError::Invalid(problem) => SubmitError::InvalidOptions { task, problem },
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
            AdmitError::Invalid(problem) => PoolError::InvalidOptions(problem),
            AdmitError::Closed => PoolError::Stopped,
            AdmitError::Failed(reason) => PoolError::Failed(reason),
            AdmitError::Full(bound) => PoolError::QueueFull { bound },
            AdmitError::Capability(capability) => PoolError::UnknownCapability(capability),
        }
    }
}
