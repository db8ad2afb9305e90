//! Introspection snapshots of a supervisor and its children.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{ChildKind, ExitReason, HealthStatus, Placement, Restart, RestartCause, Strategy};

/// Where a child is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildStatus {
    /// Being built (or, for a child supervisor, starting its own children).
    Starting,
    /// Up and supervised.
    Running,
    /// Asked to stop; its shutdown timeout is running.
    Stopping,
    /// Down, with a restart scheduled (backoff, or waiting for siblings to stop).
    Restarting,
    /// Down for good: a transient child that exited normally.
    Stopped,
}

/// A snapshot of one child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildInfo {
    /// Child id.
    pub id: String,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Restart type.
    pub restart: Restart,
    /// Lifecycle state.
    pub status: ChildStatus,
    /// Current (or last) incarnation number; 0 before the first start.
    pub incarnation: u64,
    /// Restarts so far.
    pub restarts: u32,
    /// Why the previous incarnation exited, if one did.
    pub last_exit: Option<ExitReason>,
    /// The typed cause of `last_exit` ([`ExitReason::cause`]), for metrics.
    pub last_cause: Option<RestartCause>,
    /// How long the current incarnation has been running.
    pub uptime: Option<Duration>,
    /// Where the current incarnation runs.
    pub placement: Option<Placement>,
    /// Position in the child's backoff streak.
    pub backoff_attempt: u32,
    /// Health as the supervisor's strategies see it.
    pub health: HealthStatus,
    /// Why it is not healthy, if it is not.
    pub health_reason: Option<String>,
    /// Whether work must not be routed to it right now.
    pub isolated: bool,
}

/// A snapshot of one supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisorInfo {
    /// Path, e.g. `root/db`.
    pub path: String,
    /// Restart strategy.
    pub strategy: Strategy,
    /// Housekeeping ticks since it started.
    pub ticks: u64,
    /// Restarts inside the current intensity period.
    pub restarts_in_period: u32,
    /// Worst health among its children.
    pub health: HealthStatus,
    /// Children in start order.
    pub children: Vec<ChildInfo>,
}
