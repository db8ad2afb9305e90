//! What the pool does with work beyond its means: the queue's overflow
//! policy (`overflow`) and the rate limit on task starts (`[rate_limit]`).

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// What `submit` does when the queue holds `queue_bound` tasks already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// The new task is refused ([`SubmitError::QueueFull`](crate::SubmitError::QueueFull)),
    /// and handed back.
    #[default]
    Reject,
    /// The new task is accepted, and the least important task waiting in
    /// the ready queue makes room: the highest priority number, the oldest
    /// among equals. The discarded task is dead-lettered with reason
    /// `discarded` (its handle resolves `TaskFailure::DeadLettered`, it is
    /// in the dead-letter store, replayable, and `PoolBuilder::on_discard`
    /// hears of it): nothing vanishes. A newcomer less important than
    /// every ready task (or facing only retries, which are never
    /// discarded) is refused as with `reject`.
    DiscardOldest,
}

/// A token bucket on task starts: at most `burst` attempts start at once,
/// then `per_second` on average. Every attempt counts, retries included;
/// tasks wait in the queue for their token (so the queue bound still
/// pushes back). The limit is the router's, on the pool's clock (tokio's:
/// virtual in tests).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Attempts started per second, on average (default 100; above 0, at
    /// most 1,000,000,000, fractions allowed: 0.5 is one every 2 s).
    pub per_second: f64,
    /// Attempts that may start at once after a quiet spell (default 1;
    /// at least 1, at most 1,000,000,000).
    pub burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_second: 100.0,
            burst: 1,
        }
    }
}

/// The fastest rate and the largest burst a pool accepts.
const MOST: f64 = 1e9;

impl RateLimitSettings {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.per_second.is_finite() && self.per_second > 0.0 && self.per_second <= MOST) {
            return Err(ConfigError::invalid(
                "rate_limit.per_second",
                "must be a number above 0 and at most 1000000000",
            ));
        }
        if self.burst == 0 || f64::from(self.burst) > MOST {
            return Err(ConfigError::invalid(
                "rate_limit.burst",
                "must be within 1..=1000000000",
            ));
        }
        Ok(())
    }
}
