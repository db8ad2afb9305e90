//! A deterministic runtime on virtual time.

use std::future::Future;
use std::time::Duration;

use crate::{EventStream, Runtime, SupervisorRef, SupervisorSpec};

/// Runs `body` inside an actix System on a single-threaded tokio runtime
/// whose clock is paused (virtual time), and returns its output.
///
/// Time only moves when every task waits on a timer: a test that sleeps an
/// hour takes microseconds. Only actors on this thread see the paused clock
/// (each actix `Arbiter` has its own runtime), so start trees with
/// [`start_local`] or a [`Runtime`] built with
/// [`current_thread`](crate::RuntimeBuilder::current_thread).
///
/// # Panics
/// If tokio cannot build a runtime (no timer or I/O driver): a broken
/// test environment, not bad input.
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
            .expect("a current-thread tokio runtime builds")
    });
    system.block_on(body())
}

/// Lets every ready task on the current thread run, without moving time.
pub async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

/// Advances virtual time by `by`, letting timers fire in order, then
/// [`settle`]s.
pub async fn advance(by: Duration) {
    tokio::time::sleep(by).await;
    settle().await;
}

/// A [`Runtime`] that runs every supervisor and child on the current
/// (paused) thread.
///
/// # Panics
/// Never for the default knobs it uses; the `expect` guards a builder
/// invariant.
pub fn local_runtime() -> Runtime {
    Runtime::builder()
        .current_thread()
        .build()
        .expect("a current-thread runtime with default knobs builds")
}

/// Builds a [`local_runtime`], subscribes to its events and starts `spec` as
/// a root.
///
/// # Panics
/// If the tree does not start: in a test, that is the failure to report.
pub async fn start_local(spec: SupervisorSpec) -> (Runtime, EventStream, SupervisorRef) {
    let runtime = local_runtime();
    let events = runtime.subscribe();
    let root = runtime.start(spec).await.expect("the tree starts");
    (runtime, events, root)
}
