//! The pool's worker actor: runs tasks for the router.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message};
use candado::ChildLink;

use crate::router::{Done, SharedRouter};
use crate::{AttemptError, TaskContext, TaskHandler, TaskId};

/// Runs one attempt.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Run<T> {
    pub(crate) id: TaskId,
    pub(crate) attempt: u32,
    pub(crate) task: T,
    pub(crate) timeout: Duration,
    /// When the attempt times out (dispatch time + `timeout`).
    pub(crate) deadline: tokio::time::Instant,
    /// Set by the router if the attempt is abandoned before it starts.
    pub(crate) cancelled: Arc<AtomicBool>,
}

/// Stops an attempt (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Cancel(pub(crate) TaskId);

#[derive(Message)]
#[rtype(result = "()")]
struct Finished(TaskId);

struct Running {
    handle: tokio::task::JoinHandle<()>,
    cancelled: Arc<AtomicBool>,
}

/// Tells the router this incarnation is gone, however it ends (stop or panic).
struct Goodbye<H: TaskHandler> {
    router: SharedRouter<H>,
    worker: Arc<str>,
    incarnation: u64,
}

impl<H: TaskHandler> Drop for Goodbye<H> {
    fn drop(&mut self) {
        self.router.unregister(&self.worker, self.incarnation);
    }
}

pub(crate) struct PoolWorker<H: TaskHandler> {
    id: Arc<str>,
    link: ChildLink,
    handler: H,
    router: SharedRouter<H>,
    capabilities: Vec<String>,
    yield_every: u32,
    running: HashMap<TaskId, Running>,
    _goodbye: Goodbye<H>,
}

impl<H: TaskHandler> PoolWorker<H> {
    pub(crate) fn new(
        link: ChildLink,
        handler: H,
        router: SharedRouter<H>,
        capabilities: Vec<String>,
        yield_every: u32,
    ) -> Self {
        let id: Arc<str> = link.id().into();
        Self {
            _goodbye: Goodbye {
                router: router.clone(),
                worker: id.clone(),
                incarnation: link.incarnation(),
            },
            id,
            link,
            handler,
            router,
            capabilities,
            yield_every,
            running: HashMap::new(),
        }
    }
}

impl<H: TaskHandler> Actor for PoolWorker<H> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.router.register(
            self.id.clone(),
            self.link.incarnation(),
            ctx.address(),
            self.capabilities.clone(),
        );
    }
}

impl<H: TaskHandler> Drop for PoolWorker<H> {
    fn drop(&mut self) {
        // Attempts die with their worker; the router fails them on `Unregister`.
        for (_, running) in self.running.drain() {
            running.cancelled.store(true, Ordering::Relaxed);
            running.handle.abort();
        }
    }
}

impl<H: TaskHandler> Handler<Run<H::Task>> for PoolWorker<H> {
    type Result = ();

    fn handle(&mut self, run: Run<H::Task>, ctx: &mut Context<Self>) {
        let cancelled = run.cancelled;
        if cancelled.load(Ordering::Relaxed) {
            // Abandoned (shutdown) before it reached us: the router has
            // already settled it.
            return;
        }
        let task_ctx = TaskContext::new(
            run.id,
            run.attempt,
            self.link.clone(),
            cancelled.clone(),
            self.yield_every,
        );
        let attempt = self.handler.handle(run.task, task_ctx);
        let (router, me, worker) = (self.router.clone(), ctx.address(), self.id.clone());
        let incarnation = self.link.incarnation();
        let flag = cancelled.clone();
        let (id, number, timeout, deadline) = (run.id, run.attempt, run.timeout, run.deadline);
        let handle = actix::spawn(async move {
            let result =
                match tokio::time::timeout_at(deadline, CatchUnwind(Box::pin(attempt))).await {
                    Ok(Ok(Ok(output))) => Ok(output),
                    Ok(Ok(Err(error))) => Err(AttemptError::Failed(error.to_string())),
                    Ok(Err(panic)) => Err(AttemptError::Panicked(panic)),
                    Err(_) => {
                        flag.store(true, Ordering::Relaxed);
                        Err(AttemptError::TimedOut(timeout))
                    }
                };
            let done = Done {
                worker,
                incarnation,
                id,
                attempt: number,
                result,
            };
            router.done(done);
            me.do_send(Finished(id));
        });
        if self.running.is_empty() {
            // Liveness watches progress while the worker holds any task.
            self.link.begin_work(format!("task {}", run.id));
        }
        self.running.insert(run.id, Running { handle, cancelled });
        self.link.set_in_flight(self.running.len() as u64);
    }
}

impl<H: TaskHandler> Handler<Finished> for PoolWorker<H> {
    type Result = ();

    fn handle(&mut self, Finished(id): Finished, _: &mut Context<Self>) {
        if self.running.remove(&id).is_some() {
            self.link.add_tasks_done(1);
            self.link.set_in_flight(self.running.len() as u64);
            if self.running.is_empty() {
                self.link.end_work();
            } else {
                self.link.progress();
            }
        }
    }
}

impl<H: TaskHandler> Handler<Cancel> for PoolWorker<H> {
    type Result = ();

    fn handle(&mut self, Cancel(id): Cancel, _: &mut Context<Self>) {
        if let Some(running) = self.running.remove(&id) {
            running.cancelled.store(true, Ordering::Relaxed);
            running.handle.abort();
            self.link.set_in_flight(self.running.len() as u64);
        }
    }
}

/// Turns a panic while polling the attempt into an error carrying its
/// message. The attempt is boxed, so the wrapper is `Unpin`: no projection.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(&*payload))),
        }
    }
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
