//! Heal-storm protection for restarts that strategies order.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// At most `max` strategy-ordered restarts per child within `period`, at
/// least `min_gap` apart. A restart the limit forbids is deferred: the child
/// is isolated meanwhile, and when the hourly budget is spent its health is
/// critical and a critical alert is raised. Panic restarts do not count here.
///
/// This is a per-child bound *in addition* to the supervisor's
/// [`Intensity`](crate::Intensity): a restart the heal limit allows still
/// counts against the intensity (unless it is a planned recycle, see
/// [`HealthCause::is_planned`](crate::HealthCause::is_planned)), and one that
/// exceeds it makes the supervisor give up and escalate, as a crash would.
///
/// Default: 3 per hour, 5 minutes apart (a heal-storm rule from production
/// self-healing services: a worker restarted more often needs a person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct HealLimit {
    /// Restarts allowed per child within `period`. 0 means strategies never
    /// restart a child: a restart verdict isolates it and is refused (the
    /// child is critical) for as long as it stands.
    pub max: u32,
    /// Sliding window for `max`.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub period: Duration,
    /// Minimum time between two ordered restarts of one child.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub min_gap: Duration,
}

impl Default for HealLimit {
    fn default() -> Self {
        Self {
            max: 3,
            period: Duration::from_secs(3600),
            min_gap: Duration::from_secs(300),
        }
    }
}

/// Why a heal was refused, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HealRefusal {
    /// Too soon after the previous heal.
    Gap(Instant),
    /// The budget for the period is spent.
    Budget(Instant),
}

/// One child's record of ordered restarts.
#[derive(Debug, Default, Clone)]
pub(crate) struct HealWindow {
    times: VecDeque<Instant>,
}

impl HealWindow {
    /// Records a heal at `now` if the limit allows it.
    pub(crate) fn try_heal(&mut self, now: Instant, limit: HealLimit) -> Result<(), HealRefusal> {
        while self
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.period)
        {
            self.times.pop_front();
        }
        if self.times.len() as u64 >= u64::from(limit.max) {
            let oldest = self.times.front().copied().unwrap_or(now);
            return Err(HealRefusal::Budget(crate::clock::after(
                oldest,
                limit.period,
            )));
        }
        if let Some(last) = self.times.back() {
            if now.duration_since(*last) < limit.min_gap {
                return Err(HealRefusal::Gap(crate::clock::after(*last, limit.min_gap)));
            }
        }
        self.times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_then_budget_then_window_frees() {
        let t0 = Instant::now();
        let limit = HealLimit::default();
        let min = Duration::from_secs(60);
        let mut w = HealWindow::default();
        assert_eq!(w.try_heal(t0, limit), Ok(()));
        assert_eq!(
            w.try_heal(t0 + min, limit),
            Err(HealRefusal::Gap(t0 + 5 * min))
        );
        assert_eq!(w.try_heal(t0 + 5 * min, limit), Ok(()));
        assert_eq!(w.try_heal(t0 + 10 * min, limit), Ok(()));
        // Three in the hour: the fourth waits for the first to leave the window.
        assert_eq!(
            w.try_heal(t0 + 20 * min, limit),
            Err(HealRefusal::Budget(t0 + 60 * min))
        );
        assert_eq!(w.try_heal(t0 + 60 * min, limit), Ok(()));
    }
}
