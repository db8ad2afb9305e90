//! What travels between a pool worker and its process, encoded with the
//! process protocol's format (postcard).

use serde::{Deserialize, Serialize};

use crate::Blame;

/// One attempt of a task.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskCall<T> {
    pub(crate) id: u64,
    pub(crate) attempt: u32,
    /// The attempt's time left when it was sent, in milliseconds: the
    /// process cancels the handler's future past it.
    pub(crate) timeout_ms: u64,
    pub(crate) yield_every: u32,
    pub(crate) task: T,
}

/// How an attempt ended in the process.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum TaskReply<O> {
    /// The handler's output.
    Done(O),
    /// The handler's error, as text, and whose fault the handler said it is.
    Failed { message: String, blame: Blame },
    /// The handler's future panicked (the process lives on).
    Panicked(String),
    /// The handler's future ran past the attempt's timeout and was dropped.
    TimedOut,
}
