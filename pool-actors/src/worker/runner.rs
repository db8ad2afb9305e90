//! The tasks that run a worker's attempts. A runner lives as long as its
//! worker: it runs a run of attempts (see [`run_attempts`]), then parks
//! until the worker hands it the next task, instead of a task being spawned
//! (an allocation, a global id, a place in the thread's task list) and
//! freed for every task that reaches an idle worker.
//!
//! A runner busy with an attempt is aborted to cancel that attempt, as a
//! spawned task was: it is then gone, and the next task gets a fresh one.
//! Parked runners hold their worker only weakly, and are aborted when it
//! ends.

use std::cell::{Cell, OnceCell};
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

use tokio::task::JoinHandle;

use super::local::{run_attempts, Local};
use crate::messages::Run;
use crate::TaskHandler;

/// A task on the worker's thread that runs the attempts handed to it.
pub(super) struct Runner<T> {
    /// The task handed over and not taken yet.
    next: Cell<Option<Run<T>>>,
    /// The parked runner's waker.
    waker: Cell<Option<Waker>>,
    /// Its task (set as it is spawned, before it first runs).
    handle: OnceCell<JoinHandle<()>>,
}

impl<T: 'static> Runner<T> {
    /// Hands `run` to this runner, taken from the worker's idle runners
    /// (or spawned if none is idle), and wakes it.
    pub(super) fn start<H: TaskHandler<Task = T>>(local: &Rc<Local<H>>, run: Run<T>) -> Rc<Self> {
        let idle = local.idle.borrow_mut().pop();
        let runner = idle.unwrap_or_else(|| {
            let runner = Rc::new(Self {
                next: Cell::new(None),
                waker: Cell::new(None),
                handle: OnceCell::new(),
            });
            let handle = actix::spawn(serve(Rc::downgrade(local), runner.clone()));
            let _ = runner.handle.set(handle);
            runner
        });
        runner.next.set(Some(run));
        if let Some(waker) = runner.waker.take() {
            waker.wake();
        }
        runner
    }

    /// Stops the runner, and the attempt it runs (a parked runner just ends).
    pub(super) fn abort(&self) {
        if let Some(handle) = self.handle.get() {
            handle.abort();
        }
    }

    /// The task handed over, once there is one.
    async fn next(&self) -> Run<T> {
        std::future::poll_fn(|cx| match self.next.take() {
            Some(run) => Poll::Ready(run),
            None => {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// A runner's life: each task handed over starts a run of attempts; when
/// the worker runs out of work the runner parks among the idle ones. It
/// ends when its run ends the worker's service (a crash, a lost process),
/// or when the worker is gone.
async fn serve<H: TaskHandler>(local: Weak<Local<H>>, runner: Rc<Runner<H::Task>>) {
    loop {
        let run = runner.next().await;
        let Some(local) = local.upgrade() else {
            return;
        };
        if !run_attempts(&local, run).await {
            return;
        }
        local.idle.borrow_mut().push(runner.clone());
    }
}
