//! The pool test kit (`candado_pool::testkit`) under the names these tests
//! use, and the paused-time helpers of `candado::testkit`.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub use candado::testkit::{advance, run_paused, settle};
pub use candado_pool::testkit::{
    completions, config, drain, start, start_with, work, Job, PoolHarness as Harness, PoolRecorder,
    ScriptedHandler as Tester,
};
