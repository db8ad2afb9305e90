//! The router's storage seam: where accepted tasks live until they end.
//!
//! The router decides (which worker, when to retry, what to tell whom); a
//! [`TaskStore`] keeps the books it decides on: each task's record
//! (payload, options, reply channel, attempt history, backoff streak, the
//! attempt running now), the ready queue in claim order, the tasks waiting
//! for their time, and the hand-off of dead tasks to the dead-letter store.
//! [`MemoryStore`] is the one implementation, and the default.
//!
//! - `memory.rs`: [`MemoryStore`], the task records;
//! - `queue.rs`: the ready queue: a priority heap per capability, FIFO among
//!   equals, starvation promotion;
//! - `delayed.rs`: tasks waiting for their time, by due time;
//! - `tests.rs`: the trait's contract, on the in-memory store.
//!
//! # Why the trait is the crate's own
//!
//! Every method is called under the router's lock, on the task path of
//! whichever thread holds it (a submitter, a worker settling): it must be a
//! bounded piece of in-memory bookkeeping, and it is called through a
//! generic parameter (static dispatch: no boxing, no allocation or lock of
//! its own per task). A store behind a network round trip (PostgreSQL)
//! cannot sit there: every submission and every settled attempt would wait
//! for the database while holding the lock every other thread needs. The
//! durable queue, `candado-postgres`, sits in front of the pool instead (a
//! node claims tasks in batches and feeds them to its pool: see
//! `docs/durable.md`). With no second implementation to serve, the trait
//! stays `pub(crate)`, free to change with the router.

use std::cmp::Reverse;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use candado::BackoffConfig;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::messages::{Submit, TaskResult, WorkerKey};
use crate::{Attempt, AttemptError, TaskHandler, TaskId, TaskOptions};

mod delayed;
mod memory;
mod queue;
#[cfg(test)]
mod tests;

pub(crate) use memory::{MemoryStore, Moving};

/// A ready task's place in claim order: higher is claimed first. Lower
/// priority numbers, then earlier sequence numbers (FIFO), are higher.
pub(crate) type Rank = (Reverse<u8>, Reverse<u64>);

/// Where a task's current attempt runs: who holds it, and how to stop it.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) worker: WorkerKey,
    pub(crate) incarnation: u64,
    /// When it started (milliseconds on the router's clock).
    pub(crate) started_ms: u64,
    /// Set to stop the attempt (shutdown); the worker checks it before it
    /// starts the attempt, so a late `Run` never runs an abandoned task.
    pub(crate) cancelled: Arc<AtomicBool>,
}

/// A ready task, as [`TaskStore::next_ready`] shows it.
#[derive(Debug)]
pub(crate) struct Ready {
    pub(crate) id: TaskId,
    /// The capability a worker needs to run it (`None`: any worker).
    pub(crate) capability: Option<String>,
    pub(crate) rank: Rank,
}

/// A claimed task: what its attempt needs.
#[derive(Debug)]
pub(crate) struct Claimed<T> {
    /// The attempt's number (1 for the first).
    pub(crate) attempt: u32,
    /// A clone of the payload; the store keeps the task.
    pub(crate) task: T,
    /// Its own timeout, if it was submitted with one.
    pub(crate) timeout: Option<Duration>,
    /// When it last joined the ready queue.
    pub(crate) queued_at: Instant,
}

/// A completed task, out of the store.
pub(crate) struct Completed<H: TaskHandler> {
    pub(crate) reply: Option<oneshot::Sender<TaskResult<H>>>,
    pub(crate) submitted_at: Instant,
}

/// A failed attempt, as recorded in its task's history.
#[derive(Debug)]
pub(crate) struct Failed {
    /// The attempt's number (1 for the first).
    pub(crate) number: u32,
    /// Its worker's name.
    pub(crate) worker: String,
    /// Where it ran.
    pub(crate) running: Running,
}

/// A dead-lettered task, out of the store (and in the dead-letter store).
pub(crate) struct DeadLettered<H: TaskHandler> {
    pub(crate) reply: Option<oneshot::Sender<TaskResult<H>>>,
    /// Its history, for its submitter.
    pub(crate) attempts: Vec<Attempt>,
}

/// A task taken out of the store with no end of its own (shutdown hands it
/// back to its submitter).
pub(crate) struct Withdrawn<H: TaskHandler> {
    pub(crate) task: H::Task,
    pub(crate) reply: Option<oneshot::Sender<TaskResult<H>>>,
}

/// The router's books of accepted tasks. A task is held from
/// [`enqueue`](Self::enqueue) until it [completes](Self::complete), is
/// [dead-lettered](Self::dead_letter) or is [withdrawn](Self::withdraw); in
/// between it is ready, running (claimed), or waiting for its time.
///
/// Methods name a task by id and do nothing (`None`) for one not held, or
/// not in the state the call expects. See the module docs for why the
/// trait is the crate's own and what its implementations must not do.
pub(crate) trait TaskStore<H: TaskHandler>: Send + 'static {
    /// Takes a new task: ready at once, after the tasks of its priority
    /// already waiting.
    fn enqueue(&mut self, submit: Submit<H>, now: Instant);

    /// Takes a new task that is claimed at once, without joining the ready
    /// queue (nothing waits ahead of it, and a worker is free): as
    /// [`enqueue`](Self::enqueue), minus the queue's bookkeeping. Should the
    /// claim not happen after all, [`release`](Self::release) queues it.
    fn hold(&mut self, submit: Submit<H>, now: Instant);

    /// Tasks ready and waiting for a worker.
    fn ready(&self) -> usize;

    /// Ready tasks that need no capability and no worker of their own
    /// (any worker may take them), and the best priority among them.
    fn plain_ready(&self) -> (usize, Option<u8>);

    /// Tasks ready and waiting, by their current priority.
    fn ready_by_priority(&self) -> std::collections::BTreeMap<u8, u64>;

    /// Tasks waiting for their time (a retry, a dependency's breaker).
    fn delayed(&self) -> usize;

    /// Whether it holds no task at all.
    fn is_empty(&self) -> bool;

    /// The ids of every task held, in order.
    fn held(&self) -> Vec<TaskId>;

    /// The options task `id` was submitted with.
    fn options(&self, id: TaskId) -> Option<&TaskOptions>;

    /// The best ready task ranked below `below` (`None`: the best of all).
    /// Called again with the rank it returned, it walks the best task of
    /// each capability, best first: the router offers each to a worker
    /// with that capability.
    fn next_ready(&self, below: Option<Rank>) -> Option<Ready>;

    /// The tasks waiting (ready, or for their time) in queue `queue` (a
    /// worker's address or a capability), in order of their ids.
    fn waiting_in(&self, queue: &str) -> Vec<TaskId>;

    /// Moves waiting task `id` to queue `queue` (`None`: any worker),
    /// keeping its place among equal priorities.
    fn readdress(&mut self, id: TaskId, queue: Option<String>, now: Instant);

    /// Claims ready task `id` for an attempt that runs as `running`: it
    /// leaves the ready queue.
    fn claim(&mut self, id: TaskId, running: Running) -> Option<Claimed<H::Task>>;

    /// Task `id`'s running attempt: its number, and where it runs.
    fn running(&self, id: TaskId) -> Option<(u32, &Running)>;

    /// Task `id`'s running attempt never started: back to the ready queue
    /// in its old place, costing no attempt.
    fn release(&mut self, id: TaskId, now: Instant);

    /// Task `id` completed: it leaves the store.
    fn complete(&mut self, id: TaskId) -> Option<Completed<H>>;

    /// Task `id`'s running attempt failed with `error`, at `ended_ms`: it is
    /// recorded in the task's history, under its worker's name (`name` of
    /// its key). The task then waits for a retry or a dead letter.
    fn fail(
        &mut self,
        id: TaskId,
        error: &AttemptError,
        ended_ms: u64,
        name: impl FnOnce(WorkerKey) -> String,
    ) -> Option<Failed>;

    /// Schedules task `id`'s retry after the next delay of its backoff
    /// streak; returns the delay and when the retry is due.
    fn schedule_retry(
        &mut self,
        id: TaskId,
        now: Instant,
        backoff: &BackoffConfig,
    ) -> Option<(Duration, Instant)>;

    /// Task `id` leaves the ready queue until `due` (its dependency's
    /// breaker is open).
    fn delay(&mut self, id: TaskId, due: Instant);

    /// When the next task waiting for its time is due.
    fn next_due(&self) -> Option<Instant>;

    /// Tasks whose time has come join the ready queue.
    fn requeue_due(&mut self, now: Instant);

    /// Starvation promotion: tasks that waited long enough at their
    /// priority move up one level.
    fn promote(&mut self, now: Instant);

    /// Task `id` is dead, for `reason`: it leaves the store (the ready
    /// queue included) for the dead-letter store, with its history.
    fn dead_letter(&mut self, id: TaskId, reason: &str) -> Option<DeadLettered<H>>;

    /// When task `id` expires (its time to live), if it has one.
    fn expires_at(&self, id: TaskId) -> Option<Instant>;

    /// Whether task `id` waits in the ready queue.
    fn is_ready(&self, id: TaskId) -> bool;

    /// The `n` least important ready tasks, least important first, with
    /// their current priority: the highest number, the oldest among equals.
    fn worst_ready(&self, n: usize) -> Vec<(TaskId, u8)>;

    /// A copy of task `id` as the dead-letter store would keep it, for
    /// `reason` (what a discard hook receives).
    fn dead_task(&self, id: TaskId, reason: &str) -> Option<crate::DeadTask<H::Task>>;

    /// Takes task `id` out of the store.
    fn withdraw(&mut self, id: TaskId) -> Option<Withdrawn<H>>;

    /// Takes ready task `id` out of the store, record and all, for another
    /// router's store ([`put`](Self::put)): an idle router takes work from
    /// a busy one.
    fn take_ready(&mut self, id: TaskId) -> Option<Moving<H>>;

    /// Takes in a ready task from another router's store: it joins the
    /// ready queue in its place (its id orders it among equal priorities).
    fn put(&mut self, moving: Moving<H>, now: Instant);

    /// Empties the ready queue and the tasks waiting for their time (the
    /// tasks stay held: the shutdown then ends each one).
    fn unqueue_all(&mut self);
}
