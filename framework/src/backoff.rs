//! Restart backoff (exponential or an explicit schedule) with jitter and a
//! stability reset.

mod steps;

use std::time::Duration;

use rand::{Rng, RngExt};

pub use self::steps::BackoffSteps;
use crate::SpecError;

/// Knobs of the restart backoff.
///
/// The n-th consecutive restart of a child (n = 0, 1, ...) waits
/// `min(cap, base × multiplier^n)` — or `min(cap, steps[n])` when an explicit
/// schedule is set, its last entry repeating — minus up to `jitter × 100` %
/// drawn at random, but never less than the previous delay of the same
/// streak. So within a streak delays never shrink and never exceed `cap`. A
/// child that stayed up for `stability_window` starts a new streak. Huge
/// values saturate at `cap`; no combination of knobs panics.
///
/// A schedule written in words, such as "retry after 1, 5 and 30 minutes":
///
/// ```
/// use std::time::Duration;
/// use candado::{BackoffConfig, BackoffSteps};
///
/// let minutes = |m: u64| Duration::from_secs(60 * m);
/// let steps = BackoffSteps::new(&[minutes(1), minutes(5), minutes(30)]).unwrap();
/// let cfg = BackoffConfig { jitter: 0.0, ..BackoffConfig::with_steps(steps) };
/// assert!(cfg.validate().is_ok());
/// let got: Vec<u64> = (0..4).map(|n| cfg.raw_delay(n).as_secs() / 60).collect();
/// assert_eq!(got, [1, 5, 30, 30]);
/// ```
///
/// Defaults suit in-process actors, whose restart costs microseconds rather
/// than the seconds a process takes: `base` 100 ms, `cap` 10 s, `jitter` 0.2,
/// `stability_window` 30 s. Supervisors of OS processes in
/// production use 5 s × 2^n capped at 60 s with a 60 s window; set those values explicitly if restarts are costly.
/// `multiplier` is 2.0 and `steps` is `None` by default.
///
/// With the `serde` feature it reads itself from TOML or JSON, durations in
/// humantime; `base` and `cap` also answer to `backoff_base` and
/// `backoff_cap` (the names a pool's `[restart]` section had first), and
/// `steps` is written `delays`:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// let cfg: candado::BackoffConfig =
///     serde_json::from_str(r#"{"base": "1s", "cap": "1m", "multiplier": 3.0}"#).unwrap();
/// assert_eq!(cfg.raw_delay(2).as_secs(), 9);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct BackoffConfig {
    /// Delay before the first restart of a streak. Zero disables backoff.
    #[cfg_attr(
        feature = "serde",
        serde(with = "humantime_serde", alias = "backoff_base")
    )]
    pub base: Duration,
    /// Upper bound of any delay. Must be at least `base`.
    #[cfg_attr(
        feature = "serde",
        serde(with = "humantime_serde", alias = "backoff_cap")
    )]
    pub cap: Duration,
    /// Fraction (0.0..=1.0) of the delay that may be removed at random, so
    /// children failing together do not restart in lock-step.
    pub jitter: f64,
    /// Uptime after which a child's backoff streak resets.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub stability_window: Duration,
    /// Growth of the delay per consecutive restart: `base × multiplier^n`.
    /// Must be finite and at least 1.0 (1.0 gives a constant delay).
    /// Ignored when `steps` is set.
    pub multiplier: f64,
    /// An explicit schedule replacing `base × multiplier^n`; `cap` still
    /// bounds each entry, so [`BackoffConfig::with_steps`] sets it to the
    /// last one. Named `delays` in serde (`delays = ["1m", "5m", "30m"]`).
    #[cfg_attr(feature = "serde", serde(rename = "delays", alias = "steps"))]
    pub steps: Option<BackoffSteps>,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
            jitter: 0.2,
            stability_window: Duration::from_secs(30),
            multiplier: 2.0,
            steps: None,
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

    /// The default knobs with an explicit schedule: `base` is its first
    /// delay and `cap` its last, so no entry is cut.
    pub fn with_steps(steps: BackoffSteps) -> Self {
        Self {
            base: steps.first(),
            cap: steps.last(),
            steps: Some(steps),
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
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(SpecError::BackoffMultiplierInvalid(self.multiplier));
        }
        if let Some(steps) = &self.steps {
            // Re-checks a schedule built by hand rather than through `new`.
            BackoffSteps::new(steps.as_slice())?;
        }
        Ok(())
    }

    /// The delay of attempt `n` before jitter: `min(cap, base × multiplier^n)`,
    /// or `min(cap, steps[n])` with an explicit schedule.
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
        let raw = match &self.steps {
            Some(steps) => steps.delay(attempt),
            None => grow(self.base, self.multiplier, attempt),
        };
        raw.min(self.cap)
    }
}

/// `base × multiplier^n`, saturating at `Duration::MAX`. Whole multipliers
/// use integer math (exact); others go through `f64`. A multiplier that
/// validation would reject (NaN, below 1) saturates rather than panics.
fn grow(base: Duration, multiplier: f64, attempt: u32) -> Duration {
    if base.is_zero() || attempt == 0 {
        return base;
    }
    if multiplier.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&multiplier) {
        // Exact: `multiplier` is a whole number within u32.
        let whole = multiplier as u32;
        return whole
            .checked_pow(attempt)
            .and_then(|factor| base.checked_mul(factor))
            .unwrap_or(Duration::MAX);
    }
    let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
    Duration::try_from_secs_f64(base.as_secs_f64() * multiplier.powi(exponent))
        .unwrap_or(Duration::MAX)
}

/// `fraction` (clamped to 0.0..=1.0) of `delay`, never more than `delay`
/// (`Duration::mul_f64` would panic where `f64` rounding overflows).
fn portion(delay: Duration, fraction: f64) -> Duration {
    let fraction = fraction.clamp(0.0, 1.0);
    Duration::try_from_secs_f64(delay.as_secs_f64() * fraction)
        .unwrap_or(delay)
        .min(delay)
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
            portion(raw, config.jitter * rng.random::<f64>())
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
            ..BackoffConfig::default()
        }
    }

    #[test]
    fn a_multiplier_sets_the_growth() {
        let cfg = BackoffConfig {
            multiplier: 3.0,
            ..seed_schedule()
        };
        let secs: Vec<u64> = (0..5).map(|n| cfg.raw_delay(n).as_secs()).collect();
        assert_eq!(secs, [5, 15, 45, 60, 60]);
        let cfg = BackoffConfig {
            multiplier: 1.5,
            ..seed_schedule()
        };
        let ms: Vec<u128> = (0..4).map(|n| cfg.raw_delay(n).as_millis()).collect();
        assert_eq!(ms, [5_000, 7_500, 11_250, 16_875]);
        let constant = BackoffConfig {
            multiplier: 1.0,
            ..seed_schedule()
        };
        assert_eq!(constant.raw_delay(1_000), Duration::from_secs(5));
    }

    #[test]
    fn bad_multipliers_are_named_and_never_panic() {
        for m in [0.5, -1.0, f64::NAN, f64::INFINITY] {
            let cfg = BackoffConfig {
                multiplier: m,
                ..seed_schedule()
            };
            assert!(matches!(
                cfg.validate(),
                Err(SpecError::BackoffMultiplierInvalid(_))
            ));
            for n in [0, 1, 2, 64, u32::MAX] {
                assert!(cfg.raw_delay(n) <= cfg.cap);
            }
        }
    }

    #[test]
    fn maximal_durations_saturate_instead_of_overflowing() {
        let steps = BackoffSteps::new(&[Duration::from_secs(1), Duration::MAX]).unwrap();
        let cfg = BackoffConfig {
            jitter: 1.0,
            ..BackoffConfig::with_steps(steps)
        };
        assert!(cfg.validate().is_ok());
        assert_eq!(cfg.raw_delay(5), Duration::MAX);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut b = Backoff::new();
        for _ in 0..5 {
            b.next_delay(&cfg, &mut rng);
        }
        let huge = BackoffConfig {
            base: Duration::MAX,
            cap: Duration::MAX,
            multiplier: 1.7,
            jitter: 1.0,
            ..BackoffConfig::default()
        };
        for n in 0..5 {
            assert_eq!(huge.raw_delay(n), Duration::MAX);
            b.next_delay(&huge, &mut rng);
        }
    }

    #[test]
    fn the_audit_schedule_can_be_written() {
        // The worker-lifecycle audit: retries after 1, 5 and 30 minutes.
        let minutes = |m: u64| Duration::from_secs(60 * m);
        let steps = BackoffSteps::new(&[minutes(1), minutes(5), minutes(30)]).unwrap();
        let cfg = BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::with_steps(steps)
        };
        let mut rng = SmallRng::seed_from_u64(0);
        let mut b = Backoff::new();
        let got: Vec<Duration> = (0..4).map(|_| b.next_delay(&cfg, &mut rng)).collect();
        assert_eq!(got, [minutes(1), minutes(5), minutes(30), minutes(30)]);
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
