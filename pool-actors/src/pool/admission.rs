//! Admission beyond the plain `submit`: options checked, load shedding on a
//! full queue (`overflow = "discard_oldest"`), the direct hand-off that
//! never queues, and broadcast to every worker.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::oneshot;

use super::{AdmitError, Pool, TaskHandle};
use crate::{
    Overflow, PoolError, SubmitError, TaskFailure, TaskHandler, TaskOptions, DEFAULT_PRIORITY,
};

impl<H: TaskHandler> Pool<H> {
    /// In a `discard_oldest` pool, counts `n` tasks on their way to a
    /// router until the guard drops (after they are delivered, or
    /// refused): a submitter that finds the queue full waits for them
    /// rather than be refused while they hold the places it would discard.
    fn on_the_way(&self, n: usize) -> Option<OnTheWay<'_>> {
        (self.inner.config.overflow == Overflow::DiscardOldest).then(|| {
            let unseen = &self.inner.gauges.unseen;
            unseen.fetch_add(n, Ordering::SeqCst);
            OnTheWay { unseen, n }
        })
    }

    /// [`admit`](Self::admit) for tasks with these `options`: checks them,
    /// and on a full queue with `overflow = "discard_oldest"` makes room by
    /// discarding less important tasks. The caller keeps the guard until
    /// it has delivered the tasks (see [`on_the_way`](Self::on_the_way)).
    pub(super) fn admit_options(
        &self,
        options: &[&TaskOptions],
    ) -> Result<Option<OnTheWay<'_>>, AdmitError> {
        if options.iter().any(|o| o.ttl.is_some_and(|t| t.is_zero())) {
            return Err(AdmitError::Invalid(
                "a time to live of zero: the task would expire before it could start".into(),
            ));
        }
        // Counted before the place is taken: whoever sees the place taken
        // also sees the task on its way.
        let unseen = self.on_the_way(options.len());
        let capabilities: Vec<Option<String>> =
            options.iter().map(|o| o.capability.clone()).collect();
        match self.admit(options.len(), &capabilities) {
            Err(AdmitError::Full(bound))
                if self.inner.config.overflow == Overflow::DiscardOldest =>
            {
                let least = options
                    .iter()
                    .map(|o| o.priority.unwrap_or(DEFAULT_PRIORITY))
                    .max()
                    .unwrap_or(DEFAULT_PRIORITY);
                if self.inner.router.shed(options.len(), least, bound) {
                    Ok(unseen)
                } else {
                    Err(AdmitError::Full(bound))
                }
            }
            Ok(()) => Ok(unseen),
            Err(e) => Err(e),
        }
    }

    /// Direct hand-off, with no queue: the task starts on a worker now, or
    /// comes back at once with [`SubmitError::NoIdleWorker`] (no worker in
    /// service has room for it, its dependency's breaker is open, or the
    /// rate limit holds starts back). It never waits in the queue and is
    /// never discarded; once it started, it is any task (retried,
    /// dead-lettered, returned at shutdown). The queue bound does not
    /// apply: a hand-off takes no place in the queue. It takes the
    /// router's lock (briefly), where `submit` usually does not.
    ///
    /// ```no_run
    /// # use candado_pool::{Pool, SubmitError, TaskHandler, TaskOptions};
    /// # fn demo<H: TaskHandler>(pool: &Pool<H>, task: H::Task) {
    /// match pool.hand_off(task, TaskOptions::default()) {
    ///     Ok(handle) => drop(handle),                    // running now
    ///     Err(SubmitError::NoIdleWorker { task }) => drop(task), // every worker busy
    ///     Err(other) => drop(other),
    /// }
    /// # }
    /// ```
    pub fn hand_off(
        &self,
        task: H::Task,
        options: TaskOptions,
    ) -> Result<TaskHandle<H>, SubmitError<H::Task>> {
        if options.ttl.is_some_and(|t| t.is_zero()) {
            return Err(SubmitError::InvalidOptions {
                task,
                problem: "a time to live of zero: the task would expire before it could start"
                    .into(),
            });
        }
        // The bound does not apply; the rest of admission does.
        if let Err(e) = self.admit(0, std::slice::from_ref(&options.capability)) {
            return Err(e.into_submit_error(task));
        }
        let (tx, rx) = oneshot::channel();
        let (id, submit) = self.submission(task, options, Some(tx));
        match self.inner.router.hand_off(submit) {
            None => Ok(TaskHandle { id, rx }),
            Some(submit) => Err(match self.admit(0, &[]) {
                Err(e) => e.into_submit_error(submit.task),
                Ok(()) => SubmitError::NoIdleWorker { task: submit.task },
            }),
        }
    }

    /// Broadcast: one copy of `task` to each worker of the pool (as
    /// [`size`](Self::size) counts them, draining ones left out), and the
    /// outcome of each, by worker id, in the order the workers were
    /// created. A copy runs only on its worker (whatever capability
    /// `options` name, and its key is ignored): it waits in the queue
    /// (in priority order, at `options`' priority) while its worker is
    /// busy, is retried there after a failure (on the worker's next
    /// incarnation if it crashed), and ends like any task: completed,
    /// dead-lettered or returned at shutdown. The copies are accepted all
    /// together or not at all (a full queue: [`PoolError::QueueFull`]).
    /// A copy whose worker `scale_down` removes before it ran is
    /// dead-lettered with reason `worker_removed`, so the broadcast still
    /// ends.
    ///
    /// ```no_run
    /// # use candado_pool::{Pool, TaskHandler, TaskOptions};
    /// # async fn demo<H: TaskHandler>(pool: Pool<H>, reload: H::Task) {
    /// for (worker, outcome) in pool.broadcast(reload, TaskOptions::priority(0)).await.unwrap() {
    ///     println!("{worker}: {}", if outcome.is_ok() { "reloaded" } else { "failed" });
    /// }
    /// # }
    /// ```
    pub async fn broadcast(
        &self,
        task: H::Task,
        options: TaskOptions,
    ) -> Result<Vec<(String, Result<H::Output, TaskFailure<H::Task>>)>, PoolError> {
        if options.ttl.is_some_and(|t| t.is_zero()) {
            return Err(PoolError::InvalidOptions(
                "a time to live of zero: the task would expire before it could start".into(),
            ));
        }
        let workers = if self.inner.gauges.failed.get().is_some() {
            Vec::new()
        } else {
            self.workers().clone()
        };
        self.admit(workers.len(), &[])
            .map_err(AdmitError::into_pool_error)?;
        let mut handles: Vec<TaskHandle<H>> = Vec::with_capacity(workers.len());
        let mut batch = Vec::with_capacity(workers.len());
        for worker in &workers {
            let (tx, rx) = oneshot::channel();
            let (id, mut submit) = self.submission(task.clone(), options.clone(), Some(tx));
            submit.route = Some(crate::messages::addressed_to(worker));
            // A copy belongs to its worker: a key would map it elsewhere
            // should that worker leave (see `Router::readdress_leaving`).
            submit.options.key = None;
            handles.push(TaskHandle { id, rx });
            batch.push(submit);
        }
        self.deliver(batch);
        let mut outcomes = Vec::with_capacity(workers.len());
        for (worker, handle) in workers.into_iter().zip(handles) {
            outcomes.push((worker, handle.await));
        }
        Ok(outcomes)
    }
}

/// Tasks counted on their way to a router (see [`Pool::on_the_way`]).
pub(super) struct OnTheWay<'a> {
    unseen: &'a AtomicUsize,
    n: usize,
}

impl Drop for OnTheWay<'_> {
    fn drop(&mut self) {
        self.unseen.fetch_sub(self.n, Ordering::SeqCst);
    }
}
