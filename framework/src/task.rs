//! A worker's task: its actor's context, run so that a crash never panics a
//! second time.
//!
//! actix runs each actor as one future (its context) in a tokio task. Left to
//! tokio, a panic in a handler unwinds out of that future and tokio drops it
//! *during the unwinding*: the actor's `Drop`, its `stopping`/`stopped` hooks
//! and whatever the context holds run while the thread is panicking, and any
//! panic among them is a second one, which aborts the process.
//!
//! Here the context runs inside [`Guarded`], which catches the panic first,
//! records it as the incarnation's exit reason, and only then drops the
//! context (and the actor) in plain code, with [`drop_quietly`] catching
//! whatever their drops throw. The panic payload, user data whose own `Drop`
//! may panic, is dropped the same way.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix::{Actor, Addr, Context};

use crate::link::{CrashNote, Wiring};
use crate::panic_capture::{self, drop_quietly};

/// Creates `actor` with its control item and runs it in a guarded task on
/// the current arbiter.
pub(crate) fn spawn<A>(actor: A, wiring: Wiring) -> Addr<A>
where
    A: Actor<Context = Context<A>>,
{
    let mut ctx = Context::new();
    let crash = wiring.crash_note();
    wiring.attach(&mut ctx);
    let context = ctx.into_future(actor);
    let addr = context.address();
    actix_rt::spawn(Guarded {
        inner: Some(Box::pin(context)),
        crash,
    });
    addr
}

/// Runs an actor's context; turns a panic into a recorded crash.
struct Guarded<F> {
    /// The context, until it finishes or crashes.
    inner: Option<Pin<Box<F>>>,
    /// Where the crash is recorded for the exit guard to report.
    crash: CrashNote,
}

impl<F: Future<Output = ()>> Future for Guarded<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(());
        };
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => {
                // Finished normally; a panicking drop here is its own crash
                // (reported by the exit guard, which sees it unwinding).
                drop_quietly(this.inner.take());
                Poll::Ready(())
            }
            Err(payload) => {
                let message = panic_capture::take()
                    .unwrap_or_else(|| panic_capture::payload_message(&*payload));
                drop_quietly(payload);
                this.crash.record(message.clone());
                // Outside the unwinding now: the actor's drop and its hooks
                // may panic without aborting anything.
                if let Some(again) = drop_quietly(this.inner.take()) {
                    tracing::warn!(panic = %again, first = %message, "a crashed child panicked again while dropped");
                }
                Poll::Ready(())
            }
        }
    }
}
