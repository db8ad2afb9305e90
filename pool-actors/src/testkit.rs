//! Pool helpers for tests on virtual time (feature `test-util`).
//!
//! - [`Job`] and [`ScriptedHandler`]: a task handler whose tasks say what
//!   they do — work a while, fail, fail n times, panic, crash or break their
//!   worker, hang.
//! - [`start`] / [`PoolHarness`]: that handler's pool on a current-thread
//!   runtime, so it runs on the paused clock of
//!   [`candado::testkit::run_paused`].
//! - [`PoolRecorder`]: waits for a pool event (a completion, a dead letter)
//!   with a virtual-time timeout and keeps the events it skipped.
//!
//! ```
//! use std::time::Duration;
//! use candado::testkit::run_paused;
//! use candado_pool::testkit::{self, Job, PoolRecorder, PoolWaits};
//!
//! run_paused(|| async {
//!     let mut harness = testkit::start(testkit::config(2)).await;
//!     let mut events = PoolRecorder::new(harness.pool.subscribe());
//!     let done = harness.pool.submit(testkit::work(50, 7)).unwrap();
//!     let done_id = done.id();
//!     let dead = harness.pool.submit(Job::Fail).unwrap();
//!     assert_eq!(done.await.unwrap(), 7);
//!     // Three retries (1, 2 and 4 s of virtual time), then the dead letter.
//!     events.dead_letter(dead.id(), Duration::from_secs(60)).await.unwrap();
//!     // The completion came first; the wait above kept it.
//!     events.completion(done_id, Duration::ZERO).await.unwrap();
//!     assert_eq!(*harness.log.lock().unwrap(), [7]);
//!     harness.runtime.shutdown().await;
//! });
//! ```

mod harness;
mod recorder;
mod script;

pub use self::harness::{completions, config, drain, start, start_with, PoolHarness};
pub use self::recorder::{PoolRecorder, PoolWaits};
pub use self::script::{work, Job, ScriptedHandler};
