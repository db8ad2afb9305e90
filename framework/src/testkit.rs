//! A test kit for supervision trees on virtual time (feature `test-util`).
//!
//! What a test of a user's own tree needs, in one place:
//!
//! - [`run_paused`]: an actix System on a single-threaded tokio runtime whose
//!   clock is paused, so timers (backoff, heartbeats, shutdown timeouts) run
//!   on virtual time; [`start_local`] starts a tree on that thread, so every
//!   actor of it sees the paused clock. [`settle`] and [`advance`] move the
//!   test along.
//! - [`EventRecorder`]: waits for an event with a virtual-time timeout and
//!   keeps every event it skipped, so a later wait or [`EventRecorder::drain`]
//!   still sees them.
//! - [`MockChild`]: a worker that panics, hangs, stops, fails or leaks on
//!   command, with a [`MockHandle`] counting its incarnations.
//! - [`memory_sample`] and [`FixedSampler`]: memory
//!   readings a test sets by hand.
//!
//! ```
//! use std::time::Duration;
//! use candado::testkit::{self, Crash, EventRecorder, MockChild};
//! use candado::{ChildSpec, EventKind, SupervisorSpec};
//!
//! testkit::run_paused(|| async {
//!     let (factory, mock) = MockChild::factory();
//!     let spec = SupervisorSpec::new("root").child(ChildSpec::worker("w", factory));
//!     let (runtime, events, _root) = testkit::start_local(spec).await;
//!     let mut events = EventRecorder::new(events);
//!
//!     mock.addr().unwrap().do_send(Crash("boom"));
//!     let restarted = events
//!         .wait_for(Duration::from_secs(5), |e| matches!(e.kind, EventKind::ChildRestarted { .. }))
//!         .await
//!         .unwrap();
//!     assert_eq!(restarted.supervisor, "root");
//!     assert_eq!(mock.starts(), 2);
//!     runtime.shutdown().await;
//! });
//! ```

mod memory;
mod mock;
mod recorder;
mod runtime;

pub use self::memory::memory_sample;
pub use self::mock::{
    BeginWork, Crash, Fail, Hang, Leak, MockChild, MockHandle, Outcome, Ping, Quit, ReportMemory,
    Starve,
};
pub use self::recorder::{
    drain, exits, find, restart_delays_ms, starts, EventRecorder, EventSource, Recorder, WaitError,
};
pub use self::runtime::{advance, local_runtime, run_paused, settle, start_local};
pub use crate::FixedSampler;
