//! What a strategy concludes about a child.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::HealthCause;

/// A strategy's conclusion about one child. Ordered by severity: when several
/// strategies disagree, the supervisor acts on the most severe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to report.
    Healthy,
    /// Working, but worth a warning.
    Degraded {
        /// Why.
        reason: String,
    },
    /// Up, but no work should be routed to it until `until`.
    Isolate {
        /// When the isolation may end.
        until: Instant,
        /// Why.
        reason: String,
    },
    /// Stop it and start a new incarnation (subject to the heal limit and
    /// the supervisor's intensity).
    Restart {
        /// Why, typed: the exit's [`cause`](crate::ExitReason::cause) and
        /// the key metrics count it under.
        cause: HealthCause,
        /// Why, for people (free to reword).
        reason: String,
    },
    /// Stop it and leave it stopped.
    Stop {
        /// Why, typed.
        cause: HealthCause,
        /// Why, for people.
        reason: String,
    },
    /// Hand the problem to the parent: the supervisor gives up.
    Escalate {
        /// Why.
        reason: String,
    },
}

/// The kind of a [`Verdict`], without its payload (for events and snapshots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// See [`Verdict::Healthy`].
    Healthy,
    /// See [`Verdict::Degraded`].
    Degraded,
    /// See [`Verdict::Isolate`].
    Isolate,
    /// See [`Verdict::Restart`].
    Restart,
    /// See [`Verdict::Stop`].
    Stop,
    /// See [`Verdict::Escalate`].
    Escalate,
}

impl Verdict {
    /// The verdict's kind; kinds are ordered by severity.
    pub fn kind(&self) -> VerdictKind {
        match self {
            Verdict::Healthy => VerdictKind::Healthy,
            Verdict::Degraded { .. } => VerdictKind::Degraded,
            Verdict::Isolate { .. } => VerdictKind::Isolate,
            Verdict::Restart { .. } => VerdictKind::Restart,
            Verdict::Stop { .. } => VerdictKind::Stop,
            Verdict::Escalate { .. } => VerdictKind::Escalate,
        }
    }

    /// The reason, if the verdict carries one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Healthy => None,
            Verdict::Degraded { reason }
            | Verdict::Isolate { reason, .. }
            | Verdict::Restart { reason, .. }
            | Verdict::Stop { reason, .. }
            | Verdict::Escalate { reason } => Some(reason),
        }
    }

    /// The typed cause of a `Restart` or `Stop`.
    pub fn cause(&self) -> Option<HealthCause> {
        match self {
            Verdict::Restart { cause, .. } | Verdict::Stop { cause, .. } => Some(*cause),
            _ => None,
        }
    }
}

/// A child's health as its supervisor sees it; a tree's summary is the worst of its children's.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// No strategy reports a problem.
    #[default]
    Healthy,
    /// A strategy reports a problem, or the child is isolated from work.
    Degraded,
    /// A restart is needed but the heal limit forbids it: the child is left
    /// isolated and a critical alert is raised.
    Critical,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_ordered_by_severity() {
        let now = Instant::now();
        let verdicts = [
            Verdict::Healthy,
            Verdict::Degraded { reason: "a".into() },
            Verdict::Isolate {
                until: now,
                reason: "b".into(),
            },
            Verdict::Restart {
                cause: HealthCause::Breaker,
                reason: "c".into(),
            },
            Verdict::Stop {
                cause: HealthCause::Other,
                reason: "d".into(),
            },
            Verdict::Escalate { reason: "e".into() },
        ];
        let kinds: Vec<_> = verdicts.iter().map(Verdict::kind).collect();
        let mut sorted = kinds.clone();
        sorted.sort();
        assert_eq!(kinds, sorted);
        assert_eq!(verdicts[3].reason(), Some("c"));
        assert_eq!(verdicts[3].cause(), Some(HealthCause::Breaker));
    }
}
