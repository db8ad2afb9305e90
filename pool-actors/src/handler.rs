//! What users implement: a task handler, and the context each task gets.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candado::ChildLink;

use crate::TaskId;

/// Runs tasks on a pool worker. One handler instance lives in each worker
/// incarnation (built by the pool's factory on the worker's thread) and
/// serves many tasks.
///
/// The returned future must not borrow the handler (`'static`): clone what it
/// needs. It runs on the worker's thread; it need not be `Send`.
///
/// ```
/// use candado_pool::{TaskContext, TaskHandler};
///
/// struct Square;
///
/// impl TaskHandler for Square {
///     type Task = u64;
///     type Output = u64;
///     type Error = String;
///
///     fn handle(&mut self, n: u64, mut ctx: TaskContext) -> impl std::future::Future<Output = Result<u64, String>> + 'static {
///         async move {
///             let mut acc = 0;
///             for _ in 0..n {
///                 acc += n;
///                 ctx.checkpoint().await; // yields every N iterations
///             }
///             Ok(acc)
///         }
///     }
/// }
/// ```
pub trait TaskHandler: Unpin + 'static {
    /// The task payload. Cloned for each attempt, so the pool can retry it.
    type Task: Clone + Send + Unpin + 'static;
    /// What a successful task yields.
    type Output: Send + Unpin + 'static;
    /// What a failed attempt reports.
    type Error: fmt::Display + 'static;

    /// Runs one attempt of `task`.
    fn handle(
        &mut self,
        task: Self::Task,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + 'static;

    /// Whose fault `error` is. By default the task's: it is retried and
    /// dead-lettered like any failed attempt, and counts against its
    /// dependency's breaker when it names one, never against the worker.
    /// Return [`Blame::Worker`] for an error that says this worker is
    /// broken (its connection, its cache): that counts against the
    /// worker's breaker too. Return [`Blame::Permanent`] for an error no
    /// retry can cure: the task is dead-lettered at once, without retries.
    fn blame(&self, error: &Self::Error) -> Blame {
        let _ = error;
        Blame::Task
    }
}

/// Whose fault a failed attempt is (see [`TaskHandler::blame`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Blame {
    /// The task's (bad input, a failing dependency): the worker is fine.
    #[default]
    Task,
    /// The worker's: it should get no work for a while.
    Worker,
    /// The task's, for good (malformed input, a request the remote side
    /// refuses for ever): retrying cannot help. The attempt fails as
    /// [`AttemptError::NotRetryable`](crate::AttemptError::NotRetryable)
    /// and the task goes to the dead-letter store at once, whatever its
    /// retry budget. It counts against no breaker.
    Permanent,
}

/// What a running task can do: report progress, notice cancellation, and
/// yield cooperatively.
#[derive(Debug)]
pub struct TaskContext {
    id: TaskId,
    attempt: u32,
    reporter: Reporter,
    cancelled: Arc<AtomicBool>,
    yield_every: u32,
    steps: u32,
}

/// Where a task's progress and memory reports go.
#[derive(Debug)]
pub(crate) enum Reporter {
    /// The worker's link to its supervisor (in-process workers).
    Link(Arc<ChildLink>),
    /// The parent, over the worker process's pipe (process isolation): at
    /// most one progress frame per [`PROGRESS_EVERY`]. Memory is measured
    /// by the parent, not reported.
    Process {
        progress: candado_process::Progress,
        sent: std::cell::Cell<Option<std::time::Instant>>,
    },
}

/// A process worker's handler reports progress at most this often: a
/// frame per checkpoint would cost more than the work.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

impl Reporter {
    fn progress(&self) {
        match self {
            Reporter::Link(link) => link.progress(),
            Reporter::Process { progress, sent } => {
                let now = std::time::Instant::now();
                if sent
                    .get()
                    .is_none_or(|at| now.duration_since(at) >= PROGRESS_EVERY)
                {
                    sent.set(Some(now));
                    progress.report();
                }
            }
        }
    }
}

impl TaskContext {
    pub(crate) fn new(
        id: TaskId,
        attempt: u32,
        reporter: Reporter,
        cancelled: Arc<AtomicBool>,
        yield_every: u32,
    ) -> Self {
        Self {
            id,
            attempt,
            reporter,
            cancelled,
            yield_every: yield_every.max(1),
            steps: 0,
        }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Which attempt this is (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Reports progress (liveness's stuck-task detection watches it).
    pub fn progress(&self) {
        self.reporter.progress();
    }

    /// Reports the memory the worker holds (sent with its heartbeats; the
    /// memory strategy's per-worker thresholds and leak detection use it).
    /// A process worker's memory is measured by pid instead: there this
    /// does nothing.
    pub fn report_memory(&self, bytes: u64) {
        if let Reporter::Link(link) = &self.reporter {
            link.set_memory(bytes);
        }
    }

    /// Whether the pool asked this attempt to stop (timeout or shutdown).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Call once per iteration of a CPU-heavy loop: every `yield_every`-th call
    /// yields to the worker's thread, so the worker keeps heartbeating and
    /// answering pings. Reports progress at the same time.
    pub async fn checkpoint(&mut self) {
        self.steps += 1;
        if self.steps >= self.yield_every {
            self.steps = 0;
            self.reporter.progress();
            tokio::task::yield_now().await;
        }
    }
}
