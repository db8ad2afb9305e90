//! Lifecycle events: logged through `tracing` and published to subscribers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::{Alert, ExitReason, HealthCause, HealthStatus, Placement, RestartCause, VerdictKind};

/// One lifecycle transition somewhere in a supervision tree.
///
/// Serialises as a flat JSON object, e.g.
/// `{"at_ms":120,"supervisor":"root/db","event":"child_exited","child":"conn","incarnation":1,"reason":{"kind":"panic","detail":"boom"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds since the runtime was built (virtual time in paused tests).
    pub at_ms: u64,
    /// Path of the supervisor that emitted it, e.g. `root/db`.
    pub supervisor: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, with the transition's structured fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// An incarnation of a child is up.
    ChildStarted {
        /// Child id.
        child: String,
        /// Incarnation number (1 for the first start).
        incarnation: u64,
        /// Where it runs.
        placement: Placement,
    },
    /// An incarnation of a child has exited (or was killed after its shutdown timeout).
    ChildExited {
        /// Child id.
        child: String,
        /// Incarnation that exited.
        incarnation: u64,
        /// Why.
        reason: ExitReason,
    },
    /// A failure will be answered by a restart after a delay.
    RestartScheduled {
        /// The child whose failure caused it.
        child: String,
        /// Position in the child's backoff streak (0 for the first restart).
        attempt: u32,
        /// Delay before the restart, in milliseconds.
        delay_ms: u64,
        /// Every child the strategy restarts, in start order.
        members: Vec<String>,
    },
    /// A child is up again after a restart.
    ChildRestarted {
        /// Child id.
        child: String,
        /// New incarnation number.
        incarnation: u64,
        /// Restarts of this child so far.
        restarts: u32,
        /// Why its previous incarnation ended: the cause of its own exit
        /// (`shutdown` for a sibling stopped by a group restart).
        cause: RestartCause,
    },
    /// Every member of a one-for-all or rest-for-one restart is up again
    /// (or declined to start, [`ChildIgnored`](EventKind::ChildIgnored)):
    /// one event per group restart, after the members' `child_restarted`.
    GroupRestarted {
        /// The child whose failure caused it (the latest, when failures
        /// during the restart merged into it).
        child: String,
        /// Every member restarted, in start order (a temporary member,
        /// dropped by the restart, is not among them).
        members: Vec<String>,
    },
    /// A child's factory declined to start it (OTP's `ignore`,
    /// [`StartResult::Ignore`](crate::StartResult::Ignore)): it is not
    /// running, its spec is kept (a temporary child's is dropped).
    ChildIgnored {
        /// Child id.
        child: String,
        /// The incarnation that was not started.
        incarnation: u64,
    },
    /// A significant child exited for good and the supervisor's
    /// [`AutoShutdown`](crate::AutoShutdown) rule says it is time to stop:
    /// the supervisor stops its children and exits with `shutdown`.
    AutoShutdownTriggered {
        /// The significant child whose exit triggered it.
        child: String,
    },
    /// The restart intensity was exceeded: the supervisor stops its children and exits.
    GaveUp {
        /// The child whose failure crossed the limit.
        child: String,
        /// Restarts counted in the period.
        restarts: u32,
    },
    /// A supervisor that gave up has stopped its children and hands the failure to its parent.
    Escalated {
        /// The reason its parent receives.
        reason: ExitReason,
    },
    /// A root supervisor gave up: its whole tree is down.
    Fatal {
        /// Why the root stopped.
        reason: ExitReason,
    },
    /// A supervisor has stopped (all its children are down).
    SupervisorStopped {
        /// Its exit reason.
        reason: ExitReason,
    },
    /// A health strategy changed its verdict about a child.
    VerdictChanged {
        /// The strategy.
        strategy: String,
        /// The child.
        child: String,
        /// The new verdict.
        verdict: VerdictKind,
        /// Its typed cause, for a `restart` or `stop` verdict.
        cause: Option<HealthCause>,
        /// Its reason, if any.
        reason: Option<String>,
    },
    /// A child's combined health changed.
    HealthChanged {
        /// The child.
        child: String,
        /// Its health.
        status: HealthStatus,
        /// Whether work must not be routed to it.
        isolated: bool,
        /// The reason behind the status, if any.
        reason: Option<String>,
    },
    /// An alert was delivered.
    Alert(Alert),
    /// A worker thread stopped answering probes and is retired: no new
    /// children are placed on it, and a replacement is started
    /// ([`ThreadStarted`](EventKind::ThreadStarted)).
    ThreadStuck {
        /// The thread.
        placement: Placement,
    },
    /// A stuck worker thread answers again. It is back in service, unless
    /// it is the surplus folded back
    /// ([`ThreadDraining`](EventKind::ThreadDraining)): the runtime keeps its
    /// configured number of threads in service.
    ThreadRecovered {
        /// The thread.
        placement: Placement,
    },
    /// A worker thread was started to replace a retired one.
    ThreadStarted {
        /// The new thread.
        placement: Placement,
    },
    /// A retired thread recovered, so one thread too many is in service: this
    /// one (the least loaded) takes no new child and is stopped once it holds
    /// none ([`ThreadStopped`](EventKind::ThreadStopped), at once if empty).
    ThreadDraining {
        /// The thread.
        placement: Placement,
    },
    /// A drained surplus thread was stopped.
    ThreadStopped {
        /// The thread.
        placement: Placement,
    },
}

/// Publishes events to subscribers and to `tracing`.
#[derive(Debug, Clone)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<Event>,
    epoch: Instant,
}

impl EventBus {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self {
            tx,
            epoch: Instant::now(),
        }
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        EventStream {
            rx: self.tx.subscribe(),
        }
    }

    pub(crate) fn emit(&self, supervisor: &Arc<str>, kind: EventKind) {
        log(supervisor, &kind);
        if self.tx.receiver_count() == 0 {
            // Nobody listens: a send would fail anyway; skip building it.
            return;
        }
        let at_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        // No subscriber is not an error.
        let _ = self.tx.send(Event {
            at_ms,
            supervisor: supervisor.to_string(),
            kind,
        });
    }
}

fn log(supervisor: &str, kind: &EventKind) {
    match kind {
        EventKind::ChildStarted {
            child,
            incarnation,
            placement,
        } => {
            tracing::debug!(supervisor, child, incarnation, ?placement, "child started");
        }
        EventKind::ChildExited {
            child,
            incarnation,
            reason,
        } if reason.is_abnormal() => {
            tracing::warn!(supervisor, child, incarnation, %reason, "child exited");
        }
        EventKind::ChildExited {
            child,
            incarnation,
            reason,
        } => {
            tracing::debug!(supervisor, child, incarnation, %reason, "child exited");
        }
        EventKind::RestartScheduled {
            child,
            attempt,
            delay_ms,
            members,
        } => {
            tracing::info!(
                supervisor,
                child,
                attempt,
                delay_ms,
                ?members,
                "restart scheduled"
            );
        }
        EventKind::ChildRestarted {
            child,
            incarnation,
            restarts,
            cause,
        } => {
            let cause = cause.key();
            tracing::info!(
                supervisor,
                child,
                incarnation,
                restarts,
                cause,
                "child restarted"
            );
        }
        EventKind::GroupRestarted { child, members } => {
            tracing::info!(supervisor, child, ?members, "group restart finished");
        }
        EventKind::ChildIgnored { child, incarnation } => {
            tracing::info!(supervisor, child, incarnation, "child start ignored");
        }
        EventKind::AutoShutdownTriggered { child } => {
            tracing::info!(
                supervisor,
                child,
                "significant child exited; shutting down automatically"
            );
        }
        EventKind::GaveUp { child, restarts } => {
            tracing::error!(
                supervisor,
                child,
                restarts,
                "restart intensity exceeded; giving up"
            );
        }
        EventKind::Escalated { reason } => {
            tracing::error!(supervisor, %reason, "escalated to parent")
        }
        EventKind::Fatal { reason } => {
            tracing::error!(supervisor, %reason, "root supervisor gave up")
        }
        EventKind::SupervisorStopped { reason } => {
            tracing::info!(supervisor, %reason, "supervisor stopped")
        }
        EventKind::VerdictChanged {
            strategy,
            child,
            verdict,
            cause,
            reason,
        } => tracing::info!(
            supervisor,
            strategy,
            child,
            ?verdict,
            cause = cause.as_ref().map(HealthCause::key),
            reason,
            "verdict changed"
        ),
        EventKind::HealthChanged {
            child,
            status,
            isolated,
            reason,
        } => tracing::info!(
            supervisor,
            child,
            ?status,
            isolated,
            reason,
            "health changed"
        ),
        // Delivered through the alert sink, which logs by default.
        EventKind::Alert(_) => {}
        EventKind::ThreadStuck { placement } => {
            tracing::error!(supervisor, ?placement, "worker thread stuck")
        }
        EventKind::ThreadRecovered { placement } => {
            tracing::warn!(supervisor, ?placement, "worker thread recovered")
        }
        EventKind::ThreadStarted { placement } => {
            tracing::info!(supervisor, ?placement, "worker thread started")
        }
        EventKind::ThreadDraining { placement } => {
            tracing::info!(supervisor, ?placement, "surplus worker thread draining")
        }
        EventKind::ThreadStopped { placement } => {
            tracing::info!(supervisor, ?placement, "surplus worker thread stopped")
        }
    }
}

/// Why an [`EventStream`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EventStreamError {
    /// The subscriber fell behind; this many events were dropped for it.
    /// The stream stays usable.
    #[error("event subscriber lagged; {0} events were skipped")]
    Lagged(u64),
    /// The runtime and every supervisor are gone.
    #[error("event stream closed")]
    Closed,
}

/// A subscription to every lifecycle event of a [`Runtime`](crate::Runtime).
///
/// Bounded: a subscriber that falls behind by more than the runtime's event
/// capacity is told how many events it missed ([`EventStreamError::Lagged`]).
#[derive(Debug)]
pub struct EventStream {
    rx: broadcast::Receiver<Event>,
}

impl EventStream {
    /// Waits for the next event.
    pub async fn recv(&mut self) -> Result<Event, EventStreamError> {
        self.rx.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => EventStreamError::Lagged(n),
            broadcast::error::RecvError::Closed => EventStreamError::Closed,
        })
    }

    /// Returns the next event if one is already queued.
    pub fn try_recv(&mut self) -> Result<Option<Event>, EventStreamError> {
        match self.rx.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(broadcast::error::TryRecvError::Empty) => Ok(None),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Err(EventStreamError::Lagged(n)),
            Err(broadcast::error::TryRecvError::Closed) => Err(EventStreamError::Closed),
        }
    }

    /// Waits for the first event that satisfies `predicate`, skipping others.
    pub async fn wait_for(
        &mut self,
        mut predicate: impl FnMut(&Event) -> bool,
    ) -> Result<Event, EventStreamError> {
        loop {
            let event = self.recv().await?;
            if predicate(&event) {
                return Ok(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_json() {
        let event = Event {
            at_ms: 120,
            supervisor: "root/db".into(),
            kind: EventKind::ChildExited {
                child: "conn".into(),
                incarnation: 1,
                reason: ExitReason::Panic("boom".into()),
            },
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"at_ms":120,"supervisor":"root/db","event":"child_exited","child":"conn","incarnation":1,"reason":{"kind":"panic","detail":"boom"}}"#
        );
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
    }
}
