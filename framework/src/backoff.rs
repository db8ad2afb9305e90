//! Exponential restart backoff with jitter and a stability reset.

use std::time::Duration;

use rand::{Rng, RngExt};

use crate::SpecError;

/// Knobs of the exponential restart backoff.
///
/// The n-th consecutive restart of a child (n = 0, 1, ...) waits
/// `min(cap, base × 2^n)`, minus up to `jitter × 100` % drawn at random, but
/// never less than the previous delay of the same streak. So within a streak
/// delays never shrink and never exceed `cap`. A child that stayed up for
/// `stability_window` starts a new streak.
///
/// Defaults suit in-process actors, whose restart costs microseconds rather
/// than the seconds a process takes: `base` 100 ms, `cap` 10 s, `jitter` 0.2,
/// `stability_window` 30 s. Supervisors of OS processes in
/// production use 5 s × 2^n capped at 60 s with a 60 s window; set those values explicitly if restarts are costly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first restart of a streak. Zero disables backoff.
    pub base: Duration,
    /// Upper bound of any delay. Must be at least `base`.
    pub cap: Duration,
    /// Fraction (0.0..=1.0) of the delay that may be removed at random, so
    /// children failing together do not restart in lock-step.
    pub jitter: f64,
    /// Uptime after which a child's backoff streak resets.
    pub stability_window: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
            jitter: 0.2,
            stability_window: Duration::from_secs(30),
        }
    }
}

impl BackoffConfig {
    /// No delays at all: every restart is immediate, as in OTP, where only
    /// the restart intensity bounds a crash loop. Keep the intensity tight
    /// with it: a child that fails at once restarts as fast as the control
    /// thread can start it until the intensity gives up (it never spins
    /// beyond that: `tests/otp_restart.rs`
    /// `no_backoff_restarts_at_once_and_a_crash_loop_ends_at_the_intensity`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use candado::{Backoff, BackoffConfig};
    /// use rand::{rngs::SmallRng, SeedableRng};
    ///
    /// let none = BackoffConfig::none();
    /// assert!(none.validate().is_ok());
    /// let mut backoff = Backoff::new();
    /// let mut rng = SmallRng::seed_from_u64(1);
    /// for _ in 0..100 {
    ///     assert_eq!(backoff.next_delay(&none, &mut rng), Duration::ZERO);
    /// }
    /// ```
    pub fn none() -> Self {
        Self {
            base: Duration::ZERO,
            cap: Duration::ZERO,
            jitter: 0.0,
            ..Self::default()
        }
    }

    /// Checks the knobs, naming the first that is wrong.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.cap < self.base {
            return Err(SpecError::BackoffCapBelowBase {
                base: self.base,
                cap: self.cap,
            });
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(SpecError::JitterOutOfRange(self.jitter));
        }
        Ok(())
    }

    /// The delay of attempt `n` before jitter: `min(cap, base × 2^n)`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let cfg = candado::BackoffConfig {
    ///     base: Duration::from_secs(5),
    ///     cap: Duration::from_secs(60),
    ///     ..Default::default()
    /// };
    /// let secs: Vec<u64> = (0..6).map(|n| cfg.raw_delay(n).as_secs()).collect();
    /// assert_eq!(secs, [5, 10, 20, 40, 60, 60]);
    /// ```
    pub fn raw_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// One child's position in its backoff streak.
///
/// Pure state: the caller supplies the random source, so tests can seed it.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
    last: Duration,
}

impl Backoff {
    /// A fresh streak.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of delays handed out since the streak began.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Hands out the next delay and advances the streak.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use candado::{Backoff, BackoffConfig};
    /// use rand::{rngs::SmallRng, SeedableRng};
    ///
    /// let cfg = BackoffConfig { jitter: 0.0, ..Default::default() };
    /// let mut rng = SmallRng::seed_from_u64(7);
    /// let mut backoff = Backoff::new();
    /// assert_eq!(backoff.next_delay(&cfg, &mut rng), Duration::from_millis(100));
    /// assert_eq!(backoff.next_delay(&cfg, &mut rng), Duration::from_millis(200));
    /// backoff.reset();
    /// assert_eq!(backoff.next_delay(&cfg, &mut rng), Duration::from_millis(100));
    /// ```
    pub fn next_delay<R: Rng + ?Sized>(&mut self, config: &BackoffConfig, rng: &mut R) -> Duration {
        let raw = config.raw_delay(self.attempt);
        let cut = if config.jitter > 0.0 {
            raw.mul_f64(config.jitter * rng.random::<f64>())
        } else {
            Duration::ZERO
        };
        let delay = raw.saturating_sub(cut).max(self.last);
        self.attempt = self.attempt.saturating_add(1);
        self.last = delay;
        delay
    }

    /// Starts a new streak (the child was stable for the window).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    fn seed_schedule() -> BackoffConfig {
        BackoffConfig {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(60),
            jitter: 0.0,
            stability_window: Duration::from_secs(60),
        }
    }

    #[test]
    fn schedule_doubles_then_caps() {
        let cfg = seed_schedule();
        let mut rng = SmallRng::seed_from_u64(1);
        let mut b = Backoff::new();
        let got: Vec<u64> = (0..7)
            .map(|_| b.next_delay(&cfg, &mut rng).as_secs())
            .collect();
        assert_eq!(got, [5, 10, 20, 40, 60, 60, 60]);
        assert_eq!(b.attempt(), 7);
    }

    #[test]
    fn jitter_never_shrinks_nor_exceeds_cap() {
        let cfg = BackoffConfig {
            jitter: 1.0,
            ..seed_schedule()
        };
        for seed in 0..200 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut b = Backoff::new();
            let mut prev = Duration::ZERO;
            for n in 0..20 {
                let d = b.next_delay(&cfg, &mut rng);
                assert!(d >= prev, "seed {seed} attempt {n}: {d:?} < {prev:?}");
                assert!(d <= cfg.cap && d <= cfg.raw_delay(n));
                prev = d;
            }
        }
    }

    #[test]
    fn huge_attempts_saturate_at_cap() {
        let cfg = seed_schedule();
        assert_eq!(cfg.raw_delay(u32::MAX), cfg.cap);
        assert_eq!(cfg.raw_delay(40), cfg.cap);
    }

    #[test]
    fn validation_names_the_wrong_knob() {
        let cfg = BackoffConfig {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(1),
            ..Default::default()
        };
        assert!(matches!(
            cfg.validate(),
            Err(SpecError::BackoffCapBelowBase { .. })
        ));
        let cfg = BackoffConfig {
            jitter: 1.5,
            ..Default::default()
        };
        assert!(matches!(
            cfg.validate(),
            Err(SpecError::JitterOutOfRange(_))
        ));
        assert!(BackoffConfig::default().validate().is_ok());
    }
}
