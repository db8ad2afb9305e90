//! The parent's side of process isolation: a pool worker's attempts go to
//! the process it owns, and come back as outcomes.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use candado::ExitReason;
use candado_process::{
    CallError, ProcessCommand, ProcessEvents, ProcessOptions, ProtocolError, WorkerProcess,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::wire::{TaskCall, TaskReply};
use crate::{AttemptError, Blame, TaskHandler, TaskId};

type Encode<T> = fn(&TaskCall<T>) -> Result<Vec<u8>, ProtocolError>;
type Decode<O> = fn(&[u8]) -> Result<TaskReply<O>, ProtocolError>;

/// What a pool's worker processes run, and how tasks and outputs travel:
/// the codec is chosen where the handler's types are known to be serde-able.
pub(crate) struct ProcessEntry<H: TaskHandler> {
    pub(crate) command: ProcessCommand,
    encode: Encode<H::Task>,
    decode: Decode<H::Output>,
}

impl<H: TaskHandler> Clone for ProcessEntry<H> {
    fn clone(&self) -> Self {
        Self {
            command: self.command.clone(),
            encode: self.encode,
            decode: self.decode,
        }
    }
}

impl<H: TaskHandler> ProcessEntry<H>
where
    H::Task: Serialize,
    H::Output: DeserializeOwned,
{
    pub(crate) fn new(command: ProcessCommand) -> Self {
        Self {
            command,
            encode: candado_process::to_bytes::<TaskCall<H::Task>>,
            decode: candado_process::from_bytes::<TaskReply<H::Output>>,
        }
    }
}

/// One worker incarnation's process.
pub(crate) struct Remote<H: TaskHandler> {
    entry: ProcessEntry<H>,
    options: ProcessOptions,
    /// A task past its timeout gets this long to be cancelled in the
    /// process before the process is killed.
    pub(crate) grace: Duration,
    process: RefCell<Option<WorkerProcess>>,
}

impl<H: TaskHandler> Remote<H> {
    pub(crate) fn new(entry: ProcessEntry<H>, options: ProcessOptions, grace: Duration) -> Self {
        Self {
            entry,
            options,
            grace,
            process: RefCell::new(None),
        }
    }

    /// Starts the process; its news come on the events.
    pub(crate) fn spawn(&self, name: &str) -> Result<(u32, ProcessEvents), ExitReason> {
        let (process, events) = WorkerProcess::spawn(&self.entry.command, &self.options, name)?;
        let pid = process.pid();
        *self.process.borrow_mut() = Some(process);
        Ok((pid, events))
    }

    pub(crate) fn memory_interval(&self) -> Duration {
        self.options.memory_interval
    }

    /// The process is gone (reaped).
    pub(crate) fn gone(&self) {
        self.process.borrow_mut().take();
    }

    /// Whether its process takes tasks: running, and neither asked to end
    /// nor killed.
    pub(crate) fn serving(&self) -> bool {
        self.process
            .borrow()
            .as_ref()
            .is_some_and(WorkerProcess::is_serving)
    }

    /// Whether a process runs now.
    pub(crate) fn running(&self) -> bool {
        self.process.borrow().is_some()
    }

    /// Stops the process: SIGTERM, or SIGKILL if it is frozen.
    pub(crate) fn stop(&self) {
        if let Some(process) = &*self.process.borrow() {
            process.stop();
        }
    }

    /// Kills the process with `reason` as its exit reason.
    pub(crate) fn kill(&self, reason: ExitReason) {
        if let Some(process) = &*self.process.borrow() {
            process.kill(reason);
        }
    }

    /// The process's measured RSS.
    pub(crate) fn rss(&self) -> Option<u64> {
        self.process
            .borrow_mut()
            .as_mut()
            .and_then(WorkerProcess::rss)
    }

    /// One attempt of `task` in the process, with `time_left` of its
    /// `timeout`.
    pub(crate) fn attempt(
        &self,
        id: TaskId,
        attempt: u32,
        task: H::Task,
        (time_left, timeout): (Duration, Duration),
        yield_every: u32,
    ) -> impl Future<Output = Result<H::Output, AttemptError>> + 'static {
        let call = TaskCall {
            id,
            attempt,
            timeout_ms: u64::try_from(time_left.as_millis()).unwrap_or(u64::MAX),
            yield_every,
            task,
        };
        let sent = match (self.entry.encode)(&call) {
            Err(e) => Err(AttemptError::Failed(format!("cannot encode the task: {e}"))),
            Ok(bytes) => match &*self.process.borrow() {
                Some(process) => Ok(process.call(bytes)),
                None => Err(AttemptError::WorkerLost(
                    "the worker process is not running".into(),
                )),
            },
        };
        let decode = self.entry.decode;
        async move {
            let reply = sent?.await.map_err(lost_or_failed)?;
            match decode(&reply) {
                Ok(TaskReply::Done(output)) => Ok(output),
                Ok(TaskReply::Failed { message, blame }) => Err(match blame {
                    Blame::Task => AttemptError::Failed(message),
                    Blame::Worker => AttemptError::WorkerFailed(message),
                    Blame::Permanent => AttemptError::NotRetryable(message),
                }),
                Ok(TaskReply::Panicked(message)) => Err(AttemptError::Panicked(message)),
                Ok(TaskReply::TimedOut) => Err(AttemptError::TimedOut(timeout)),
                Err(e) => Err(AttemptError::Failed(format!(
                    "cannot decode the worker's outcome: {e}"
                ))),
            }
        }
    }
}

/// A call's failure: the process's end (the worker is lost), or the task's
/// (it does not fit in a frame, or the process could not decode it).
fn lost_or_failed(error: CallError) -> AttemptError {
    match error {
        CallError::Handler(message) => AttemptError::Failed(message),
        CallError::TooLarge { .. } => AttemptError::Failed(error.to_string()),
        CallError::Exited(reason) => AttemptError::WorkerLost(reason),
        other => AttemptError::WorkerLost(other.to_string()),
    }
}
