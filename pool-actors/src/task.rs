//! Tasks as the pool sees them: ids, options, attempts and outcomes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Identifies a submitted task within its pool.
pub type TaskId = u64;

/// Default priority: 10. Lower numbers run first; 0 is the highest.
pub const DEFAULT_PRIORITY: u8 = 10;

/// How one task should run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskOptions {
    /// Lower runs first (0 highest); `None` means [`DEFAULT_PRIORITY`].
    pub priority: Option<u8>,
    /// Per-attempt timeout; `None` means the pool's default.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Only workers that advertise this capability get the task.
    pub capability: Option<String>,
    /// The dependency the task calls, for the dependency's circuit breaker.
    pub dependency: Option<String>,
    /// Time to live: no attempt starts later than this after submission.
    /// A task still waiting then is dead-lettered with reason `expired`,
    /// never run. `None`: no limit; `Duration::MAX` (or anything past
    /// about thirty years) is no limit either. Zero is refused
    /// ([`SubmitError::InvalidOptions`](crate::SubmitError::InvalidOptions)).
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// Sticky routing: tasks with the same key go to the same worker while
    /// that worker incarnation lives and stays in the pool; the key is
    /// mapped again (to the least loaded worker) once it restarts or
    /// retires. `None`: any worker.
    #[serde(default)]
    pub key: Option<String>,
    /// This task's retry budget: retries after its first attempt,
    /// overriding the pool's `retry.max_retries` (`None`: the pool's).
    #[serde(default)]
    pub max_retries: Option<u32>,
}

impl TaskOptions {
    /// Options with this priority.
    pub fn priority(priority: u8) -> Self {
        Self {
            priority: Some(priority),
            ..Self::default()
        }
    }

    /// Sets the per-attempt timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Restricts the task to workers with `capability`.
    pub fn with_capability(mut self, capability: impl Into<String>) -> Self {
        self.capability = Some(capability.into());
        self
    }

    /// Names the dependency the task calls.
    pub fn with_dependency(mut self, dependency: impl Into<String>) -> Self {
        self.dependency = Some(dependency.into());
        self
    }

    /// Sets the time to live: a task not started within `ttl` of its
    /// submission is dead-lettered with reason `expired`, never run.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = candado_pool::TaskOptions::default().with_ttl(Duration::from_secs(30));
    /// assert_eq!(options.ttl, Some(Duration::from_secs(30)));
    /// ```
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Routes the task by `key`: every task with the same key goes to the
    /// same worker while that worker lives (see [`TaskOptions::key`]).
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets this task's retry budget (retries after the first attempt),
    /// overriding the pool's `retry.max_retries`; 0 dead-letters it on its
    /// first failure.
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }
}

/// Why one attempt of a task failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum AttemptError {
    /// The handler returned an error (the task's fault).
    #[error("failed: {0}")]
    Failed(String),
    /// The handler returned an error it blamed on the worker
    /// ([`Blame::Worker`](crate::Blame::Worker)).
    #[error("worker failed: {0}")]
    WorkerFailed(String),
    /// The handler returned an error it marked permanent
    /// ([`Blame::Permanent`](crate::Blame::Permanent)): the task is
    /// dead-lettered at once, without retries.
    #[error("failed, not retryable: {0}")]
    NotRetryable(String),
    /// The handler panicked.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The attempt ran past its timeout and was cancelled.
    #[error("timed out after {0:?}")]
    TimedOut(#[serde(with = "humantime_serde")] Duration),
    /// The worker running it exited (crash, restart, zombie) before it finished.
    #[error("worker lost: {0}")]
    WorkerLost(String),
    /// The pool shut down while it ran.
    #[error("cancelled by shutdown")]
    Shutdown,
}

impl AttemptError {
    /// Whether the failure counts against the worker's breaker: only an
    /// error the handler blamed on the worker. A task's own error, panic
    /// or timeout is the task's (and its dependency's) fault; a worker
    /// that died is its supervisor's business.
    pub fn blames_worker(&self) -> bool {
        matches!(self, AttemptError::WorkerFailed(_))
    }

    /// Whether another attempt may help: every failure but an error the
    /// handler marked permanent ([`AttemptError::NotRetryable`]).
    pub fn retryable(&self) -> bool {
        !matches!(self, AttemptError::NotRetryable(_))
    }
}

/// One attempt of a task, kept in its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// The worker that ran it.
    pub worker: String,
    /// When it was dispatched, in ms since the pool started.
    pub started_ms: u64,
    /// When it ended, in ms since the pool started.
    pub ended_ms: u64,
    /// Why it failed.
    pub error: AttemptError,
}

/// The final failure of a task, as its submitter sees it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TaskFailure<T> {
    /// Every attempt failed; the task is in the dead-letter store with its history.
    #[error("task {id} dead-lettered after {} attempts", attempts.len())]
    DeadLettered {
        /// The task.
        id: TaskId,
        /// Every attempt, oldest first.
        attempts: Vec<Attempt>,
    },
    /// The pool shut down before the task finished; here is the task back.
    #[error("task {id} returned unfinished: the pool shut down")]
    Returned {
        /// The task.
        id: TaskId,
        /// Its payload, to run elsewhere.
        task: T,
    },
    /// The pool's router vanished without answering. The pool never lets
    /// that happen (a dropped pool, or one whose runtime shut down, returns
    /// its tasks); a handle answers this rather than wait for ever.
    #[error("the pool stopped without answering")]
    PoolGone,
}
