//! What each caller asks of the router through [`SharedRouter`]: a
//! submitter's tasks and a worker's settled attempts (the task path, which
//! never waits for the lock), and the calls off it (registration, news,
//! draining, shutdown, books, metrics), which do, briefly.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Router, SharedRouter, WorkerNews};
use crate::messages::{Caller, Done, ProcessGauge, Settled, Submit, WorkerInbox, WorkerKey};
use crate::metrics::PoolMetrics;
use crate::store::TaskStore;
use crate::{ShutdownMode, ShutdownReport, TaskHandler, TaskId};

impl<H: TaskHandler, S: TaskStore<H>> SharedRouter<H, S> {
    /// Accepts submissions, in order, and dispatches what it can. While
    /// every worker is busy they only join the intake (see `inbox.rs`);
    /// the submitter never waits for the lock. `now` is the time of the
    /// first (its submission's: no new clock read).
    pub(crate) fn submit(&self, submits: impl IntoIterator<Item = Submit<H>>, now: Instant) {
        // Some worker has room and nobody holds the lock: accept them under
        // it straight away (after what waits in the intake, so the order
        // holds), sparing them the trip through the intake.
        let room = self.shared.public.room.load(Ordering::SeqCst);
        if let Some(router) = room.then(|| self.try_lock()).flatten() {
            self.locked(router, now, None, |router| {
                router.busy_at = Some(router.now);
                for submit in submits {
                    router.accept(submit);
                }
            });
            self.after_unlock();
            return;
        }
        self.shared.intake.extend(submits);
        self.announce();
        if self.shared.public.room.load(Ordering::SeqCst)
            || self.shared.gauges.closed.load(Ordering::SeqCst)
        {
            if let Some(router) = self.try_lock() {
                self.locked(router, now, None, |router| {
                    router.busy_at = Some(router.now)
                });
            }
            self.after_unlock();
        }
    }

    /// Settles a worker's finished attempts (emptying `reports`) and
    /// dispatches what they freed; the worker's own next tasks are added to
    /// `caller.runs`. Replies to submitters are added to `caller.replies`
    /// for the worker to deliver (see
    /// [`Effect::apply`](crate::messages::Effect::apply)): a busy worker
    /// sends them in bursts, so one wake-up of a submitter's thread carries
    /// many.
    ///
    /// Never waits for the lock: if another thread holds it, the reports
    /// are queued for that thread to settle, and `None` comes back (the
    /// worker's next task, if any, then comes as a message).
    pub(crate) fn settle(
        &self,
        reports: &mut Vec<Done<H::Output>>,
        caller: Caller<'_, H>,
    ) -> Option<Settled> {
        let report = |router: &mut Router<H, S>| {
            router.busy_at = Some(router.now);
            Settled {
                now: router.now,
                queued: router.queued(),
            }
        };
        let now = Instant::now();
        let settled = match self.try_lock_spinning() {
            Some(router) => self.locked(router, now, Some(caller), |router| {
                for done in reports.drain(..) {
                    router.on_done(done);
                }
                report(router)
            }),
            None => {
                self.shared.settled.extend(reports.drain(..));
                self.announce();
                // The holder may have let go in the meantime.
                let router = self.try_lock()?;
                self.locked(router, now, Some(caller), report)
            }
        };
        self.after_unlock();
        Some(settled)
    }

    /// A worker incarnation is up; returns its key (`None` if it is stale).
    pub(crate) fn register(
        &self,
        worker: Arc<str>,
        incarnation: u64,
        inbox: WorkerInbox<H::Task>,
        capabilities: Vec<String>,
        process: Option<Arc<ProcessGauge>>,
    ) -> Option<WorkerKey> {
        self.with(|router| router.register(worker, incarnation, inbox, capabilities, process))
    }

    /// Tasks (id, attempt) handed to worker incarnation `worker` in a batch
    /// that it never started: they go back to the queue, costing no
    /// attempt.
    pub(crate) fn hand_back(&self, worker: WorkerKey, incarnation: u64, runs: Vec<(TaskId, u32)>) {
        self.with(|router| {
            for (id, attempt) in runs {
                router.unstarted(worker, incarnation, id, attempt);
            }
        });
    }

    /// A worker incarnation leaves before it ends (its process is gone):
    /// its finished attempts are settled, the tasks it never started go
    /// back to the queue, and it is forgotten, under one lock, so that no
    /// dispatch in between sends it a task.
    pub(crate) fn retire(
        &self,
        reports: Vec<Done<H::Output>>,
        (worker, key, incarnation): (&str, WorkerKey, u64),
        unstarted: Vec<(TaskId, u32)>,
    ) {
        self.with(|router| {
            for done in reports {
                router.on_done(done);
            }
            for (id, attempt) in unstarted {
                router.unstarted(key, incarnation, id, attempt);
            }
            router.unregister(worker, incarnation);
        });
    }

    /// A worker incarnation is gone.
    pub(crate) fn unregister(&self, worker: &str, incarnation: u64) {
        self.with(|router| router.unregister(worker, incarnation));
    }

    /// News from the worker supervisor.
    pub(crate) fn news(&self, news: WorkerNews) {
        self.with(|router| router.news(news));
    }

    /// Stops routing to `workers`; `reply` is answered once they are idle.
    pub(crate) fn drain(&self, workers: &[String], reply: oneshot::Sender<()>) {
        self.with(|router| router.drain(workers, reply));
    }

    /// Makes room for `n` new tasks on a full queue by discarding less
    /// important ones (see [`Router::shed`]); whether it did.
    pub(crate) fn shed(&self, n: usize, least: u8, bound: usize) -> bool {
        self.with(|router| router.shed(n, least, bound))
    }

    /// Starts `submit` on a worker now (`None`), or hands it back (see
    /// [`Router::hand_off`]).
    pub(crate) fn hand_off(&self, submit: Submit<H>) -> Option<Submit<H>> {
        self.with(|router| router.hand_off(submit))
    }

    /// Starts the shutdown; `reply` gets the books.
    pub(crate) fn shutdown(&self, mode: ShutdownMode, reply: oneshot::Sender<ShutdownReport>) {
        self.with(|router| router.shutdown(mode, reply));
    }

    /// What waits and what runs (see [`Router::load`]).
    pub(crate) fn load(&self) -> (u64, u64) {
        self.with(|router| router.load())
    }

    /// What this router adds to the pool's metrics.
    pub(crate) fn metrics_part(&self) -> super::merge::Part {
        self.with(|router| router.metrics_part())
    }

    /// The books as they stand.
    pub(crate) fn books(&self) -> ShutdownReport {
        self.with(|router| router.books(Vec::new()))
    }

    /// A metrics snapshot.
    pub(crate) fn metrics(&self) -> PoolMetrics {
        self.with(|router| router.metrics())
    }
}
