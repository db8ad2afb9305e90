//! Restart intensity: at most N restarts within a period P.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The restart budget of a supervisor: at most `max_restarts` restarts within
/// any `period`. One more and the supervisor gives up: it stops its children in
/// reverse start order and escalates to its parent.
///
/// Every restart counts, whatever ordered it: a panic or other abnormal exit,
/// or a health strategy's verdict (a liveness, memory or breaker restart is an
/// exit with an abnormal reason, as in OTP). The per-child
/// [`HealLimit`](crate::HealLimit) bounds strategy restarts further.
///
/// Default: 5 restarts in 30 s. With the default backoff a crash loop makes its
/// 6th restart request about 3 s after the first crash, so a flapping child is
/// escalated within seconds while independent one-off failures are absorbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Intensity {
    /// Restarts allowed within `period`. Zero means: never restart, escalate at once.
    pub max_restarts: u32,
    /// Length of the sliding window. Must not be zero.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub period: Duration,
}

impl Default for Intensity {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            period: Duration::from_secs(30),
        }
    }
}

/// Sliding record of restart times, checked against an [`Intensity`].
#[derive(Debug, Default)]
pub(crate) struct RestartWindow {
    times: VecDeque<Instant>,
}

impl RestartWindow {
    /// Records a restart at `now`; returns `false` when it exceeds the budget
    /// (the restart must not happen).
    pub(crate) fn admit(&mut self, now: Instant, limit: Intensity) -> bool {
        self.prune(now, limit.period);
        self.times.push_back(now);
        self.times.len() as u64 <= u64::from(limit.max_restarts)
    }

    /// Forgets restarts older than `period`.
    pub(crate) fn prune(&mut self, now: Instant, period: Duration) {
        while let Some(&t) = self.times.front() {
            if now.duration_since(t) >= period {
                self.times.pop_front();
            } else {
                break;
            }
        }
    }

    /// Restarts currently inside the window.
    pub(crate) fn count(&self) -> u32 {
        u32::try_from(self.times.len()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_max_then_refuses() {
        let start = Instant::now();
        let limit = Intensity {
            max_restarts: 3,
            period: Duration::from_secs(10),
        };
        let mut w = RestartWindow::default();
        for i in 0..3 {
            assert!(w.admit(start + Duration::from_secs(i), limit));
        }
        assert!(!w.admit(start + Duration::from_secs(3), limit));
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let start = Instant::now();
        let limit = Intensity {
            max_restarts: 2,
            period: Duration::from_secs(10),
        };
        let mut w = RestartWindow::default();
        assert!(w.admit(start, limit));
        assert!(w.admit(start + Duration::from_secs(5), limit));
        // The first restart is exactly one period old: it no longer counts.
        assert!(w.admit(start + Duration::from_secs(10), limit));
        assert_eq!(w.count(), 2);
    }

    #[test]
    fn zero_budget_refuses_everything() {
        let limit = Intensity {
            max_restarts: 0,
            period: Duration::from_secs(1),
        };
        assert!(!RestartWindow::default().admit(Instant::now(), limit));
    }
}
