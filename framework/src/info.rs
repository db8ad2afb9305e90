//! Introspection snapshots of a supervisor and its children.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    ChildKind, ExitReason, HealthStatus, Placement, Restart, RestartCause, ShutdownPolicy, Strategy,
};

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
    /// Not running, and not about to be: a transient child that exited
    /// normally, a child stopped with
    /// [`terminate_child`](crate::SupervisorRef::terminate_child), or one
    /// whose factory declined to start ([`ChildInfo::ignored`]). Its spec is
    /// kept for [`restart_child`](crate::SupervisorRef::restart_child).
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
    /// How long it gets to stop before it is killed.
    #[serde(default = "default_shutdown")]
    pub shutdown: ShutdownPolicy,
    /// Whether its exit for good may shut its supervisor down
    /// ([`ChildSpec::significant`](crate::ChildSpec::significant)).
    #[serde(default)]
    pub significant: bool,
    /// Its factory declined its last start (OTP's `ignore`): it is
    /// [`Stopped`](ChildStatus::Stopped), its spec kept.
    #[serde(default)]
    pub ignored: bool,
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

/// A worker's default, for snapshots serialised before the field existed.
fn default_shutdown() -> ShutdownPolicy {
    ShutdownPolicy::Timeout(crate::DEFAULT_WORKER_SHUTDOWN)
}

/// How many children a supervisor has, by kind (OTP's `count_children`).
///
/// From [`SupervisorRef::count_children`](crate::SupervisorRef::count_children),
/// counted without building a [`ChildInfo`] per child.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildCount {
    /// Every child whose spec the supervisor keeps, running or not.
    pub specs: usize,
    /// Children with a running incarnation.
    pub active: usize,
    /// Children that are supervisors, running or not.
    pub supervisors: usize,
    /// Children that are workers, running or not.
    pub workers: usize,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_serialised_before_the_otp_fields_still_reads() {
        let mut json = serde_json::to_value(ChildInfo {
            id: "w".into(),
            kind: ChildKind::Worker,
            restart: Restart::Transient,
            shutdown: ShutdownPolicy::Infinity,
            significant: true,
            ignored: true,
            status: ChildStatus::Stopped,
            incarnation: 1,
            restarts: 0,
            last_exit: None,
            last_cause: None,
            uptime: None,
            placement: None,
            backoff_attempt: 0,
            health: HealthStatus::Healthy,
            health_reason: None,
            isolated: false,
        })
        .unwrap();
        for field in ["shutdown", "significant", "ignored"] {
            json.as_object_mut().unwrap().remove(field);
        }
        let old: ChildInfo = serde_json::from_value(json).unwrap();
        assert_eq!(
            (old.shutdown, old.significant, old.ignored),
            (
                ShutdownPolicy::Timeout(crate::DEFAULT_WORKER_SHUTDOWN),
                false,
                false
            )
        );
    }
}
