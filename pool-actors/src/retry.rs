//! The retry policy. (Retries waiting for their time are the task store's:
//! `store/delayed.rs`.)

use std::time::Duration;

use candado::{BackoffConfig, BackoffSteps};
use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Retries with exponential backoff and jitter. Defaults, as production
/// worker pools use them:
/// 1 s base, ×2 per retry, 30 s cap, 3 retries (4 attempts in all), 10% jitter.
///
/// An explicit schedule replaces base, multiplier and cap; in TOML,
/// `delays = ["1m", "5m", "30m"]` retries after 1, 5 and 30 minutes (the last
/// delay repeats if `max_retries` is larger).
///
/// ```
/// use std::time::Duration;
/// use candado::BackoffSteps;
/// use candado_pool::RetryConfig;
///
/// let minutes = |m: u64| Duration::from_secs(60 * m);
/// let audit = RetryConfig {
///     delays: Some(BackoffSteps::new(&[minutes(1), minutes(5), minutes(30)]).unwrap()),
///     ..RetryConfig::default()
/// };
/// assert_eq!(audit.backoff().raw_delay(2), minutes(30));
/// ```
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
    /// Growth of the delay per retry (at least 1.0; 1.0 keeps it constant).
    pub multiplier: f64,
    /// An explicit list of delays (at most [`BackoffSteps::MAX`], never
    /// decreasing) replacing `base`, `multiplier` and `cap`.
    pub delays: Option<BackoffSteps>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            jitter: 0.1,
            multiplier: 2.0,
            delays: None,
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
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(ConfigError::invalid(
                "retry.multiplier",
                "must be a finite number of at least 1.0",
            ));
        }
        Ok(())
    }

    /// As a Candado backoff (same growth and monotone jitter), which the
    /// task stores use to space retries.
    pub fn backoff(&self) -> BackoffConfig {
        let shape = match self.delays {
            Some(steps) => BackoffConfig::with_steps(steps),
            None => BackoffConfig {
                base: self.base,
                cap: self.cap,
                multiplier: self.multiplier,
                ..BackoffConfig::default()
            },
        };
        BackoffConfig {
            jitter: self.jitter,
            stability_window: Duration::MAX,
            ..shape
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

    #[test]
    fn a_multiplier_and_a_schedule_shape_the_delays() {
        let cfg = RetryConfig {
            jitter: 0.0,
            multiplier: 3.0,
            cap: Duration::from_secs(100),
            ..Default::default()
        };
        let secs: Vec<u64> = (0..4)
            .map(|n| cfg.backoff().raw_delay(n).as_secs())
            .collect();
        assert_eq!(secs, [1, 3, 9, 27]);
        let bad = RetryConfig {
            multiplier: 0.5,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_audit_schedule_reads_from_toml_and_back() {
        let cfg: RetryConfig = toml::from_str(r#"delays = ["1m", "5m", "30m"]"#).unwrap();
        let minutes: Vec<u64> = (0..4)
            .map(|n| cfg.backoff().raw_delay(n).as_secs() / 60)
            .collect();
        assert_eq!(minutes, [1, 5, 30, 30]);
        let again: RetryConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(again, cfg);
        let plain = RetryConfig::default();
        let again: RetryConfig = toml::from_str(&toml::to_string(&plain).unwrap()).unwrap();
        assert_eq!(again, plain);
        assert!(toml::from_str::<RetryConfig>("delays = []").is_err());
        assert!(toml::from_str::<RetryConfig>(r#"delays = ["5m", "1m"]"#).is_err());
    }
}
