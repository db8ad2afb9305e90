//! Worker starts travel to their threads in batches.
//!
//! A supervisor that starts many children at once
//! ([`SupervisorSpec::concurrent_start`](crate::SupervisorSpec::concurrent_start))
//! would otherwise send one closure per child to a worker thread, and each
//! child would answer with a message of its own: per child and per
//! direction, allocations, a channel send and often a thread wake-up. A
//! batch carries up to [`MAX_BATCH`] starts of one supervisor for one
//! thread; the thread runs them in order and acknowledges them all in one
//! report ([`Parent::started_all`]), in the same order. A batch stays small,
//! so the supervisor handles the acknowledgements of one while the thread
//! builds the next. A start that waits for its predecessor (the default,
//! one at a time) is a batch of one.
//!
//! As before, a start is acknowledged once its actor is created and
//! scheduled, before its `started` hook runs, so every acknowledgement
//! reaches the supervisor before any exit report of the same incarnation.

use std::sync::Arc;

use actix::ArbiterHandle;

use crate::child_spec::WorkerFactory;
use crate::link::{ChildLink, Incarnation, Wiring};
use crate::parent::ChildStarted;

/// Starts per batch: large enough to make the per-batch costs vanish, small
/// enough to keep the supervisor and the worker threads working side by side.
pub(crate) const MAX_BATCH: usize = 256;

/// One worker incarnation to build on its thread.
pub(crate) struct StartJob {
    pub(crate) factory: Arc<dyn WorkerFactory>,
    pub(crate) link: ChildLink,
    pub(crate) wiring: Wiring,
    /// Where its start is acknowledged.
    pub(crate) ack: Incarnation,
    /// The span it was started in (a restart's), entered on its thread.
    pub(crate) span: tracing::Span,
}

/// Starts of one supervisor not yet sent, by worker thread.
#[derive(Default)]
pub(crate) struct Starts {
    /// (placement index, thread, its starts in order).
    pending: Vec<(usize, ArbiterHandle, Batch)>,
}

impl Starts {
    /// Queues `job` for `thread` (worker `index`); a full batch is sent at once.
    pub(crate) fn push(&mut self, index: usize, thread: ArbiterHandle, job: StartJob) {
        let Some(at) = self.pending.iter().position(|(i, ..)| *i == index) else {
            self.pending.push((index, thread, Batch::new(job)));
            return;
        };
        let batch = &mut self.pending[at].2;
        batch.rest.push(job);
        if batch.rest.len() + 1 >= MAX_BATCH {
            let (_, thread, batch) = self.pending.swap_remove(at);
            batch.send(&thread);
        }
    }

    /// Sends every queued start.
    pub(crate) fn flush(&mut self) {
        for (_, thread, batch) in self.pending.drain(..) {
            batch.send(&thread);
        }
    }
}

/// Starts for one thread, in order. The first is held apart, so a batch of
/// one (a start that waits for its predecessor, an added child) allocates
/// nothing more than a lone start did.
struct Batch {
    first: Option<StartJob>,
    rest: Vec<StartJob>,
}

impl Batch {
    fn new(first: StartJob) -> Self {
        Self {
            first: Some(first),
            rest: Vec::new(),
        }
    }

    fn send(self, thread: &ArbiterHandle) {
        // A thread that has stopped drops the closure unrun: the batch's
        // `Drop` then fails each start.
        thread.spawn_fn(move || self.run());
    }

    /// Runs on its thread, then acknowledges every start in one report.
    fn run(mut self) {
        let Some(first) = self.first.take() else {
            return;
        };
        let parent = first.ack.parent().clone();
        let rest = std::mem::take(&mut self.rest);
        if rest.is_empty() {
            let (report, unused) = first.start();
            parent.started(report);
            // After the acknowledgement: the exit report of a child that did
            // not start finds it already down, and is ignored.
            drop(unused);
            return;
        }
        let mut reports = Vec::with_capacity(rest.len() + 1);
        let mut unused: Vec<Wiring> = Vec::new();
        for job in std::iter::once(first).chain(rest) {
            let (report, wiring) = job.start();
            reports.push(report);
            unused.extend(wiring);
        }
        parent.started_all(reports);
        drop(unused);
    }
}

impl Drop for Batch {
    /// Unrun (its thread has stopped): each start fails, reported after the
    /// starts are dropped, as a start sent to a stopped thread always was.
    fn drop(&mut self) {
        let Some(first) = self.first.take() else {
            return;
        };
        let acks: Vec<Incarnation> = std::iter::once(&first)
            .chain(&self.rest)
            .map(|job| job.ack.clone())
            .collect();
        drop(first);
        self.rest.clear();
        for ack in acks {
            ack.report_start(Err("worker thread has stopped".to_owned()));
        }
    }
}

impl StartJob {
    /// Builds the incarnation here; its report and its unused wiring.
    fn start(self) -> (ChildStarted, Option<Wiring>) {
        let _entered = self.span.enter();
        let (result, unused) = self.factory.start(self.link, self.wiring);
        (self.ack.start_report(result), unused)
    }
}
