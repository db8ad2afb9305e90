//! The label vocabulary: every label set a metric carries, and the fixed
//! words its values are drawn from.
//!
//! Cardinality stays bounded because every label value is one of: a
//! supervisor path, a child or worker id, a pool name, a dependency name, a
//! strategy name, a priority (0–255), or one of the fixed words below. No
//! label ever holds a task id or free text.

use candado::{AlertLevel, BreakerState, ChildStatus, HealthStatus, VerdictKind};
use prometheus_client::encoding::EncodeLabelSet;

/// A supervisor, by path.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SupervisorLabels {
    pub(crate) supervisor: String,
}

/// A supervisor and a reason kind ([`RestartCause::key`](candado::RestartCause::key)).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    pub(crate) supervisor: String,
    pub(crate) reason: String,
}

/// A supervisor, one of its strategies, and a verdict kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct VerdictLabels {
    pub(crate) supervisor: String,
    pub(crate) strategy: String,
    pub(crate) verdict: String,
}

/// A child of a supervisor.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ChildLabels {
    pub(crate) supervisor: String,
    pub(crate) child: String,
}

/// An alert level.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LevelLabels {
    pub(crate) level: String,
}

/// Every child status, in lifecycle order.
pub(crate) const CHILD_STATES: [ChildStatus; 5] = [
    ChildStatus::Starting,
    ChildStatus::Running,
    ChildStatus::Stopping,
    ChildStatus::Restarting,
    ChildStatus::Stopped,
];

/// Every health status, least severe first.
pub(crate) const HEALTHS: [HealthStatus; 3] = [
    HealthStatus::Healthy,
    HealthStatus::Degraded,
    HealthStatus::Critical,
];

/// Every breaker state.
pub(crate) const BREAKER_STATES: [BreakerState; 3] = [
    BreakerState::Closed,
    BreakerState::HalfOpen,
    BreakerState::Open,
];

/// The label value of a child status (its serde name).
pub(crate) fn child_state(status: ChildStatus) -> &'static str {
    match status {
        ChildStatus::Starting => "starting",
        ChildStatus::Running => "running",
        ChildStatus::Stopping => "stopping",
        ChildStatus::Restarting => "restarting",
        ChildStatus::Stopped => "stopped",
    }
}

/// The label value of a health status (its serde name).
pub(crate) fn health(status: HealthStatus) -> &'static str {
    match status {
        HealthStatus::Healthy => "healthy",
        HealthStatus::Degraded => "degraded",
        HealthStatus::Critical => "critical",
    }
}

/// The label value of a verdict kind (its serde name).
pub(crate) fn verdict(kind: VerdictKind) -> &'static str {
    match kind {
        VerdictKind::Healthy => "healthy",
        VerdictKind::Degraded => "degraded",
        VerdictKind::Isolate => "isolate",
        VerdictKind::Restart => "restart",
        VerdictKind::Stop => "stop",
        VerdictKind::Escalate => "escalate",
    }
}

/// The label value of a breaker state.
pub(crate) fn breaker_state(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::HalfOpen => "half_open",
        BreakerState::Open => "open",
    }
}

/// The label value of an alert level (its serde name).
pub(crate) fn alert_level(level: AlertLevel) -> &'static str {
    match level {
        AlertLevel::Info => "info",
        AlertLevel::Warning => "warning",
        AlertLevel::Critical => "critical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The label words are the serde names the JSON snapshots and events
    /// use, so a dashboard can join the two.
    #[test]
    fn label_words_are_the_serde_names() {
        let serde_name = |v: serde_json::Value| v.as_str().unwrap().to_owned();
        for s in CHILD_STATES {
            assert_eq!(child_state(s), serde_name(serde_json::to_value(s).unwrap()));
        }
        for h in HEALTHS {
            assert_eq!(health(h), serde_name(serde_json::to_value(h).unwrap()));
        }
        for level in [AlertLevel::Info, AlertLevel::Warning, AlertLevel::Critical] {
            assert_eq!(
                alert_level(level),
                serde_name(serde_json::to_value(level).unwrap())
            );
        }
        for kind in [VerdictKind::Isolate, VerdictKind::Escalate] {
            assert_eq!(
                verdict(kind),
                serde_name(serde_json::to_value(kind).unwrap())
            );
        }
        for state in BREAKER_STATES {
            assert_eq!(
                breaker_state(state),
                serde_name(serde_json::to_value(state).unwrap())
            );
        }
    }
}
