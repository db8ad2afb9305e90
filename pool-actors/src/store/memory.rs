//! The in-memory task store: every accepted task's record in a hash map,
//! the ready queue and the tasks waiting for their time beside it, and dead
//! tasks handed to the dead-letter store (an actor on the control thread).

use std::time::Duration;

use actix::Addr;
use candado::{Backoff, BackoffConfig};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::delayed::DelayedTasks;
use super::queue::ReadyQueues;
use super::{Claimed, Completed, DeadLettered, Failed, Rank, Ready, Running, TaskStore, Withdrawn};
use crate::dead_letter::{DeadLetters, DeadTask, Store};
use crate::deadline;
use crate::messages::{Submit, TaskResult, WorkerKey};
use crate::{Attempt, AttemptError, TaskHandler, TaskId, TaskOptions, DEFAULT_PRIORITY};

/// One accepted task, payload and reply channel included, until it ends.
struct TaskRecord<H: TaskHandler> {
    task: H::Task,
    options: TaskOptions,
    priority: u8,
    /// Its place among equal priorities (FIFO): its id, which every
    /// router of the pool orders alike, kept across retries so a retried
    /// task does not fall behind later submissions.
    seq: u64,
    reply: Option<oneshot::Sender<TaskResult<H>>>,
    /// Where it queues: the one worker it is routed to, or else its
    /// capability.
    queue: Option<String>,
    attempts: Vec<Attempt>,
    backoff: Backoff,
    submitted_at: Instant,
    queued_at: Instant,
    running: Option<Running>,
}

/// A ready task on its way from one router's store to another's: its
/// whole record (payload, reply channel, history, backoff).
pub(crate) struct Moving<H: TaskHandler> {
    id: TaskId,
    record: TaskRecord<H>,
}

impl<H: TaskHandler> Moving<H> {
    /// The task's id.
    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    /// When it was submitted (its time to live counts from then).
    pub(crate) fn submitted_at(&self) -> Instant {
        self.record.submitted_at
    }

    /// Its time to live, if it has one.
    pub(crate) fn ttl(&self) -> Option<Duration> {
        self.record.options.ttl
    }
}

/// The in-memory [`TaskStore`]: the default, and today the only one.
pub(crate) struct MemoryStore<H: TaskHandler> {
    tasks: FxHashMap<TaskId, TaskRecord<H>>,
    queues: ReadyQueues,
    delayed: DelayedTasks,
    /// The jitter of retry delays.
    rng: SmallRng,
    /// Where dead tasks go.
    dead: Addr<DeadLetters<H::Task>>,
}

impl<H: TaskHandler> MemoryStore<H> {
    /// An empty store whose ready tasks move up a priority level every
    /// `promote_after` (`None`: never), and whose dead tasks go to `dead`.
    pub(crate) fn new(promote_after: Option<Duration>, dead: Addr<DeadLetters<H::Task>>) -> Self {
        Self {
            tasks: FxHashMap::default(),
            queues: ReadyQueues::new(promote_after),
            delayed: DelayedTasks::default(),
            rng: SmallRng::seed_from_u64(0x5eed),
            dead,
        }
    }

    /// Task `id` joins the ready queue, in its place.
    fn requeue(&mut self, id: TaskId, now: Instant) {
        let Some(record) = self.tasks.get_mut(&id) else {
            return;
        };
        record.queued_at = now;
        self.queues
            .push(now, id, record.priority, record.seq, record.queue.clone());
    }
}

impl<H: TaskHandler> TaskStore<H> for MemoryStore<H> {
    fn enqueue(&mut self, submit: Submit<H>, now: Instant) {
        let id = submit.id;
        self.hold(submit, now);
        self.requeue(id, now);
    }

    fn hold(&mut self, submit: Submit<H>, now: Instant) {
        let priority = submit.options.priority.unwrap_or(DEFAULT_PRIORITY);
        let queue = submit.route.or_else(|| submit.options.capability.clone());
        self.tasks.insert(
            submit.id,
            TaskRecord {
                task: submit.task,
                options: submit.options,
                priority,
                seq: submit.id,
                reply: submit.reply,
                queue,
                attempts: Vec::new(),
                backoff: Backoff::new(),
                submitted_at: submit.submitted_at,
                queued_at: now,
                running: None,
            },
        );
    }

    fn ready(&self) -> usize {
        self.queues.len()
    }

    fn plain_ready(&self) -> (usize, Option<u8>) {
        self.queues.plain()
    }

    fn ready_by_priority(&self) -> std::collections::BTreeMap<u8, u64> {
        self.queues.depth_by_priority()
    }

    fn delayed(&self) -> usize {
        self.delayed.len()
    }

    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    fn held(&self) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    fn options(&self, id: TaskId) -> Option<&TaskOptions> {
        self.tasks.get(&id).map(|r| &r.options)
    }

    fn next_ready(&self, below: Option<Rank>) -> Option<Ready> {
        let (capability, id, rank) = self.queues.head_below(below)?;
        Some(Ready {
            id,
            capability,
            rank,
        })
    }

    fn waiting_in(&self, queue: &str) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, r)| r.running.is_none() && r.queue.as_deref() == Some(queue))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    fn readdress(&mut self, id: TaskId, queue: Option<String>, now: Instant) {
        let Some(record) = self.tasks.get_mut(&id) else {
            return;
        };
        record.queue = queue;
        if self.queues.remove(id) {
            self.requeue(id, now);
        }
    }

    fn claim(&mut self, id: TaskId, running: Running) -> Option<Claimed<H::Task>> {
        self.queues.remove(id);
        let record = self.tasks.get_mut(&id)?;
        let attempt = u32::try_from(record.attempts.len() + 1).unwrap_or(u32::MAX);
        record.running = Some(running);
        Some(Claimed {
            attempt,
            task: record.task.clone(),
            timeout: record.options.timeout,
            queued_at: record.queued_at,
        })
    }

    fn running(&self, id: TaskId) -> Option<(u32, &Running)> {
        let record = self.tasks.get(&id)?;
        let number = u32::try_from(record.attempts.len() + 1).unwrap_or(u32::MAX);
        Some((number, record.running.as_ref()?))
    }

    fn release(&mut self, id: TaskId, now: Instant) {
        if let Some(record) = self.tasks.get_mut(&id) {
            record.running = None;
        }
        self.requeue(id, now);
    }

    fn complete(&mut self, id: TaskId) -> Option<Completed<H>> {
        let record = self.tasks.remove(&id)?;
        Some(Completed {
            reply: record.reply,
            submitted_at: record.submitted_at,
        })
    }

    fn fail(
        &mut self,
        id: TaskId,
        error: &AttemptError,
        ended_ms: u64,
        name: impl FnOnce(WorkerKey) -> String,
    ) -> Option<Failed> {
        let record = self.tasks.get_mut(&id)?;
        let running = record.running.take()?;
        let worker = name(running.worker);
        let number = u32::try_from(record.attempts.len() + 1).unwrap_or(u32::MAX);
        record.attempts.push(Attempt {
            number,
            worker: worker.clone(),
            started_ms: running.started_ms,
            ended_ms,
            error: error.clone(),
        });
        Some(Failed {
            number,
            worker,
            running,
        })
    }

    fn schedule_retry(
        &mut self,
        id: TaskId,
        now: Instant,
        backoff: &BackoffConfig,
    ) -> Option<(Duration, Instant)> {
        let record = self.tasks.get_mut(&id)?;
        let delay = record.backoff.next_delay(backoff, &mut self.rng);
        let due = deadline::after(now, delay);
        self.delayed.push(due, id);
        Some((delay, due))
    }

    fn delay(&mut self, id: TaskId, due: Instant) {
        self.queues.remove(id);
        self.delayed.push(due, id);
    }

    fn next_due(&self) -> Option<Instant> {
        self.delayed.next_due()
    }

    fn requeue_due(&mut self, now: Instant) {
        for id in self.delayed.take_due(now) {
            self.requeue(id, now);
        }
    }

    fn promote(&mut self, now: Instant) {
        self.queues.promote(now);
    }

    fn expires_at(&self, id: TaskId) -> Option<Instant> {
        let record = self.tasks.get(&id)?;
        let ttl = record.options.ttl?;
        Some(deadline::after(record.submitted_at, ttl))
    }

    fn is_ready(&self, id: TaskId) -> bool {
        self.queues.contains(id)
    }

    fn worst_ready(&self, n: usize) -> Vec<(TaskId, u8)> {
        self.queues.worst(n)
    }

    fn dead_task(&self, id: TaskId, reason: &str) -> Option<DeadTask<H::Task>> {
        let record = self.tasks.get(&id)?;
        Some(DeadTask {
            id,
            task: record.task.clone(),
            options: record.options.clone(),
            attempts: record.attempts.clone(),
            reason: reason.to_owned(),
        })
    }

    fn dead_letter(&mut self, id: TaskId, reason: &str) -> Option<DeadLettered<H>> {
        let record = self.tasks.remove(&id)?;
        self.queues.remove(id);
        let attempts = record.attempts.clone();
        self.dead.do_send(Store(DeadTask {
            id,
            task: record.task,
            options: record.options,
            attempts: record.attempts,
            reason: reason.to_owned(),
        }));
        Some(DeadLettered {
            reply: record.reply,
            attempts,
        })
    }

    fn withdraw(&mut self, id: TaskId) -> Option<Withdrawn<H>> {
        let record = self.tasks.remove(&id)?;
        self.queues.remove(id);
        Some(Withdrawn {
            task: record.task,
            reply: record.reply,
        })
    }

    fn take_ready(&mut self, id: TaskId) -> Option<Moving<H>> {
        let priority = self.queues.priority_of(id)?;
        self.queues.remove(id);
        let mut record = self.tasks.remove(&id)?;
        record.priority = priority;
        Some(Moving { id, record })
    }

    fn put(&mut self, moving: Moving<H>, now: Instant) {
        let Moving { id, record } = moving;
        self.tasks.insert(id, record);
        self.requeue(id, now);
    }

    fn unqueue_all(&mut self) {
        self.queues.drain();
        self.delayed.drain();
    }
}
