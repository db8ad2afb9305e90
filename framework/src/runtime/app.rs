//! Application code on the worker threads: [`RuntimeBuilder::run`], the
//! entry point, and [`Runtime::spawn`].
//!
//! A caller that awaits a child's reply on another thread pays two thread
//! wake-ups per request (caller → child → caller). Run next to the children,
//! on the worker threads, it usually pays none: the reply wakes a task of
//! the same thread. Supervisors stay on the control thread either way.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_util::FutureExt as _;
use thiserror::Error;
use tokio::sync::oneshot;

use super::{Runtime, RuntimeBuilder};
use crate::panic_capture::{drop_quietly, payload_message};
use crate::RuntimeError;

/// [`RuntimeBuilder::run`] could not run the application to its end.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RunError {
    /// The runtime could not be built.
    #[error(transparent)]
    Build(#[from] RuntimeError),
    /// `run` was called on a thread that already runs an async runtime
    /// (inside `#[tokio::main]`, `actix::System::block_on`, or a task):
    /// it starts its own, which cannot nest. Use [`RuntimeBuilder::build`]
    /// there instead.
    #[error("`RuntimeBuilder::run` was called inside an async runtime: it starts its own; call `RuntimeBuilder::build` there instead")]
    InsideRuntime,
    /// The application's future panicked. Its trees were shut down all the
    /// same.
    #[error("the application panicked: {0}")]
    Panicked(String),
    /// The worker thread running the application stopped before it ended.
    #[error("the application's worker thread stopped before the application ended")]
    Stopped,
}

/// A future started by [`Runtime::spawn`] ended without its output.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JoinError {
    /// The future panicked, with this message.
    #[error("the spawned future panicked: {0}")]
    Panicked(String),
    /// Its worker thread stopped before the future finished (the runtime
    /// was dropped or shut down).
    #[error("the worker thread stopped before the spawned future finished")]
    Stopped,
}

/// The output of a future started by [`Runtime::spawn`]. Dropping it does not
/// cancel the future.
#[derive(Debug)]
#[must_use = "a spawned future runs on; await this to get its output"]
pub struct Spawned<T> {
    rx: oneshot::Receiver<Result<T, JoinError>>,
}

impl<T> Future for Spawned<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|got| got.unwrap_or(Err(JoinError::Stopped)))
    }
}

/// Renders a caught panic and drops its payload without letting a panicking
/// `Drop` of the payload escape.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    let message = payload_message(&*payload);
    drop_quietly(payload);
    message
}

impl RuntimeBuilder {
    /// Starts an actix `System` and this runtime, runs `app` on a worker
    /// thread, then shuts down every tree it started (newest first), stops
    /// the threads and returns `app`'s output. The entry point of an
    /// application:
    ///
    /// - `app` runs on a worker thread, beside the children: a reply from a
    ///   child on the same thread wakes no other thread. Futures it starts
    ///   with `actix::spawn` (or `tokio::task::spawn_local`) stay on its
    ///   thread; [`Runtime::spawn`] spreads futures over all worker threads.
    /// - Supervisors still run on the control thread, which never runs
    ///   application code: a blocking application stalls children of its
    ///   own thread, never their supervision.
    /// - A panic in `app` is [`RunError::Panicked`], after the same orderly
    ///   shutdown.
    ///
    /// Call it from plain synchronous code (`fn main`): inside an async
    /// runtime it returns [`RunError::InsideRuntime`].
    ///
    /// ```
    /// use actix::{Actor, Context, Handler, Message};
    /// use candado::{ChildSpec, Runtime, SupervisorSpec};
    ///
    /// struct Echo;
    /// impl Actor for Echo {
    ///     type Context = Context<Self>;
    /// }
    /// #[derive(Message)]
    /// #[rtype(result = "u64")]
    /// struct Ping(u64);
    /// impl Handler<Ping> for Echo {
    ///     type Result = u64;
    ///     fn handle(&mut self, Ping(n): Ping, _: &mut Context<Self>) -> u64 {
    ///         n
    ///     }
    /// }
    ///
    /// let answer = Runtime::builder()
    ///     .worker_threads(2)
    ///     .run(async |runtime| {
    ///         let root = runtime
    ///             .start(SupervisorSpec::new("root").child(ChildSpec::worker("echo", |_| Echo)))
    ///             .await
    ///             .unwrap();
    ///         let echo = root.worker::<Echo>("echo").await.unwrap();
    ///         echo.send(Ping(42)).await.unwrap()
    ///     })
    ///     .unwrap();
    /// assert_eq!(answer, 42);
    /// ```
    pub fn run<T, F>(self, app: F) -> Result<T, RunError>
    where
        F: AsyncFnOnce(&Runtime) -> T + Send + 'static,
        T: Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(RunError::InsideRuntime);
        }
        let system = actix::System::new();
        let out = system.block_on(async move {
            let runtime = self.build()?;
            let Some(thread) = runtime.worker_arbiters().into_iter().next() else {
                return Err(RunError::Stopped);
            };
            let (tx, rx) = oneshot::channel();
            let scheduled = thread.spawn_fn(move || {
                actix::spawn(async move {
                    let out = AssertUnwindSafe(app(&runtime)).catch_unwind().await;
                    runtime.shutdown().await;
                    let _ = tx.send(out.map_err(|payload| RunError::Panicked(panic_text(payload))));
                });
            });
            if !scheduled {
                return Err(RunError::Stopped);
            }
            rx.await.unwrap_or(Err(RunError::Stopped))
        });
        actix::System::current().stop();
        drop(system);
        out
    }
}

impl Runtime {
    /// Runs `future` on a worker thread, beside the children (round robin
    /// over the threads in service; never on the control thread), and
    /// returns a handle to its output. For application code that talks to
    /// children: concurrent callers spread over the threads, and a caller
    /// whose child shares its thread gets replies without a wake-up.
    ///
    /// Code there shares its thread with children: a future that blocks its
    /// thread stalls them, as a blocking child would (never their
    /// supervisors). A panic is [`JoinError::Panicked`]; a future whose
    /// thread stops first is [`JoinError::Stopped`].
    ///
    /// ```
    /// let sum = candado::Runtime::builder()
    ///     .worker_threads(2)
    ///     .run(async |runtime| {
    ///         let parts: Vec<_> = (0..4u64).map(|i| runtime.spawn(async move { i * 10 })).collect();
    ///         let mut sum = 0;
    ///         for part in parts {
    ///             sum += part.await.unwrap();
    ///         }
    ///         sum
    ///     })
    ///     .unwrap();
    /// assert_eq!(sum, 60);
    /// ```
    pub fn spawn<F>(&self, future: F) -> Spawned<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let next = self.next_spawn.fetch_add(1, Ordering::Relaxed);
        let Some(thread) = self.shared.serving_thread(next) else {
            let _ = tx.send(Err(JoinError::Stopped));
            return Spawned { rx };
        };
        // A thread that stopped drops the future, and with it `tx`: the
        // handle then reads `Stopped`.
        thread.spawn(async move {
            let out = AssertUnwindSafe(future).catch_unwind().await;
            let _ = tx.send(out.map_err(|payload| JoinError::Panicked(panic_text(payload))));
        });
        Spawned { rx }
    }
}
