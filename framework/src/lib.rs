//! Candado: fault-tolerant supervised actors on actix + tokio.
//!
//! Every worker is an actix actor started by a [`Supervisor`](SupervisorRef)
//! from a [`ChildSpec`]. Supervisors form trees with OTP semantics: restart
//! strategies ([`Strategy`]), restart types ([`Restart`]), restart intensity
//! ([`Intensity`]) with escalation, exponential [backoff](BackoffConfig), and
//! ordered shutdown. A panic in a child is an abnormal exit of that child
//! alone. Supervisors run on a control thread that never runs child code.
//!
//! # Layout
//! - [`Runtime`] — the control thread, the worker threads and the event bus;
//!   [`Runtime::shutdown_on_signals`], [`ShutdownSignals`] — graceful shutdown on SIGINT/SIGTERM (`signals.rs`).
//! - [`SupervisorSpec`], [`ChildSpec`] — what to run and how to restart it;
//!   [`StartResult`] — what a fallible factory decided; [`AutoShutdown`] —
//!   when significant children end their supervisor.
//! - [`SupervisorRef`] — a running supervisor: introspection, dynamic
//!   children, OTP's child operations (terminate, restart, delete, count),
//!   lookup, shutdown.
//! - [`DynamicSpec`], [`DynamicSupervisor`] — one template, children started
//!   at run time with arguments (OTP's `simple_one_for_one`).
//! - [`ChildLink`] — a child's link to its supervisor.
//! - [`Event`], [`EventStream`] — typed lifecycle events.
//! - [`RestartCause`] — why an incarnation ended, typed, with a stable metric key.
//! - [`Backoff`], [`Intensity`] — the restart math, usable on its own.
//! - `off` — with the `serde` feature, how configs read and write a knob
//!   that is switched off (`"off"`); the strategy configs then deserialize
//!   themselves from TOML or JSON.
//!
//! # Example
//! ```
//! use actix::{Actor, Context};
//! use candado::{ChildSpec, Runtime, Strategy, SupervisorSpec};
//!
//! struct Worker;
//! impl Actor for Worker {
//!     type Context = Context<Self>;
//! }
//!
//! actix::System::new().block_on(async {
//!     let runtime = Runtime::builder().worker_threads(2).build().unwrap();
//!     let tree = SupervisorSpec::new("root")
//!         .strategy(Strategy::OneForOne)
//!         .child(ChildSpec::worker("a", |_| Worker))
//!         .child(ChildSpec::supervisor(
//!             SupervisorSpec::new("db").child(ChildSpec::worker("conn", |_| Worker)),
//!         ));
//!     let root = runtime.start(tree).await.unwrap();
//!     assert_eq!(root.children().await.unwrap().len(), 2);
//!     runtime.shutdown().await;
//! });
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod alert;
mod backoff;
mod cause;
mod child_spec;
mod clock;
mod dynamic;
mod error;
mod event;
mod exit;
mod health;
mod info;
mod intensity;
mod link;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod off;
mod panic_capture;
mod parent;
mod placement;
mod runtime;
mod signals;
mod start_batch;
mod strategies;
mod supervisor;
mod supervisor_spec;
mod task;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testkit;

pub use alert::{Alert, AlertConfig, AlertLevel, AlertPolicy, AlertSink, TracingSink};
pub use backoff::{Backoff, BackoffConfig, BackoffSteps};
pub use cause::{HealthCause, LivenessCause, MemoryCause, RestartCause};
pub use child_spec::{
    ChildKind, ChildSpec, Restart, ShutdownPolicy, StartResult, DEFAULT_WORKER_SHUTDOWN,
};
pub use dynamic::{DynamicChild, DynamicError, DynamicSpec, DynamicSupervisor};
pub use error::{RuntimeError, SpecError, SupervisorError};
pub use event::{Event, EventKind, EventStream, EventStreamError};
pub use exit::ExitReason;
pub use health::{
    Decisions, HealLimit, HealthStatus, HealthStrategy, Metrics, Signal, Verdict, VerdictKind,
    Wants,
};
pub use info::{ChildCount, ChildInfo, ChildStatus, SupervisorInfo};
pub use intensity::Intensity;
pub use link::ChildLink;
pub use placement::Placement;
pub use runtime::{
    JoinError, RunError, Runtime, RuntimeBuilder, Spawned, DEFAULT_EVENT_CAPACITY,
    MAX_EVENT_CAPACITY, MAX_WORKER_THREADS,
};
pub use signals::{ShutdownSignal, ShutdownSignals, SignalError, SignalShutdown};
pub use strategies::{
    BreakerConfig, BreakerSnapshot, BreakerState, BreakerStrategy, BreakerStrategyConfig, Breakers,
    BreakersSnapshot, CgroupMemory, ChildBreaker, CircuitBreaker, FixedSampler, Liveness,
    LivenessConfig, MemoryConfig, MemoryGuard, MemorySample, MemorySampler, SystemSampler,
    VictimPolicy,
};
pub use supervisor::SupervisorRef;
pub use supervisor_spec::{AutoShutdown, Strategy, SupervisorSpec, DEFAULT_TICK};
