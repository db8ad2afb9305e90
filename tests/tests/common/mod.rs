//! Shared harness of the property tests.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod panics;
pub mod tree;

use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases per property: a fixed, quick number in CI; raise it for long local
/// runs with `CANDADO_PROPTEST_CASES=5000 cargo test -p candado-tests`.
pub fn config(default_cases: u32) -> Config {
    let cases = std::env::var("CANDADO_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        // Failures found are saved beside each test file
        // (`prop_x.proptest-regressions`) and replayed first on every run.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// The paused-time helpers are the public test kit's.
pub use candado::testkit::{run_paused, settle};
