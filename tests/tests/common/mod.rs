//! Shared harness of the property tests.
#![allow(dead_code, unreachable_pub)]

pub mod panics;
pub mod tree;

use std::future::Future;

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

/// Runs `body` inside an actix System whose clock is paused (virtual time).
pub fn run_paused<F, Fut, T>(body: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("test runtime")
    });
    system.block_on(body())
}

/// Lets ready tasks run without moving time.
pub async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}
