//! Records a pool's events; waits for one without losing the rest.

use std::collections::VecDeque;
use std::time::Duration;

use candado::testkit::WaitError;
use candado::EventStreamError;

use crate::{PoolEvent, PoolEvents, TaskId};

/// Every event of a pool, kept: a wait for one event leaves the ones it
/// skipped for later waits and for [`drain`](Self::drain). Timeouts are
/// virtual time on a paused clock.
#[derive(Debug)]
pub struct PoolRecorder {
    events: PoolEvents,
    pending: VecDeque<PoolEvent>,
    lost: u64,
    closed: bool,
}

impl PoolRecorder {
    /// Records `events` from now on.
    pub fn new(events: PoolEvents) -> Self {
        Self {
            events,
            pending: VecDeque::new(),
            lost: 0,
            closed: false,
        }
    }

    /// Takes every event received and not yet handed out, in order.
    pub fn drain(&mut self) -> Vec<PoolEvent> {
        self.pull();
        self.pending.drain(..).collect()
    }

    /// Events lost because the recorder fell behind (0 in a sound test).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Waits up to `timeout` for the first event, old or new, that
    /// satisfies `predicate`; every other event stays.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut predicate: impl FnMut(&PoolEvent) -> bool,
    ) -> Result<PoolEvent, WaitError> {
        self.pull();
        let earlier = self.pending.iter().position(&mut predicate);
        if let Some(event) = earlier.and_then(|at| self.pending.remove(at)) {
            return Ok(event);
        }
        if self.lost > 0 {
            return Err(WaitError::Lagged(self.lost));
        }
        let now = tokio::time::Instant::now();
        let deadline = now.checked_add(timeout.min(FAR)).unwrap_or(now);
        loop {
            if self.closed {
                return Err(WaitError::Closed);
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => {
                    return Err(WaitError::Timeout {
                        waited: timeout,
                        skipped: self.pending.len(),
                    })
                }
                Ok(Err(EventStreamError::Lagged(n))) => {
                    self.lost += n;
                    return Err(WaitError::Lagged(self.lost));
                }
                Ok(Err(EventStreamError::Closed)) => self.closed = true,
                Ok(Ok(event)) if predicate(&event) => return Ok(event),
                Ok(Ok(event)) => self.pending.push_back(event),
            }
        }
    }

    /// Waits for task `id` to complete.
    pub async fn completion(
        &mut self,
        id: TaskId,
        timeout: Duration,
    ) -> Result<PoolEvent, WaitError> {
        self.wait_for(
            timeout,
            |e| matches!(e, PoolEvent::TaskCompleted { id: i, .. } if *i == id),
        )
        .await
    }

    /// Waits for task `id` to be dead-lettered.
    pub async fn dead_letter(
        &mut self,
        id: TaskId,
        timeout: Duration,
    ) -> Result<PoolEvent, WaitError> {
        self.wait_for(
            timeout,
            |e| matches!(e, PoolEvent::TaskDeadLettered { id: i, .. } if *i == id),
        )
        .await
    }

    fn pull(&mut self) {
        while !self.closed {
            match self.events.try_recv() {
                Ok(Some(event)) => self.pending.push_back(event),
                Ok(None) => return,
                Err(EventStreamError::Lagged(n)) => self.lost += n,
                Err(EventStreamError::Closed) => self.closed = true,
            }
        }
    }
}

/// A deadline for "no timeout": about thirty years, within tokio's range.
const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
