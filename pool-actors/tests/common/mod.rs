//! The pool test kit (`candado_pool::testkit`) under the names these tests
//! use, the paused-time helpers of `candado::testkit`, and a shutdown that
//! checks the books.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::time::Duration;

use candado_pool::{Pool, ShutdownReport, TaskHandler};

pub use candado::testkit::{advance, run_paused, settle};
pub use candado_pool::testkit::{
    completions, config, drain, start, start_with, work, Job, PoolHarness as Harness, PoolRecorder,
    ScriptedHandler as Tester,
};

/// Shuts `pool` down gracefully (a second for the tasks that run), asserts
/// that its books balance, and returns the report.
pub async fn shut_down_balanced<H: TaskHandler>(pool: &Pool<H>) -> ShutdownReport {
    let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
    assert!(report.balanced(), "{report:?}");
    report
}
