//! The retry policy. (Retries waiting for their time are the task store's:
//! `store/delayed.rs`.)

use std::time::Duration;

use candado::BackoffConfig;
use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Retries with exponential backoff and jitter. Defaults, as production
/// worker pools use them:
/// 1 s base, ×2 per retry, 30 s cap, 3 retries (4 attempts in all), 10% jitter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first attempt; 0 dead-letters on the first failure.
    pub max_retries: u32,
    /// Delay before the first retry.
    #[serde(with = "humantime_serde")]
    pub base: Duration,
    /// Longest delay.
    #[serde(with = "humantime_serde")]
    pub cap: Duration,
    /// Fraction (0.0..=1.0) of each delay removed at random.
    pub jitter: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            jitter: 0.1,
        }
    }
}

impl RetryConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.cap < self.base {
            return Err(ConfigError::invalid(
                "retry.cap",
                "must be at least retry.base",
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::invalid(
                "retry.jitter",
                "must be within 0.0..=1.0",
            ));
        }
        Ok(())
    }

    /// As a Candado backoff (same doubling and monotone jitter).
    pub(crate) fn backoff(&self) -> BackoffConfig {
        BackoffConfig {
            base: self.base,
            cap: self.cap,
            jitter: self.jitter,
            stability_window: Duration::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candado::Backoff;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn seed_schedule_is_1_2_4_seconds() {
        let cfg = RetryConfig {
            jitter: 0.0,
            ..Default::default()
        };
        let mut rng = SmallRng::seed_from_u64(0);
        let mut b = Backoff::new();
        let delays: Vec<u64> = (0..cfg.max_retries)
            .map(|_| b.next_delay(&cfg.backoff(), &mut rng).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4]);
    }
}
