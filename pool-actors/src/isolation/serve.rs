//! The worker process's side of process isolation.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::wire::{TaskCall, TaskReply};
use crate::handler::Reporter;
use crate::worker::CatchUnwind;
use crate::{TaskContext, TaskHandler};

/// If this process was started as the worker process of a pool with
/// `isolation = "process"` whose builder named `name` (see
/// [`PoolBuilder::process_worker`](crate::PoolBuilder::process_worker)),
/// runs tasks with handlers from `factory` until its parent closes the pipe,
/// then exits; otherwise returns at once. Call it first thing in `main`,
/// with the same factory the pool is built with.
///
/// The handler is built once per process, on the thread that serves tasks,
/// and its futures run there on a current-thread tokio runtime, one task at
/// a time. A future that panics fails its attempt, as in a worker actor;
/// a panic in `handle` itself (or in the factory) ends the process (exit
/// 101), like a panic in a worker actor ends the worker.
///
/// ```no_run
/// use candado_pool::{TaskContext, TaskHandler};
///
/// struct Square;
/// impl TaskHandler for Square {
///     type Task = u64;
///     type Output = u64;
///     type Error = String;
///     fn handle(&mut self, n: u64, _: TaskContext) -> impl std::future::Future<Output = Result<u64, String>> + 'static {
///         async move { Ok(n * n) }
///     }
/// }
///
/// fn main() {
///     candado_pool::run_if_process_worker("square", || Square);
///     // The application goes on here, and builds its pool with
///     // `.process_worker("square")`.
/// }
/// ```
pub fn run_if_process_worker<H, F>(name: &str, factory: F)
where
    H: TaskHandler,
    H::Task: DeserializeOwned,
    H::Output: Serialize,
    F: Fn() -> H + Send + 'static,
{
    candado_process::run_if_worker_with(name, move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime for the worker's handler");
        let local = tokio::task::LocalSet::new();
        let mut handler = factory();
        move |request: &[u8], progress: &candado_process::Progress| {
            let call: TaskCall<H::Task> = candado_process::from_bytes(request)
                .map_err(|e| format!("cannot decode the task: {e}"))?;
            let reply = local.block_on(&runtime, run(&mut handler, call, progress));
            candado_process::to_bytes(&reply).map_err(|e| format!("cannot encode the outcome: {e}"))
        }
    });
}

async fn run<H: TaskHandler>(
    handler: &mut H,
    call: TaskCall<H::Task>,
    progress: &candado_process::Progress,
) -> TaskReply<H::Output> {
    let reporter = Reporter::Process {
        progress: progress.clone(),
        sent: std::cell::Cell::new(None),
    };
    let cancelled = Arc::new(AtomicBool::new(false));
    let ctx = TaskContext::new(call.id, call.attempt, reporter, cancelled, call.yield_every);
    // A panic here, outside the future, ends the process (exit 101).
    let attempt = Box::pin(handler.handle(call.task, ctx));
    let timeout = Duration::from_millis(call.timeout_ms);
    match tokio::time::timeout(timeout, CatchUnwind::new(attempt)).await {
        Ok(Ok(Ok(output))) => TaskReply::Done(output),
        Ok(Ok(Err(error))) => TaskReply::Failed {
            message: error.to_string(),
            blame: handler.blame(&error),
        },
        Ok(Err(panic)) => TaskReply::Panicked(panic),
        Err(_) => TaskReply::TimedOut,
    }
}
