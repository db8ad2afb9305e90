//! A supervisor's record of one child.

use std::sync::Arc;

use actix::SpawnHandle;
use tokio::time::Instant;

use crate::health::HealWindow;
use crate::info::{ChildInfo, ChildStatus};
use crate::link::{ControlSender, Pulse};
use crate::parent::ErasedAddr;
use crate::{Backoff, ChildSpec, ExitReason, HealthStatus, Placement};

/// What the supervisor's strategies concluded about the current incarnation.
#[derive(Default)]
pub(super) struct ChildHealth {
    pub(super) status: HealthStatus,
    pub(super) reason: Option<String>,
    /// No work should be routed to it until then.
    pub(super) isolated_until: Option<Instant>,
    /// A restart the heal limit deferred to this time (a timer then acts on
    /// the verdicts standing).
    pub(super) heal_at: Option<Instant>,
    /// Ordered restarts, across incarnations.
    pub(super) window: HealWindow,
    /// Its alert keys have a streak going (cleared once it is healthy again).
    pub(super) alerting: bool,
}

/// Lifecycle of the current incarnation.
pub(super) enum State {
    /// Not running. Started later by a plan, if one owns the child.
    Idle,
    /// Asked to start; waiting for the acknowledgement from its thread.
    Starting {
        control: ControlSender,
        placement: Placement,
    },
    /// Up.
    Running {
        control: ControlSender,
        placement: Placement,
        addr: Box<dyn ErasedAddr>,
        since: Instant,
    },
    /// Asked to stop; `deadline` kills it when the shutdown timeout passes.
    Stopping {
        control: ControlSender,
        placement: Placement,
        deadline: Option<SpawnHandle>,
    },
    /// Not running and not to be restarted: a transient child that exited
    /// normally, a terminated child, or one whose factory declined to start.
    Stopped,
}

pub(super) struct Child {
    pub(super) spec: ChildSpec,
    pub(super) incarnation: u64,
    pub(super) state: State,
    pub(super) restarts: u32,
    pub(super) last_exit: Option<ExitReason>,
    pub(super) backoff: Backoff,
    /// The plan that will act on this child next (stop it, start it, or both).
    pub(super) plan: Option<u64>,
    pub(super) health: ChildHealth,
    /// The reason its next exit will be recorded with (a strategy condemned it).
    pub(super) exit_override: Option<ExitReason>,
    /// The latest incarnation's shared record, and how much news of it was
    /// seen (none before the first start).
    pub(super) pulse: Option<(Arc<Pulse>, u64)>,
    /// Its factory declined its last start (OTP's `ignore`).
    pub(super) ignored: bool,
}

impl Child {
    pub(super) fn new(spec: ChildSpec) -> Self {
        Self {
            spec,
            incarnation: 0,
            state: State::Idle,
            restarts: 0,
            last_exit: None,
            backoff: Backoff::new(),
            plan: None,
            health: ChildHealth::default(),
            exit_override: None,
            pulse: None,
            ignored: false,
        }
    }

    pub(super) fn id(&self) -> &Arc<str> {
        &self.spec.id
    }

    pub(super) fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Whether an incarnation of it is up, starting or stopping.
    pub(super) fn is_alive(&self) -> bool {
        matches!(
            self.state,
            State::Starting { .. } | State::Running { .. } | State::Stopping { .. }
        )
    }

    pub(super) fn placement(&self) -> Option<Placement> {
        match &self.state {
            State::Starting { placement, .. }
            | State::Running { placement, .. }
            | State::Stopping { placement, .. } => Some(*placement),
            State::Idle | State::Stopped => None,
        }
    }

    pub(super) fn status(&self) -> ChildStatus {
        match self.state {
            State::Starting { .. } => ChildStatus::Starting,
            State::Running { .. } => ChildStatus::Running,
            State::Stopping { .. } => ChildStatus::Stopping,
            State::Idle if self.plan.is_some() => ChildStatus::Restarting,
            State::Idle | State::Stopped => ChildStatus::Stopped,
        }
    }

    pub(super) fn info(&self, now: Instant) -> ChildInfo {
        let uptime = match &self.state {
            State::Running { since, .. } => Some(now.duration_since(*since)),
            _ => None,
        };
        ChildInfo {
            id: self.id().to_string(),
            kind: self.spec.kind(),
            restart: self.spec.restart,
            shutdown: self.spec.shutdown,
            significant: self.spec.significant,
            ignored: self.ignored,
            status: self.status(),
            incarnation: self.incarnation,
            restarts: self.restarts,
            last_exit: self.last_exit.clone(),
            last_cause: self.last_exit.as_ref().map(ExitReason::cause),
            uptime,
            placement: self.placement(),
            backoff_attempt: self.backoff.attempt(),
            health: self.health.status,
            health_reason: self.health.reason.clone(),
            isolated: self.health.isolated_until.is_some_and(|t| t > now),
        }
    }
}
