//! What the pool facade, the router and the workers hand each other on the
//! task path: a submission, an attempt to run or stop, the end of an
//! attempt, a worker settling its attempts, and what the router delivers
//! once its lock is released.
//!
//! The router and the worker both use these, so they live in neither: the
//! router reaches a worker only through its [`Inbox`] (which the worker
//! actor's address implements), and never names the worker actor. The
//! worker calls the router through `SharedRouter`; the router does not
//! import the worker.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::{AttemptError, DeadTask, TaskFailure, TaskHandler, TaskId, TaskOptions};

/// The capability only worker `name` has: a broadcast's copy for that
/// worker asks for it. It starts with a control character, which no
/// capability of a user's config can (`submit` refuses capabilities no
/// worker advertises, and this one is never advertised).
pub(crate) fn addressed_to(name: &str) -> String {
    format!("{ADDRESSED}{name}")
}

/// What starts the capability of [`addressed_to`].
pub(crate) const ADDRESSED: char = '\u{1}';

/// What a task's submitter eventually receives.
pub(crate) type TaskResult<H> =
    Result<<H as TaskHandler>::Output, TaskFailure<<H as TaskHandler>::Task>>;

/// A new task.
pub(crate) struct Submit<H: TaskHandler> {
    pub(crate) id: TaskId,
    pub(crate) task: H::Task,
    pub(crate) options: TaskOptions,
    pub(crate) reply: Option<oneshot::Sender<TaskResult<H>>>,
    pub(crate) submitted_at: Instant,
    /// The one worker that may run it ([`addressed_to`]): a broadcast's
    /// copy, or a task routed by its key. It takes the place of the
    /// options' capability in the queue; the options stay as submitted
    /// (a replay routes the task afresh).
    pub(crate) route: Option<String>,
}

/// A worker process's pid and last measured RSS: written by its worker
/// actor (at spawn, at each measurement), read by the router for
/// [`WorkerStatus`](crate::WorkerStatus).
#[derive(Debug, Default)]
pub(crate) struct ProcessGauge {
    /// 0 until the process is spawned.
    pub(crate) pid: AtomicU32,
    /// 0 until first measured.
    pub(crate) rss: AtomicU64,
}

impl ProcessGauge {
    /// (pid, RSS in bytes), each once known.
    pub(crate) fn read(&self) -> (Option<u32>, Option<u64>) {
        let pid = self.pid.load(Ordering::Relaxed);
        let rss = self.rss.load(Ordering::Relaxed);
        ((pid != 0).then_some(pid), (rss != 0).then_some(rss))
    }
}

/// A small number naming an OS thread: the one a worker incarnation runs
/// on, and the one calling the router. A dispatch prefers a worker on the
/// calling thread (see `Router::pick_worker`): handing it the task, and its
/// reply going back, then wake no other thread.
pub(crate) type ThreadTag = u32;

/// The calling thread's [`ThreadTag`], given the first time it asks.
pub(crate) fn this_thread() -> ThreadTag {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    thread_local! {
        static TAG: ThreadTag = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TAG.with(|tag| *tag)
}

/// A worker's place in the router: its index in the router's workers, given
/// when its name first registers and kept across its incarnations, so the
/// task path compares and looks up integers, not names.
pub(crate) type WorkerKey = usize;

/// Runs one attempt.
pub(crate) struct Run<T> {
    pub(crate) id: TaskId,
    pub(crate) attempt: u32,
    /// The priority it was submitted with (for its attempt's span).
    pub(crate) priority: u8,
    pub(crate) task: T,
    pub(crate) timeout: Duration,
    /// When the attempt times out (dispatch time + `timeout`).
    pub(crate) deadline: Instant,
    /// Set by the router if the attempt is abandoned before it starts.
    pub(crate) cancelled: Arc<AtomicBool>,
}

/// One attempt ended.
pub(crate) struct Done<O> {
    pub(crate) worker: WorkerKey,
    pub(crate) incarnation: u64,
    pub(crate) id: TaskId,
    pub(crate) attempt: u32,
    pub(crate) result: Result<O, AttemptError>,
}

/// Where the router sends a worker incarnation its attempts: the worker
/// actor's mailbox. The router holds one per incarnation, made when it
/// registers; cloning it for a message is a reference count, not a new
/// address.
pub(crate) trait Inbox<T>: Send + Sync {
    /// Starts an attempt.
    fn run(&self, run: Run<T>);
    /// Stops an attempt.
    fn cancel(&self, id: TaskId);
}

/// A worker incarnation's [`Inbox`], shared.
pub(crate) type WorkerInbox<T> = Arc<dyn Inbox<T>>;

/// Something to do once the router's lock is released: it may wake another
/// thread, and it must never run under the lock.
pub(crate) enum Effect<H: TaskHandler> {
    /// Start an attempt on a worker.
    Run(WorkerInbox<H::Task>, Run<H::Task>),
    /// Stop an attempt (shutdown, fail-over).
    Cancel(WorkerInbox<H::Task>, TaskId),
    /// Answer a submitter.
    Reply(oneshot::Sender<TaskResult<H>>, TaskResult<H>),
    /// Tell the pool's discard hook of a task load shedding discarded.
    Discarded(DiscardHook<H::Task>, DeadTask<H::Task>),
}

/// What `PoolBuilder::on_discard` registers: called, off the router's
/// lock, with a copy of each task the overflow policy discards.
pub(crate) type DiscardHook<T> = Arc<dyn Fn(DeadTask<T>) + Send + Sync>;

impl<H: TaskHandler> Effect<H> {
    /// Delivers it. Never call it under the router's lock.
    pub(crate) fn apply(self) {
        match self {
            Effect::Run(inbox, run) => inbox.run(run),
            Effect::Cancel(inbox, id) => inbox.cancel(id),
            Effect::Reply(reply, result) => {
                // The submitter may have dropped its handle: nobody to tell.
                let _ = reply.send(result);
            }
            Effect::Discarded(hook, task) => {
                // User code, on whichever thread delivers: a panic in it
                // must not unwind into the pool. The task is in the
                // dead-letter store either way.
                let id = task.id;
                let call = std::panic::AssertUnwindSafe(|| hook(task));
                if std::panic::catch_unwind(call).is_err() {
                    tracing::error!(task_id = id, "the pool's discard hook panicked");
                }
            }
        }
    }
}

/// A worker incarnation settling attempts, and how many tasks it takes back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallerWants {
    pub(crate) worker: WorkerKey,
    pub(crate) incarnation: u64,
    /// Tasks it may be handed at once while the queue is backed up (0: none,
    /// it is still busy; 1: its next task only).
    pub(crate) batch: usize,
    /// Its last attempts were quick (see `worker::QUICK_TASK`): a dispatch
    /// from its own thread may prefer it, as the work costs less than
    /// waking another thread.
    pub(crate) quick: bool,
}

/// The worker incarnation settling attempts, and where its replies and its
/// next tasks go.
pub(crate) struct Caller<'a, H: TaskHandler> {
    pub(crate) wants: CallerWants,
    pub(crate) replies: &'a mut Vec<Effect<H>>,
    pub(crate) runs: &'a mut VecDeque<Run<H::Task>>,
}

/// What a worker learns when it settles its attempts.
pub(crate) struct Settled {
    /// The router's time of the call.
    pub(crate) now: Instant,
    /// Tasks left waiting for a worker.
    pub(crate) queued: usize,
}
