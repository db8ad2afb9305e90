//! What goes into the store and what comes out of it.

use std::time::Duration;

use candado_pool::DEFAULT_PRIORITY;
use serde::{Deserialize, Serialize};

/// A task to enqueue, with its options.
///
/// ```
/// use candado_postgres::NewTask;
/// let task = NewTask::new("resize 42.png".to_owned())
///     .priority(2)
///     .idempotency_key("resize-42")
///     .dependency("thumbnailer");
/// assert_eq!(task.priority, 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask<T> {
    /// The payload, stored as JSON.
    pub task: T,
    /// Lower runs first (0 highest; default [`DEFAULT_PRIORITY`]).
    pub priority: u8,
    /// Only nodes whose pool offers this capability claim it.
    pub capability: Option<String>,
    /// The dependency it calls, for the shared breakers.
    pub dependency: Option<String>,
    /// Per-attempt timeout (`None`: the pool's).
    pub timeout: Option<Duration>,
    /// A second task with the same key in the same queue is not enqueued.
    pub idempotency_key: Option<String>,
    /// Retries after the first attempt (`None`: the store's policy).
    pub max_retries: Option<u32>,
    /// Not claimable before this delay has passed.
    pub delay: Option<Duration>,
}

impl<T> NewTask<T> {
    /// A task with the default options.
    pub fn new(task: T) -> Self {
        Self {
            task,
            priority: DEFAULT_PRIORITY,
            capability: None,
            dependency: None,
            timeout: None,
            idempotency_key: None,
            max_retries: None,
            delay: None,
        }
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the capability a node must offer.
    pub fn capability(mut self, capability: impl Into<String>) -> Self {
        self.capability = Some(capability.into());
        self
    }

    /// Sets the dependency it calls.
    pub fn dependency(mut self, dependency: impl Into<String>) -> Self {
        self.dependency = Some(dependency.into());
        self
    }

    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the retries after the first attempt.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Makes it claimable only after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// The outcome of an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The task's id (the existing task's, for a repeated idempotency key).
    pub id: i64,
    /// Whether this call created it (`false`: the key was taken).
    pub created: bool,
}

/// A task claimed by a node: it holds the lease for this attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed<T> {
    /// The task's id.
    pub id: i64,
    /// This attempt's number (1 for the first): completion and failure are
    /// fenced on it.
    pub attempt: u32,
    /// The payload.
    pub task: T,
    /// Its priority.
    pub priority: u8,
    /// The capability it needs.
    pub capability: Option<String>,
    /// The dependency it calls.
    pub dependency: Option<String>,
    /// Its per-attempt timeout.
    pub timeout: Option<Duration>,
}

/// An attempt that completed, for
/// [`PgStore::complete_many`](crate::PgStore::complete_many).
#[derive(Debug, Clone, PartialEq)]
pub struct Completion<O> {
    /// The task's id.
    pub id: i64,
    /// The attempt that completed (fenced on it).
    pub attempt: u32,
    /// Its output, stored as JSON.
    pub output: O,
}

/// One failed attempt, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedAttempt {
    /// The attempt's number.
    pub attempt: u32,
    /// The node that ran it (or held its lease).
    pub node: String,
    /// Why it failed.
    pub error: String,
    /// When, in ms since the Unix epoch (the database's clock).
    pub at_ms: i64,
}

/// A task that exhausted its retries, with its whole history.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadTask<T> {
    /// The task's id.
    pub id: i64,
    /// The payload.
    pub task: T,
    /// Every failed attempt, oldest first.
    pub attempts: Vec<FailedAttempt>,
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Scheduled again after this delay.
    Retrying {
        /// The backoff before it can be claimed again.
        after: Duration,
    },
    /// Out of retries: it is a dead letter now.
    Dead,
    /// The attempt was no longer the task's (rescued and claimed again, or
    /// finished): the report changed nothing.
    Fenced,
}

/// Tasks of a queue by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueCounts {
    /// Waiting to be claimed (now or after a backoff).
    pub ready: u64,
    /// Claimed, under a lease.
    pub running: u64,
    /// Completed.
    pub done: u64,
    /// Dead letters.
    pub dead: u64,
}
