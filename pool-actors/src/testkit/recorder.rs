//! Waits for a pool's events without losing the rest: the framework's
//! [`Recorder`] over [`PoolEvents`].

use std::future::Future;
use std::time::Duration;

use candado::testkit::{EventSource, Recorder, WaitError};
use candado::EventStreamError;

use crate::{PoolEvent, PoolEvents, TaskId};

impl EventSource for PoolEvents {
    type Event = PoolEvent;

    fn recv(&mut self) -> impl Future<Output = Result<PoolEvent, EventStreamError>> {
        PoolEvents::recv(self)
    }

    fn try_recv(&mut self) -> Result<Option<PoolEvent>, EventStreamError> {
        PoolEvents::try_recv(self)
    }
}

/// A recorder of a pool's events: waits with a virtual-time timeout and
/// keeps the events it skipped ([`Recorder`]); [`PoolWaits`] adds waits
/// for one task's completion or dead letter.
pub type PoolRecorder = Recorder<PoolEvents>;

/// Waits for one task's end on a [`PoolRecorder`].
pub trait PoolWaits {
    /// Waits up to `timeout` for task `id` to complete.
    fn completion(
        &mut self,
        id: TaskId,
        timeout: Duration,
    ) -> impl Future<Output = Result<PoolEvent, WaitError>>;

    /// Waits up to `timeout` for task `id` to be dead-lettered.
    fn dead_letter(
        &mut self,
        id: TaskId,
        timeout: Duration,
    ) -> impl Future<Output = Result<PoolEvent, WaitError>>;
}

impl PoolWaits for PoolRecorder {
    fn completion(
        &mut self,
        id: TaskId,
        timeout: Duration,
    ) -> impl Future<Output = Result<PoolEvent, WaitError>> {
        self.wait_for(
            timeout,
            move |e| matches!(e, PoolEvent::TaskCompleted { id: i, .. } if *i == id),
        )
    }

    fn dead_letter(
        &mut self,
        id: TaskId,
        timeout: Duration,
    ) -> impl Future<Output = Result<PoolEvent, WaitError>> {
        self.wait_for(
            timeout,
            move |e| matches!(e, PoolEvent::TaskDeadLettered { id: i, .. } if *i == id),
        )
    }
}
