//! `candado-pool`: a persistent pool of supervised workers.
//!
//! Applications implement [`TaskHandler`] and [`submit`](Pool::submit) tasks.
//! Workers are Candado children, with liveness, memory and breaker strategies
//! from the [`PoolConfig`]. A heap-based priority router dispatches tasks
//! round-robin or least-loaded, retries failed attempts with exponential
//! backoff, and sends tasks that exhaust their retries to the dead-letter
//! store. Every accepted task ends exactly once: completed, dead-lettered
//! (with its full history), or returned at shutdown (dropping the last
//! [`Pool`] handle, or shutting its runtime down, shuts the pool down too).
//! The guarantees, each with the test that proves it: `docs/guarantees.md`.
//!
//! # Layout
//! - [`PoolBuilder`], [`Pool`], [`TaskHandle`] — build, submit, observe, scale, shut down.
//! - [`TaskHandler`], [`TaskContext`] — what users implement, and what a task can do.
//! - [`PoolConfig`] — every knob, from TOML or JSON.
//! - [`PoolMetrics`], [`PoolEvent`] — the snapshot and the event stream.
//! - [`DeadTask`] — what the dead-letter store keeps.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod config;
mod dead_letter;
mod deadline;
mod error;
mod events;
mod forwarder;
mod handler;
mod isolation;
mod latency;
mod messages;
mod metrics;
mod pool;
mod retry;
mod router;
mod store;
mod task;
#[cfg(test)]
mod test_support;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testkit;
mod worker;

pub use candado_process::ProcessCommand;
pub use config::{
    AutoscaleSettings, BreakerSettings, Difference, Dispatch, Isolation, Overflow, PoolConfig,
    PoolDefault, ProcessSettings, RateLimitSettings, RestartSettings, ShutdownMode, ShutdownReport,
    UnfinishedAction, MAX_WORKERS,
};
pub use dead_letter::{DeadTask, DeadTaskSummary};
pub use error::{ConfigError, PoolError, SubmitError};
pub use events::PoolEvent;
pub use handler::{Blame, TaskContext, TaskHandler};
pub use isolation::run_if_process_worker;
pub use metrics::{
    DurationBuckets, HealthSection, Percentiles, PerformanceSection, PoolMetrics, PoolSection,
    TasksSection, WorkerStatus, WorkersSection, BUCKET_BOUNDS_MS,
};
pub use pool::{Pool, PoolBuilder, PoolEvents, TaskHandle};
pub use retry::RetryConfig;
pub use task::{Attempt, AttemptError, TaskFailure, TaskId, TaskOptions, DEFAULT_PRIORITY};
