//! Typed errors of the pool.

use thiserror::Error;

use crate::TaskId;

/// A task could not be accepted. The task is handed back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubmitError<T> {
    /// The queue holds its bound already; try later.
    #[error("the queue is full ({bound} tasks waiting)")]
    QueueFull {
        /// The task, back.
        task: T,
        /// The queue bound.
        bound: usize,
    },
    /// The pool is shutting down or stopped and takes no new work.
    #[error("the pool is shutting down")]
    ShuttingDown {
        /// The task, back.
        task: T,
    },
    /// The pool can run no more work: its worker supervisor gave up.
    #[error("the pool has failed: {reason}")]
    PoolFailed {
        /// The task, back.
        task: T,
        /// Why the worker supervisor stopped.
        reason: String,
    },
    /// The task names a capability no worker of this pool advertises.
    #[error("no worker offers capability `{capability}`")]
    UnknownCapability {
        /// The task, back.
        task: T,
        /// The capability asked for.
        capability: String,
    },
    /// The task's options cannot be used (a zero time to live); nothing
    /// was queued.
    #[error("invalid task options: {problem}")]
    InvalidOptions {
        /// The task, back.
        task: T,
        /// What is wrong.
        problem: String,
    },
    /// A hand-off ([`Pool::hand_off`](crate::Pool::hand_off)) found no
    /// worker able to start the task now; nothing was queued.
    #[error("no idle worker can take the task now")]
    NoIdleWorker {
        /// The task, back.
        task: T,
    },
}

/// A pool operation failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PoolError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The supervision layer refused an operation.
    #[error("supervision: {0}")]
    Supervision(#[from] candado::SupervisorError),
    /// The pool has shut down.
    #[error("the pool has shut down")]
    Stopped,
    /// The pool can run no more work: its worker supervisor gave up.
    #[error("the pool has failed: {0}")]
    Failed(String),
    /// The queue holds its bound already; try later.
    #[error("the queue is full ({bound} tasks waiting)")]
    QueueFull {
        /// The queue bound.
        bound: usize,
    },
    /// No worker of this pool offers the capability the task needs.
    #[error("no worker offers capability `{0}`")]
    UnknownCapability(String),
    /// The task's options cannot be used (a zero time to live).
    #[error("invalid task options: {0}")]
    InvalidOptions(String),
    /// No dead task with this id.
    #[error("no dead task {0}")]
    UnknownDeadTask(TaskId),
    /// Scaling would leave the pool outside its bounds.
    #[error("cannot scale to {requested} workers: bounds are {min}..={max}")]
    ScaleOutOfBounds {
        /// Size that was asked for.
        requested: usize,
        /// Minimum size.
        min: usize,
        /// Maximum size.
        max: usize,
    },
}

/// A configuration that cannot be used; names the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A field has a value out of range.
    #[error("invalid `{field}`: {problem}")]
    Invalid {
        /// Dotted path of the field, e.g. `retry.max_retries`.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The TOML or JSON text could not be parsed.
    #[error("cannot parse pool config: {0}")]
    Parse(String),
}

impl ConfigError {
    pub(crate) fn invalid(field: &str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}
