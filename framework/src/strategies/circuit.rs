//! A circuit breaker: closed, open, half-open, with exponential cooldowns.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::SpecError;

/// Knobs of a [`CircuitBreaker`]. Defaults follow a production self-healing
/// service: see each knob.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (default 5).
    pub failure_threshold: u32,
    /// Optionally also open when the failure rate over the last `rate_window`
    /// outcomes reaches this fraction (0.0..=1.0), once `rate_min_calls`
    /// outcomes are known (default: off).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::number"))]
    pub failure_rate: Option<f64>,
    /// Outcomes in the sliding window for `failure_rate` (default 20).
    pub rate_window: usize,
    /// Outcomes needed before the rate is judged (default 10).
    pub rate_min_calls: usize,
    /// Successful probes that close a half-open breaker (default 2).
    pub success_threshold: u32,
    /// Calls let through while half-open (default 2).
    pub half_open_probes: u32,
    /// Cooldown of the first opening; doubles with each re-open (default 5 s).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub cooldown_base: Duration,
    /// Longest cooldown (default 60 s).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub cooldown_cap: Duration,
    /// Closed this long without re-opening resets the open count, and so the
    /// cooldown (default 60 s).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub stability_window: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            failure_rate: None,
            rate_window: 20,
            rate_min_calls: 10,
            success_threshold: 2,
            half_open_probes: 2,
            cooldown_base: Duration::from_secs(5),
            cooldown_cap: Duration::from_secs(60),
            stability_window: Duration::from_secs(60),
        }
    }
}

impl BreakerConfig {
    /// Checks the knobs, naming the first that is wrong.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |problem: &str| Err(SpecError::strategy("breaker", problem));
        if self.failure_threshold == 0 {
            return bad("failure_threshold must be at least 1");
        }
        if self.success_threshold == 0 || self.half_open_probes < self.success_threshold {
            return bad(
                "half_open_probes must be at least success_threshold, which must be at least 1",
            );
        }
        if self.failure_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
            return bad("failure_rate must be within 0.0..=1.0");
        }
        if self.failure_rate.is_some()
            && (self.rate_window == 0 || self.rate_min_calls > self.rate_window)
        {
            return bad("rate_min_calls must not exceed rate_window, which must be at least 1");
        }
        if self.cooldown_cap < self.cooldown_base {
            return bad("cooldown_cap must be at least cooldown_base");
        }
        Ok(())
    }

    /// Cooldown after the `opens`-th opening in a row: base × 2^(opens−1), capped.
    ///
    /// ```
    /// let cfg = candado::BreakerConfig::default();
    /// let secs: Vec<u64> = (1..=6).map(|n| cfg.cooldown(n).as_secs()).collect();
    /// assert_eq!(secs, [5, 10, 20, 40, 60, 60]);
    /// ```
    pub fn cooldown(&self, opens: u32) -> Duration {
        let factor = 1u32
            .checked_shl(opens.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.cooldown_base
            .saturating_mul(factor)
            .min(self.cooldown_cap)
    }
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused until the cooldown ends.
    Open,
    /// A limited number of probe calls are let through.
    HalfOpen,
}

/// A breaker's state in a form that survives a process restart (serde).
/// An open breaker keeps its *remaining* cooldown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    /// State when saved.
    pub state: BreakerState,
    /// Openings in the current streak (drives the cooldown).
    pub opens: u32,
    /// Consecutive failures while closed.
    pub failures: u32,
    /// Cooldown left, if open.
    pub cooldown_remaining_ms: Option<u64>,
    /// Recent outcomes (true = success), oldest first, for the failure rate.
    pub recent: Vec<bool>,
}

/// A circuit breaker, as a pure state machine over outcomes and a clock.
///
/// ```
/// use std::time::Duration;
/// use candado::{BreakerConfig, BreakerState, CircuitBreaker};
/// use tokio::time::Instant;
///
/// let t0 = Instant::now();
/// let mut breaker = CircuitBreaker::new(BreakerConfig::default()).unwrap();
/// for _ in 0..5 {
///     breaker.record(t0, false);
/// }
/// assert_eq!(breaker.state(t0), BreakerState::Open);
/// assert!(!breaker.allow(t0));
/// let later = t0 + Duration::from_secs(5);
/// assert!(breaker.allow(later)); // half-open: a probe goes through
/// breaker.record(later, true);
/// assert!(breaker.allow(later));
/// breaker.record(later, true);
/// assert_eq!(breaker.state(later), BreakerState::Closed);
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
    opens: u32,
    failures: u32,
    /// Half-open: probes let through and successes seen.
    probes: u32,
    successes: u32,
    open_until: Option<Instant>,
    /// When the current half-open round of probes began.
    probing_since: Option<Instant>,
    closed_since: Option<Instant>,
    recent: VecDeque<bool>,
}

impl CircuitBreaker {
    /// A closed breaker with `config`, if its knobs are valid.
    pub fn new(config: BreakerConfig) -> Result<Self, SpecError> {
        config.validate()?;
        Ok(Self {
            config,
            state: BreakerState::Closed,
            opens: 0,
            failures: 0,
            probes: 0,
            successes: 0,
            open_until: None,
            probing_since: None,
            closed_since: None,
            recent: VecDeque::new(),
        })
    }

    /// Moves time forward: an open breaker whose cooldown ended goes
    /// half-open, and a breaker closed for the stability window forgets its
    /// openings. Returns the state.
    pub fn state(&mut self, now: Instant) -> BreakerState {
        if self.state == BreakerState::Open && self.open_until.is_some_and(|t| now >= t) {
            self.state = BreakerState::HalfOpen;
            self.probes = 0;
            self.successes = 0;
            self.probing_since = Some(now);
        }
        // Probes that never reported back (their caller was lost, or reported
        // elsewhere) are released after one cooldown, so a half-open breaker
        // cannot stay shut for good.
        if self.state == BreakerState::HalfOpen
            && self.probes >= self.config.half_open_probes
            && self
                .probing_since
                .is_some_and(|t| now.duration_since(t) >= self.config.cooldown(self.opens.max(1)))
        {
            self.probes = 0;
            self.probing_since = Some(now);
        }
        if self.state == BreakerState::Closed
            && self.opens > 0
            && self
                .closed_since
                .is_some_and(|t| now.duration_since(t) >= self.config.stability_window)
        {
            self.opens = 0;
        }
        self.state
    }

    /// When an open breaker goes half-open.
    pub fn open_until(&self) -> Option<Instant> {
        (self.state == BreakerState::Open)
            .then_some(self.open_until)
            .flatten()
    }

    /// Openings in the current streak.
    pub fn opens(&self) -> u32 {
        self.opens
    }

    /// Whether a call may go through now (counts a probe when half-open).
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen if self.probes < self.config.half_open_probes => {
                self.probes += 1;
                true
            }
            BreakerState::HalfOpen => false,
        }
    }

    /// Gives back a probe that [`allow`](Self::allow) let through but that
    /// will never report an outcome here (the call was not made, or its
    /// outcome belongs to another breaker). Does nothing unless half-open.
    pub fn release_probe(&mut self, now: Instant) {
        if self.state(now) == BreakerState::HalfOpen {
            self.probes = self.probes.saturating_sub(1);
        }
    }

    /// Records a call's outcome.
    pub fn record(&mut self, now: Instant, success: bool) {
        match self.state(now) {
            BreakerState::Closed => {
                self.recent.push_back(success);
                while self.recent.len() > self.config.rate_window {
                    self.recent.pop_front();
                }
                if success {
                    self.failures = 0;
                } else {
                    self.failures += 1;
                    if self.failures >= self.config.failure_threshold || self.rate_exceeded() {
                        self.open(now);
                    }
                }
            }
            BreakerState::HalfOpen if success => {
                self.successes += 1;
                if self.successes >= self.config.success_threshold {
                    self.state = BreakerState::Closed;
                    self.closed_since = Some(now);
                    self.failures = 0;
                    self.recent.clear();
                }
            }
            BreakerState::HalfOpen => self.open(now),
            // Late results of calls made before it opened change nothing.
            BreakerState::Open => {}
        }
    }

    fn rate_exceeded(&self) -> bool {
        let Some(rate) = self.config.failure_rate else {
            return false;
        };
        if self.recent.len() < self.config.rate_min_calls.max(1) {
            return false;
        }
        let failed = self.recent.iter().filter(|ok| !**ok).count();
        failed as f64 / self.recent.len() as f64 >= rate
    }

    fn open(&mut self, now: Instant) {
        self.opens = self.opens.saturating_add(1);
        self.state = BreakerState::Open;
        self.open_until = Some(crate::clock::after(now, self.config.cooldown(self.opens)));
        self.failures = 0;
        self.recent.clear();
    }

    /// Saves the breaker (see [`BreakerSnapshot`]).
    pub fn snapshot(&mut self, now: Instant) -> BreakerSnapshot {
        let state = self.state(now);
        BreakerSnapshot {
            state,
            opens: self.opens,
            failures: self.failures,
            cooldown_remaining_ms: self.open_until().map(|t| {
                u64::try_from(t.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
            }),
            recent: self.recent.iter().copied().collect(),
        }
    }

    /// Rebuilds a breaker from a snapshot taken in another process. A
    /// half-open breaker restarts its probing; a closed one its stability window.
    pub fn restore(
        config: BreakerConfig,
        snapshot: &BreakerSnapshot,
        now: Instant,
    ) -> Result<Self, SpecError> {
        let mut breaker = Self::new(config)?;
        breaker.state = snapshot.state;
        breaker.opens = snapshot.opens;
        breaker.failures = snapshot.failures;
        breaker.recent = snapshot.recent.iter().copied().collect();
        match snapshot.state {
            BreakerState::Open => {
                let left = Duration::from_millis(snapshot.cooldown_remaining_ms.unwrap_or(0));
                breaker.open_until = Some(crate::clock::after(now, left));
            }
            BreakerState::Closed => breaker.closed_since = Some(now),
            BreakerState::HalfOpen => breaker.probing_since = Some(now),
        }
        Ok(breaker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(b: &mut CircuitBreaker, now: Instant) {
        for _ in 0..5 {
            b.record(now, false);
        }
        assert_eq!(b.state(now), BreakerState::Open);
    }

    #[test]
    fn cooldowns_grow_5_10_20_40_60_60_then_reset_after_stability() {
        let mut now = Instant::now();
        let mut b = CircuitBreaker::new(BreakerConfig::default()).unwrap();
        open(&mut b, now);
        let mut cooldowns = Vec::new();
        for _ in 0..6 {
            let until = b.open_until().unwrap();
            cooldowns.push(until.duration_since(now).as_secs());
            // Still open one instant before the cooldown ends.
            assert!(!b.allow(until - Duration::from_millis(1)));
            now = until;
            assert_eq!(b.state(now), BreakerState::HalfOpen);
            assert!(b.allow(now));
            b.record(now, false); // the probe fails: re-open
        }
        assert_eq!(cooldowns, [5, 10, 20, 40, 60, 60]);

        // Close it, stay closed for the stability window: the streak resets.
        now = b.open_until().unwrap();
        for _ in 0..2 {
            assert!(b.allow(now));
            b.record(now, true);
        }
        assert_eq!(b.state(now), BreakerState::Closed);
        assert_eq!(b.opens(), 7);
        now += Duration::from_secs(60);
        assert_eq!(b.state(now), BreakerState::Closed);
        assert_eq!(b.opens(), 0);
        open(&mut b, now);
        assert_eq!(b.open_until().unwrap().duration_since(now).as_secs(), 5);
    }

    #[test]
    fn half_open_lets_a_limited_number_of_probes_through() {
        let now = Instant::now();
        let mut b = CircuitBreaker::new(BreakerConfig::default()).unwrap();
        open(&mut b, now);
        let later = now + Duration::from_secs(5);
        assert!(b.allow(later));
        assert!(b.allow(later));
        assert!(
            !b.allow(later),
            "only two probes while their results are pending"
        );
        b.record(later, true);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        b.record(later, true);
        assert_eq!(b.state(later), BreakerState::Closed);
    }

    #[test]
    fn a_probe_given_back_lets_another_through() {
        let now = Instant::now();
        let mut b = CircuitBreaker::new(BreakerConfig::default()).unwrap();
        b.release_probe(now);
        assert!(b.allow(now), "closed: releasing changes nothing");
        open(&mut b, now);
        let half = now + Duration::from_secs(5);
        assert!(b.allow(half) && b.allow(half) && !b.allow(half));
        b.release_probe(half);
        assert!(b.allow(half));
        assert!(!b.allow(half));
    }

    #[test]
    fn probes_that_never_report_are_released_after_a_cooldown() {
        let now = Instant::now();
        let mut b = CircuitBreaker::new(BreakerConfig::default()).unwrap();
        open(&mut b, now);
        let half = now + Duration::from_secs(5);
        assert!(b.allow(half) && b.allow(half));
        // Both probes were lost: no outcome ever comes back.
        assert!(!b.allow(half + Duration::from_secs(4)));
        assert!(
            b.allow(half + Duration::from_secs(5)),
            "released after one cooldown"
        );
        assert_eq!(
            b.state(half + Duration::from_secs(5)),
            BreakerState::HalfOpen
        );
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let now = Instant::now();
        let mut b = CircuitBreaker::new(BreakerConfig::default()).unwrap();
        for _ in 0..4 {
            b.record(now, false);
        }
        b.record(now, true);
        for _ in 0..4 {
            b.record(now, false);
        }
        assert_eq!(b.state(now), BreakerState::Closed);
    }

    #[test]
    fn the_failure_rate_opens_it_too() {
        let now = Instant::now();
        let config = BreakerConfig {
            failure_rate: Some(0.5),
            ..Default::default()
        };
        let mut b = CircuitBreaker::new(config).unwrap();
        for i in 0..10 {
            b.record(now, i % 2 == 0);
        }
        assert_eq!(
            b.state(now),
            BreakerState::Open,
            "5 of 10 failed, none 5 in a row"
        );
    }

    #[test]
    fn snapshots_survive_a_restart() {
        let now = Instant::now();
        let mut b = CircuitBreaker::new(BreakerConfig::default()).unwrap();
        open(&mut b, now);
        let json = serde_json::to_string(&b.snapshot(now + Duration::from_secs(2))).unwrap();
        // Another process, another clock.
        let elsewhere = Instant::now() + Duration::from_secs(1000);
        let snapshot: BreakerSnapshot = serde_json::from_str(&json).unwrap();
        let mut restored =
            CircuitBreaker::restore(BreakerConfig::default(), &snapshot, elsewhere).unwrap();
        assert_eq!(restored.state(elsewhere), BreakerState::Open);
        assert_eq!(
            restored
                .open_until()
                .unwrap()
                .duration_since(elsewhere)
                .as_secs(),
            3
        );
        assert_eq!(restored.opens(), 1);
    }

    #[test]
    fn invalid_knobs_are_named() {
        let err = CircuitBreaker::new(BreakerConfig {
            half_open_probes: 1,
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("half_open_probes"), "{err}");
    }
}
