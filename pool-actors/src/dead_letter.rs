//! The dead-letter store: tasks that exhausted their retries.

use std::collections::VecDeque;

use actix::{Actor, Context, Handler, Message};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::{Attempt, PoolEvent, TaskId, TaskOptions};

/// A task that will not run again unless replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadTask<T> {
    /// The task's id.
    pub id: TaskId,
    /// Its payload, for inspection and replay.
    pub task: T,
    /// The options it was submitted with.
    pub options: TaskOptions,
    /// Every attempt, oldest first (empty if it never ran).
    pub attempts: Vec<Attempt>,
    /// Why it is dead (`retries exhausted`, `shutdown`).
    pub reason: String,
}

/// A dead task without its payload, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadTaskSummary {
    /// The task's id.
    pub id: TaskId,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error, if it ran.
    pub last_error: Option<String>,
    /// Why it is dead.
    pub reason: String,
}

pub(crate) struct DeadLetters<T: Clone + Send + Unpin + 'static> {
    tasks: VecDeque<DeadTask<T>>,
    capacity: usize,
    events: broadcast::Sender<PoolEvent>,
}

impl<T: Clone + Send + Unpin + 'static> DeadLetters<T> {
    pub(crate) fn new(capacity: usize, events: broadcast::Sender<PoolEvent>) -> Self {
        Self {
            tasks: VecDeque::new(),
            capacity: capacity.max(1),
            events,
        }
    }
}

impl<T: Clone + Send + Unpin + 'static> Actor for DeadLetters<T> {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Store<T>(pub(crate) DeadTask<T>);

/// Requests to the dead-letter store.
pub(crate) enum DeadRequest {
    List,
    Inspect(TaskId),
    Take(TaskId),
    Purge(Option<TaskId>),
}

/// A [`DeadRequest`] for a store of `T`s.
pub(crate) struct Ask<T>(pub(crate) DeadRequest, std::marker::PhantomData<fn() -> T>);

impl<T> Ask<T> {
    pub(crate) fn new(request: DeadRequest) -> Self {
        Self(request, std::marker::PhantomData)
    }
}

impl<T: 'static> Message for Ask<T> {
    type Result = DeadReply<T>;
}

pub(crate) enum DeadReply<T> {
    List(Vec<DeadTaskSummary>),
    Task(Option<DeadTask<T>>),
    Purged(usize),
}

impl<T: Clone + Send + Unpin + 'static> actix::dev::MessageResponse<DeadLetters<T>, Ask<T>>
    for DeadReply<T>
{
    fn handle(
        self,
        _: &mut Context<DeadLetters<T>>,
        tx: Option<actix::dev::OneshotSender<DeadReply<T>>>,
    ) {
        if let Some(tx) = tx {
            let _ = tx.send(self);
        }
    }
}

impl<T: Clone + Send + Unpin + 'static> Handler<Store<T>> for DeadLetters<T> {
    type Result = ();

    fn handle(&mut self, Store(task): Store<T>, _: &mut Context<Self>) {
        if self.tasks.len() >= self.capacity {
            if let Some(evicted) = self.tasks.pop_front() {
                tracing::warn!(
                    task = evicted.id,
                    "dead-letter store full; oldest task evicted"
                );
                let _ = self
                    .events
                    .send(PoolEvent::DeadLetterEvicted { id: evicted.id });
            }
        }
        self.tasks.push_back(task);
    }
}

impl<T: Clone + Send + Unpin + 'static> Handler<Ask<T>> for DeadLetters<T> {
    type Result = DeadReply<T>;

    fn handle(&mut self, Ask(request, _): Ask<T>, _: &mut Context<Self>) -> DeadReply<T> {
        match request {
            DeadRequest::List => DeadReply::List(
                self.tasks
                    .iter()
                    .map(|t| DeadTaskSummary {
                        id: t.id,
                        attempts: u32::try_from(t.attempts.len()).unwrap_or(u32::MAX),
                        last_error: t.attempts.last().map(|a| a.error.to_string()),
                        reason: t.reason.clone(),
                    })
                    .collect(),
            ),
            DeadRequest::Inspect(id) => {
                DeadReply::Task(self.tasks.iter().find(|t| t.id == id).cloned())
            }
            DeadRequest::Take(id) => {
                let position = self.tasks.iter().position(|t| t.id == id);
                DeadReply::Task(position.and_then(|p| self.tasks.remove(p)))
            }
            DeadRequest::Purge(Some(id)) => {
                let before = self.tasks.len();
                self.tasks.retain(|t| t.id != id);
                DeadReply::Purged(before - self.tasks.len())
            }
            DeadRequest::Purge(None) => {
                let n = self.tasks.len();
                self.tasks.clear();
                DeadReply::Purged(n)
            }
        }
    }
}
