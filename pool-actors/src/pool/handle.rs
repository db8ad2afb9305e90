//! What a caller holds: a task's handle, and a subscription to events.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};

use candado::EventStreamError;
use tokio::sync::{broadcast, oneshot};

use crate::messages::TaskResult;
use crate::router::Gauges;
use crate::{PoolEvent, TaskFailure, TaskHandler, TaskId};

/// The eventual result of one task. Resolves exactly once.
pub struct TaskHandle<H: TaskHandler> {
    pub(super) id: TaskId,
    pub(super) rx: oneshot::Receiver<TaskResult<H>>,
}

impl<H: TaskHandler> std::fmt::Debug for TaskHandle<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<H: TaskHandler> TaskHandle<H> {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }
}

impl<H: TaskHandler> Future for TaskHandle<H> {
    type Output = Result<H::Output, TaskFailure<H::Task>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(TaskFailure::PoolGone)))
    }
}

/// A subscription to a pool's events.
#[derive(Debug)]
pub struct PoolEvents {
    pub(super) rx: broadcast::Receiver<PoolEvent>,
    pub(super) gauges: Arc<Gauges>,
}

impl Drop for PoolEvents {
    fn drop(&mut self) {
        self.gauges.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PoolEvents {
    /// The next event. A subscriber that fell more than the buffer (4,096
    /// events) behind is told how many it missed
    /// ([`EventStreamError::Lagged`]), then gets the oldest event still
    /// kept; [`EventStreamError::Closed`] once the pool is gone.
    pub async fn recv(&mut self) -> Result<PoolEvent, EventStreamError> {
        self.rx.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => EventStreamError::Lagged(n),
            broadcast::error::RecvError::Closed => EventStreamError::Closed,
        })
    }

    /// The next event if one is queued (`Ok(None)` if none is); errors as
    /// for [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Option<PoolEvent>, EventStreamError> {
        match self.rx.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(broadcast::error::TryRecvError::Empty) => Ok(None),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Err(EventStreamError::Lagged(n)),
            Err(broadcast::error::TryRecvError::Closed) => Err(EventStreamError::Closed),
        }
    }
}
