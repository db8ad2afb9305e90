//! Typed errors of the supervision core.

use std::time::Duration;

use thiserror::Error;

/// A child or supervisor specification that cannot be used.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SpecError {
    /// A child or supervisor id is empty.
    #[error("child id is empty")]
    EmptyId,
    /// A child or supervisor id contains `/`, which separates supervisor paths.
    #[error("child id `{0}` contains '/', which is reserved for supervisor paths")]
    InvalidId(String),
    /// Two children of one supervisor share an id.
    #[error("supervisor `{supervisor}` has two children with id `{id}`")]
    DuplicateChildId {
        /// The supervisor holding both.
        supervisor: String,
        /// The repeated id.
        id: String,
    },
    /// The restart intensity period is zero.
    #[error("supervisor `{supervisor}`: intensity period must be greater than zero")]
    ZeroPeriod {
        /// The supervisor with the bad period.
        supervisor: String,
    },
    /// The backoff cap is below its base.
    #[error("backoff cap {cap:?} is below its base {base:?}")]
    BackoffCapBelowBase {
        /// Configured base.
        base: Duration,
        /// Configured cap.
        cap: Duration,
    },
    /// The backoff jitter fraction is outside 0.0..=1.0.
    #[error("backoff jitter {0} is outside 0.0..=1.0")]
    JitterOutOfRange(f64),
    /// The backoff multiplier is below 1.0, infinite or NaN.
    #[error("backoff multiplier {0} must be a finite number of at least 1.0")]
    BackoffMultiplierInvalid(f64),
    /// An explicit backoff schedule has no delays.
    #[error("backoff schedule is empty")]
    BackoffStepsEmpty,
    /// An explicit backoff schedule has more delays than it can hold.
    #[error("backoff schedule has {len} delays; at most {max} are allowed")]
    BackoffStepsTooMany {
        /// Delays given.
        len: usize,
        /// Delays allowed.
        max: usize,
    },
    /// An explicit backoff schedule has a delay shorter than the one before.
    #[error(
        "backoff schedule entry {index} ({delay:?}) is shorter than the one before ({previous:?})"
    )]
    BackoffStepsDecrease {
        /// Position of the shorter delay.
        index: usize,
        /// The shorter delay.
        delay: Duration,
        /// The delay before it.
        previous: Duration,
    },
    /// The heal-limit period is zero.
    #[error("supervisor `{supervisor}`: heal-limit period must be greater than zero")]
    ZeroHealPeriod {
        /// The supervisor with the bad limit.
        supervisor: String,
    },
    /// A strategy knob is out of range.
    #[error("strategy `{strategy}`: {problem}")]
    InvalidStrategy {
        /// The strategy.
        strategy: String,
        /// What is wrong, naming the knob.
        problem: String,
    },
    /// A child supervisor was given external heartbeats: nothing outside it
    /// holds its link, so nothing could send them.
    #[error(
        "child supervisor `{0}` cannot take external heartbeats: nothing outside it holds its link"
    )]
    ExternalHeartbeatsOnSupervisor(String),
    /// A permanent child was marked significant: it is always restarted, so
    /// it never exits for good (OTP rejects it too).
    #[error("child `{0}` is permanent and cannot be significant: make it transient or temporary")]
    SignificantPermanent(String),
    /// A significant child under a supervisor whose `auto_shutdown` is
    /// `Never`, where its exit could mean nothing (OTP rejects it too).
    #[error("supervisor `{supervisor}` never shuts down automatically, so its child `{id}` cannot be significant")]
    SignificantWithoutAutoShutdown {
        /// The supervisor.
        supervisor: String,
        /// The significant child.
        id: String,
    },
    /// The supervisor tick interval is zero.
    #[error("supervisor `{supervisor}`: tick interval must be greater than zero")]
    ZeroTickInterval {
        /// The supervisor with the bad tick.
        supervisor: String,
    },
}

impl SpecError {
    /// A strategy knob is out of range.
    pub(crate) fn strategy(strategy: &str, problem: impl Into<String>) -> Self {
        SpecError::InvalidStrategy {
            strategy: strategy.to_owned(),
            problem: problem.into(),
        }
    }
}

/// The runtime (threads and event bus) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuntimeError {
    /// `worker_threads(0)` was requested.
    #[error("worker thread count must be at least 1")]
    ZeroWorkerThreads,
    /// `event_capacity(0)` was requested.
    #[error("event stream capacity must be at least 1")]
    ZeroEventCapacity,
    /// `worker_threads(n)` asked for more than [`MAX_WORKER_THREADS`](crate::MAX_WORKER_THREADS).
    #[error("{requested} worker threads requested, at most {max} allowed")]
    TooManyWorkerThreads {
        /// The count asked for.
        requested: usize,
        /// The bound.
        max: usize,
    },
    /// `event_capacity(n)` asked for more than [`MAX_EVENT_CAPACITY`](crate::MAX_EVENT_CAPACITY).
    #[error("event stream capacity {requested} requested, at most {max} allowed")]
    EventCapacityTooLarge {
        /// The capacity asked for.
        requested: usize,
        /// The bound.
        max: usize,
    },
    /// The runtime was built outside a running actix `System`.
    #[error("no actix System is running on this thread: build the runtime inside `actix::System::new().block_on(..)` or `#[actix::main]`")]
    NoSystem,
}

/// A request to a running supervisor failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SupervisorError {
    /// The specification was rejected before anything started.
    #[error("invalid specification: {0}")]
    InvalidSpec(#[from] SpecError),
    /// The supervisor has stopped (or is shutting down) and takes no requests.
    #[error("supervisor `{0}` is not running")]
    Stopped(String),
    /// No child with this id.
    #[error("supervisor `{supervisor}` has no child `{id}`")]
    UnknownChild {
        /// The supervisor asked.
        supervisor: String,
        /// The unknown id.
        id: String,
    },
    /// `add_child` with the id of a child whose incarnation is running (or
    /// starting or stopping): OTP's `{error, {already_started, Pid}}`.
    #[error("supervisor `{supervisor}` already runs a child `{id}`")]
    AlreadyStarted {
        /// The supervisor asked.
        supervisor: String,
        /// The id taken.
        id: String,
    },
    /// `add_child` with the id of a child that is not running but whose spec
    /// is kept (terminated, ignored, stopped for good, or waiting to restart):
    /// OTP's `{error, already_present}`. Delete it first, or restart it.
    #[error("supervisor `{supervisor}` already has a child `{id}` (not running, its spec kept)")]
    AlreadyPresent {
        /// The supervisor asked.
        supervisor: String,
        /// The id taken.
        id: String,
    },
    /// `restart_child` or `delete_child` of a child that is running (or
    /// starting or stopping): OTP's `{error, running}`. Terminate it first.
    #[error("child `{id}` of supervisor `{supervisor}` is running")]
    Running {
        /// The supervisor asked.
        supervisor: String,
        /// The child.
        id: String,
    },
    /// `restart_child` or `delete_child` of a child whose restart is
    /// already scheduled: OTP's `{error, restarting}`.
    #[error("child `{id}` of supervisor `{supervisor}` is restarting")]
    Restarting {
        /// The supervisor asked.
        supervisor: String,
        /// The child.
        id: String,
    },
    /// A child that another operation (an add, a removal, a termination, a
    /// restart asked for) is acting on right now.
    #[error("child `{id}` of supervisor `{supervisor}` is busy ({operation} in progress)")]
    Busy {
        /// The supervisor asked.
        supervisor: String,
        /// The child.
        id: String,
        /// What is in progress.
        operation: &'static str,
    },
    /// A root supervisor with this id is already running in this runtime.
    #[error("a root supervisor `{0}` is already running in this runtime")]
    DuplicateRoot(String),
    /// The child exists but has no running incarnation right now.
    #[error("child `{id}` is not running (it is {state})")]
    NotRunning {
        /// The child asked for.
        id: String,
        /// Its current state.
        state: String,
    },
    /// The child runs an actor of another type than the one asked for.
    #[error("child `{id}` is not a `{expected}`")]
    WrongType {
        /// The child asked for.
        id: String,
        /// The type the caller expected.
        expected: &'static str,
    },
    /// A child failed to start (its factory panicked, or a child supervisor
    /// could not start its own children).
    #[error("child `{id}` failed to start: {reason}")]
    StartFailed {
        /// The child that failed.
        id: String,
        /// What went wrong.
        reason: String,
    },
}
