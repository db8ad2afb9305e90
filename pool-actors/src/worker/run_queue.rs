//! How the router reaches a worker: runs and cancellations go into the
//! worker's queue, which a task on the worker's thread empties, in order,
//! starting each run on a runner (see `runner.rs`). It takes the place of
//! an actor message per task: no envelope and no mailbox node to allocate
//! and free, and one wake-up for everything queued while the worker's
//! thread was busy.
//!
//! The queue's task holds its worker only weakly. Once the worker actor is
//! gone the queue is closed: what it still holds is never started (the
//! router fails those attempts when the incarnation unregisters, as it did
//! for messages to a stopped actor).

use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};

use parking_lot::Mutex;

use super::local::Local;
use super::{Runner, Running};
use crate::messages::{Inbox, Run};
use crate::{TaskHandler, TaskId};

/// What the router sends a worker.
pub(super) enum Order<T> {
    /// Start this attempt.
    Run(Run<T>),
    /// Stop this task's attempt, if it still runs here.
    Cancel(TaskId),
}

/// A worker's queue of orders (shared with the router, which sends from
/// any thread).
pub(super) struct RunQueue<T> {
    inner: Mutex<Queued<T>>,
    /// The worker is gone: nothing more is started.
    closed: AtomicBool,
}

struct Queued<T> {
    orders: VecDeque<Order<T>>,
    /// The queue's task, parked while the queue is empty.
    waker: Option<Waker>,
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Queued {
                orders: VecDeque::new(),
                waker: None,
            }),
            closed: AtomicBool::new(false),
        }
    }
}

impl<T> RunQueue<T> {
    fn push(&self, order: Order<T>) {
        let waker = {
            let mut inner = self.inner.lock();
            inner.orders.push_back(order);
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Closes the queue (the worker is gone) and lets its task end.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let waker = self.inner.lock().waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Everything queued, moved into `into` (which the caller keeps, with
    /// its capacity, from one wake-up to the next); waits while there is
    /// nothing. `false` once the queue is closed.
    async fn take(&self, into: &mut VecDeque<Order<T>>) -> bool {
        std::future::poll_fn(|cx| {
            if self.closed.load(Ordering::SeqCst) {
                return Poll::Ready(false);
            }
            let mut inner = self.inner.lock();
            if inner.orders.is_empty() {
                inner.waker = Some(cx.waker().clone());
                Poll::Pending
            } else {
                std::mem::swap(&mut inner.orders, into);
                Poll::Ready(true)
            }
        })
        .await
    }
}

impl<T: Send> Inbox<T> for RunQueue<T> {
    fn run(&self, run: Run<T>) {
        self.push(Order::Run(run));
    }

    fn cancel(&self, id: TaskId) {
        self.push(Order::Cancel(id));
    }
}

impl<H: TaskHandler> Local<H> {
    /// Starts `run` (sent by the router) on a runner, unless it was
    /// abandoned meanwhile or this worker's process is gone.
    pub(super) fn take(self: &Rc<Self>, run: Run<H::Task>) {
        if run.cancelled.load(Ordering::Relaxed) {
            // Abandoned (shutdown) before it reached us: the router has
            // already settled it.
            return;
        }
        if self.condemned() {
            // Its process is gone or going: the task goes back, costing no
            // attempt, and the worker leaves the router.
            self.router().hand_back(
                self.key.get(),
                self.incarnation,
                vec![(run.id, run.attempt)],
            );
            self.retire();
            return;
        }
        let (id, attempt, cancelled) = (run.id, run.attempt, run.cancelled.clone());
        if self.running.borrow().is_empty() {
            // Liveness watches progress while the worker holds any task.
            self.link.begin_work(format_args!("task {id}"));
        }
        let runner = Runner::start(self, run);
        let mut running = self.running.borrow_mut();
        running.insert(
            id,
            Running {
                runner,
                cancelled,
                attempt,
            },
        );
        self.link.set_in_flight(running.len() as u64);
    }

    /// Stops task `id`'s attempt (the router cancelled it), if it still
    /// runs here.
    pub(super) fn cancel(&self, id: TaskId) {
        let mut running = self.running.borrow_mut();
        if let Some(attempt) = running.remove(&id) {
            attempt.cancelled.store(true, Ordering::Relaxed);
            attempt.runner.abort();
            self.link.set_in_flight(running.len() as u64);
            if running.is_empty() {
                self.link.end_work();
            }
        }
    }
}

/// The queue's task: carries out each order on the worker, in order, until
/// the queue closes or the worker is gone.
pub(super) async fn serve<H: TaskHandler>(
    local: Weak<Local<H>>,
    queue: std::sync::Arc<RunQueue<H::Task>>,
) {
    let mut orders = VecDeque::new();
    while queue.take(&mut orders).await {
        for order in orders.drain(..) {
            // Checked per order: an order may end the worker.
            if queue.closed.load(Ordering::SeqCst) {
                return;
            }
            let Some(local) = local.upgrade() else {
                return;
            };
            match order {
                Order::Run(run) => local.take(run),
                Order::Cancel(id) => local.cancel(id),
            }
        }
    }
}
