//! One attempt: the handler's future under its deadline, its panics
//! caught, its error blamed.

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskCx, Poll};

use candado::{ExitReason, HealthCause, LivenessCause};

use super::{Exec, Local, BATCH_PATIENCE, QUICK_TASK};
use crate::handler::Reporter;
use crate::messages::Run;
use crate::{AttemptError, Blame, TaskContext, TaskHandler};
impl<H: TaskHandler> Local<H> {
    /// One attempt: the handler's future under the attempt's deadline, with
    /// its panics turned into errors. `Err` if the handler itself panicked
    /// before returning a future (the worker must die, as in actor code).
    pub(super) async fn attempt(
        &self,
        run: Run<H::Task>,
    ) -> Result<Result<H::Output, AttemptError>, String> {
        // Whether it is quick matters when the worker next settles: only the
        // attempt before that (the last of a batch) is timed.
        let began = self.ahead.borrow().is_empty().then(std::time::Instant::now);
        let (attempt, deadline) = match &self.exec {
            Exec::Local(handler) => {
                let ctx = TaskContext::new(
                    run.id,
                    run.attempt,
                    Reporter::Link(self.link.clone()),
                    run.cancelled.clone(),
                    self.yield_every,
                );
                (Self::start(handler, run.task, ctx)?, run.deadline)
            }
            Exec::Remote(remote) => {
                let left = run
                    .deadline
                    .saturating_duration_since(tokio::time::Instant::now());
                let attempt = remote.attempt(
                    run.id,
                    run.attempt,
                    run.task,
                    (left, run.timeout),
                    self.yield_every,
                );
                // The process cancels the attempt at its deadline; the
                // parent waits a grace longer before it kills the process.
                let deadline = crate::deadline::after(run.deadline, remote.grace);
                let attempt = async move { attempt.await.map_err(Failure::Attempt) };
                (Box::pin(attempt) as Attempt<H>, deadline)
            }
        };
        // Its first poll runs without a timer: an attempt that ends there
        // (a CPU-bound one always does) never needed one, and one that
        // ran past its deadline in that poll keeps its result, as under
        // `timeout_at`, which polls the future before its timer.
        let mut attempt = CatchUnwind(attempt);
        let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut attempt).poll(cx))).await;
        let outcome = match first {
            Poll::Ready(outcome) => {
                if let Some(began) = began {
                    self.quick.set(began.elapsed() < QUICK_TASK);
                }
                Ok(outcome)
            }
            Poll::Pending => {
                let mut attempt = std::pin::pin!(under_deadline(attempt, deadline));
                self.quick.set(false);
                // The task waits: nobody should wait for the reports and
                // replies held, nor, once it proves not to be short, for it.
                self.report();
                if self.ahead.borrow().is_empty() {
                    attempt.await
                } else {
                    match tokio::time::timeout(BATCH_PATIENCE, attempt.as_mut()).await {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            self.hand_back_unstarted();
                            attempt.await
                        }
                    }
                }
            }
        };
        Ok(match outcome {
            Ok(Ok(Ok(output))) => Ok(output),
            Ok(Ok(Err(Failure::Handler(error)))) => Err(self.blamed(&error)),
            Ok(Ok(Err(Failure::Attempt(error)))) => Err(error),
            Ok(Err(panic)) => Err(AttemptError::Panicked(panic)),
            Err(_) => {
                run.cancelled.store(true, Ordering::Relaxed);
                if let Exec::Remote(remote) = &self.exec {
                    // Its handler ignored the cancellation: only ending the
                    // process stops it.
                    // Typed: a handler that ignores its timeout is stuck.
                    remote.kill(ExitReason::Unhealthy {
                        strategy: "task_timeout".into(),
                        cause: HealthCause::Liveness(LivenessCause::Stuck),
                        reason: format!(
                            "task {} ran past its timeout of {:?} and did not stop within {:?}; its process was killed",
                            run.id, run.timeout, remote.grace
                        ),
                    });
                }
                Err(AttemptError::TimedOut(run.timeout))
            }
        })
    }

    /// Calls the handler (user code) for the attempt's future, whose error
    /// the handler then blames; a panic comes back as its message.
    fn start(handler: &RefCell<H>, task: H::Task, ctx: TaskContext) -> Result<Attempt<H>, String> {
        let mut handler = handler.borrow_mut();
        let attempt = std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(task, ctx)))
            .map_err(message_of)?;
        Ok(Box::pin(
            async move { attempt.await.map_err(Failure::Handler) },
        ))
    }

    /// A handler's error, blamed by the handler.
    fn blamed(&self, error: &H::Error) -> AttemptError {
        let blame = match &self.exec {
            Exec::Local(handler) => handler.borrow().blame(error),
            Exec::Remote(_) => Blame::Task,
        };
        match blame {
            Blame::Task => AttemptError::Failed(error.to_string()),
            Blame::Worker => AttemptError::WorkerFailed(error.to_string()),
            Blame::Permanent => AttemptError::NotRetryable(error.to_string()),
        }
    }
}

/// The attempt ran past its deadline.
struct PastDeadline;

/// `attempt`, whose first poll left it pending, under `deadline`: the
/// first poll here only starts the timer (nothing woke the attempt yet);
/// later ones poll the attempt, then the timer, as `timeout_at` does.
async fn under_deadline<F: Future + Unpin>(
    mut attempt: F,
    deadline: tokio::time::Instant,
) -> Result<F::Output, PastDeadline> {
    let mut timer = std::pin::pin!(tokio::time::sleep_until(deadline));
    let mut polled = false;
    std::future::poll_fn(move |cx| {
        if std::mem::replace(&mut polled, true) {
            if let Poll::Ready(output) = Pin::new(&mut attempt).poll(cx) {
                return Poll::Ready(Ok(output));
            }
        }
        timer.as_mut().poll(cx).map(|()| Err(PastDeadline))
    })
    .await
}

/// Why an attempt failed: the handler's own error (blamed by the handler
/// once the attempt ends), or a failure of the attempt itself.
enum Failure<E> {
    Handler(E),
    Attempt(AttemptError),
}

/// The future of one attempt: its output, or why it failed.
type Attempt<H> = Pin<
    Box<
        dyn Future<Output = Result<<H as TaskHandler>::Output, Failure<<H as TaskHandler>::Error>>>,
    >,
>;

/// Turns a panic while polling the attempt into an error carrying its
/// message. The attempt is boxed, so the wrapper is `Unpin`: no projection.
pub(crate) struct CatchUnwind<F: ?Sized>(Pin<Box<F>>);

impl<F: Future + ?Sized> CatchUnwind<F> {
    pub(crate) fn new(future: Pin<Box<F>>) -> Self {
        Self(future)
    }
}

impl<F: Future + ?Sized> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(message_of(payload))),
        }
    }
}

/// A caught panic's message; the payload is dropped with its own `Drop`
/// caught, since a payload whose drop panics would otherwise unwind out of
/// the worker's attempt and leave its task waiting for ever. Should that
/// drop panic, its payload is forgotten (a small leak, only ever then).
fn message_of(payload: Box<dyn std::any::Any + Send>) -> String {
    let message = panic_message(&*payload);
    if let Err(second) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        tracing::warn!(panic = %message, "a panic payload panicked when dropped");
        std::mem::forget(second);
    }
    message
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
