//! Typed causes of exits and restarts, with stable metric keys.
//!
//! A reason's text is for people and may be reworded at any time; a cause is
//! for programs. Strategies put a [`HealthCause`] in their `Restart` and
//! `Stop` verdicts, the supervisor carries it in
//! [`ExitReason::Unhealthy`](crate::ExitReason::Unhealthy), and
//! [`ExitReason::cause`](crate::ExitReason::cause) turns any exit into a
//! [`RestartCause`]. Nothing parses reason text.

use serde::{Deserialize, Serialize};

/// Why an incarnation ended, and so why the next one (if any) started.
///
/// Found on [`ExitReason::cause`](crate::ExitReason::cause), on
/// [`EventKind::ChildRestarted`](crate::EventKind::ChildRestarted) and on
/// [`ChildInfo::last_cause`](crate::ChildInfo::last_cause). For metrics, use
/// [`key`](RestartCause::key): a short name that stays the same when reasons
/// are reworded.
///
/// ```
/// use candado::{ExitReason, HealthCause, MemoryCause, RestartCause};
/// let recycled = ExitReason::Unhealthy {
///     strategy: "memory".into(),
///     cause: HealthCause::Memory(MemoryCause::Age),
///     reason: "any wording at all".into(),
/// };
/// assert_eq!(recycled.cause(), RestartCause::Health(HealthCause::Memory(MemoryCause::Age)));
/// assert_eq!(recycled.cause().key(), "age");
/// assert_eq!(ExitReason::Panic("boom".into()).cause().key(), "panic");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartCause {
    /// The child stopped itself ([`ExitReason::Normal`](crate::ExitReason::Normal)).
    Normal,
    /// Its supervisor stopped it, e.g. for a sibling's restart
    /// ([`ExitReason::Shutdown`](crate::ExitReason::Shutdown)).
    Shutdown,
    /// Killed after its shutdown timeout ([`ExitReason::Killed`](crate::ExitReason::Killed)).
    Killed,
    /// It panicked ([`ExitReason::Panic`](crate::ExitReason::Panic)).
    Panic,
    /// It reported a failure ([`ExitReason::Failed`](crate::ExitReason::Failed)).
    Failed,
    /// It could not start ([`ExitReason::StartFailed`](crate::ExitReason::StartFailed)).
    StartFailed,
    /// A health strategy ordered it ([`ExitReason::Unhealthy`](crate::ExitReason::Unhealthy)).
    Health(HealthCause),
    /// A child supervisor gave up ([`ExitReason::Escalated`](crate::ExitReason::Escalated)).
    Escalated,
}

impl RestartCause {
    /// A stable metric key: `normal`, `shutdown`, `killed`, `panic`,
    /// `failed`, `start_failed`, `escalated`, or the health cause's
    /// [`key`](HealthCause::key) (`liveness`, `memory`, `age`, `tasks`,
    /// `breaker`, `unhealthy`).
    pub fn key(&self) -> &'static str {
        match self {
            RestartCause::Normal => "normal",
            RestartCause::Shutdown => "shutdown",
            RestartCause::Killed => "killed",
            RestartCause::Panic => "panic",
            RestartCause::Failed => "failed",
            RestartCause::StartFailed => "start_failed",
            RestartCause::Health(cause) => cause.key(),
            RestartCause::Escalated => "escalated",
        }
    }
}

/// What a health strategy found, carried by its
/// [`Verdict::Restart`](crate::Verdict::Restart) and
/// [`Verdict::Stop`](crate::Verdict::Stop).
///
/// The built-in strategies use [`Liveness`](HealthCause::Liveness),
/// [`Memory`](HealthCause::Memory) and [`Breaker`](HealthCause::Breaker);
/// a strategy of your own may use any of them, or
/// [`Other`](HealthCause::Other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCause {
    /// The child looks dead or stuck.
    Liveness(LivenessCause),
    /// The child, the process or the machine is short of memory, or the
    /// child is recycled.
    Memory(MemoryCause),
    /// Its circuit breaker says it keeps failing.
    Breaker,
    /// Another reason, given in the verdict's text (also what an exit
    /// recorded before causes existed deserialises to).
    #[default]
    Other,
}

impl HealthCause {
    /// A stable metric key: `liveness`; `memory` for
    /// critical/brake/leak, but `age` and `tasks` for recycling; `breaker`;
    /// `unhealthy` for [`Other`](HealthCause::Other).
    pub fn key(&self) -> &'static str {
        match self {
            HealthCause::Liveness(_) => "liveness",
            HealthCause::Memory(cause) => cause.key(),
            HealthCause::Breaker => "breaker",
            HealthCause::Other => "unhealthy",
        }
    }

    /// Whether this is planned maintenance, not a failure: recycling by
    /// age or by tasks done. A fresh incarnation is young and has done no
    /// task, so a recycle cannot loop; it is bounded by the heal limit, and
    /// does not count against the restart intensity (as OTP's explicit
    /// `restart_child` does not), so workers started together and recycled
    /// together do not exhaust the supervisor's budget for failures.
    pub fn is_planned(&self) -> bool {
        matches!(
            self,
            HealthCause::Memory(MemoryCause::Age | MemoryCause::Tasks)
        )
    }
}

/// Why the liveness strategy condemned a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LivenessCause {
    /// No heartbeat for the heartbeat timeout: a zombie.
    Silent,
    /// Too many consecutive pings unanswered.
    Unresponsive,
    /// Work begun without progress for the progress timeout.
    Stuck,
}

/// Why the memory strategy restarted a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryCause {
    /// Over a critical threshold: the child's own reported memory, or the
    /// process's or the system's (the child was the victim).
    Critical,
    /// The emergency brake fired `brake_limit` times in a row (the child was
    /// the victim).
    Brake,
    /// Its reported memory grows faster than the leak rate.
    Leak,
    /// Recycled: older than `max_age`.
    Age,
    /// Recycled: reported `max_tasks` tasks done.
    Tasks,
}

impl MemoryCause {
    /// A stable metric key: `age`, `tasks`, or `memory` for the others.
    pub fn key(&self) -> &'static str {
        match self {
            MemoryCause::Age => "age",
            MemoryCause::Tasks => "tasks",
            MemoryCause::Critical | MemoryCause::Brake | MemoryCause::Leak => "memory",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_serialise_as_snake_case_and_keys_are_stable() {
        let age = RestartCause::Health(HealthCause::Memory(MemoryCause::Age));
        let json = serde_json::to_string(&age).unwrap();
        assert_eq!(json, r#"{"health":{"memory":"age"}}"#);
        assert_eq!(serde_json::from_str::<RestartCause>(&json).unwrap(), age);
        assert_eq!(
            serde_json::to_string(&RestartCause::StartFailed).unwrap(),
            r#""start_failed""#
        );
        let keys = [
            (
                RestartCause::Health(HealthCause::Liveness(LivenessCause::Stuck)),
                "liveness",
            ),
            (
                RestartCause::Health(HealthCause::Memory(MemoryCause::Leak)),
                "memory",
            ),
            (
                RestartCause::Health(HealthCause::Memory(MemoryCause::Tasks)),
                "tasks",
            ),
            (RestartCause::Health(HealthCause::Breaker), "breaker"),
            (RestartCause::Health(HealthCause::Other), "unhealthy"),
            (RestartCause::Killed, "killed"),
            (RestartCause::Escalated, "escalated"),
        ];
        for (cause, key) in keys {
            assert_eq!(cause.key(), key, "{cause:?}");
        }
    }
}
