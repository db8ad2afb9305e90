//! The rate limit on task starts: a token bucket on the router's clock.

use std::time::Duration;

use tokio::time::Instant;

use crate::{deadline, RateLimitSettings};

/// A token bucket: `burst` tokens at most, refilled at `per_second`. Pure
/// bookkeeping over the instants it is given, so it is tested without a
/// clock.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl TokenBucket {
    /// A full bucket (settings already validated: a rate above 0, a burst
    /// of at least 1).
    pub(crate) fn new(settings: RateLimitSettings, now: Instant) -> Self {
        let burst = f64::from(settings.burst.max(1));
        Self {
            per_second: settings.per_second,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.at {
            let earned = now.duration_since(self.at).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + earned).min(self.burst);
            self.at = now;
        }
    }

    /// Whether a start is allowed at `now` (takes nothing).
    pub(crate) fn ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Takes the token of one start (call after [`ready`](Self::ready)).
    pub(crate) fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }

    /// When the next token is there (now, if one is).
    pub(crate) fn next_token(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 {
            return now;
        }
        let wait = (1.0 - self.tokens) / self.per_second;
        // A tiny rate gives a wait past what a `Duration` holds: far away.
        let wait = Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX);
        // Rounding must never leave the clock a hair early, spinning.
        deadline::after(now, wait.saturating_add(Duration::from_nanos(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(per_second: f64, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket::new(RateLimitSettings { per_second, burst }, now)
    }

    fn starts(b: &mut TokenBucket, now: Instant) -> u32 {
        let mut n = 0;
        while b.ready(now) {
            b.take(now);
            n += 1;
        }
        n
    }

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = bucket(10.0, 3, t0);
        assert_eq!(starts(&mut b, t0), 3);
        assert_eq!(
            b.next_token(t0),
            t0 + Duration::from_millis(100) + Duration::from_nanos(1)
        );
        assert_eq!(starts(&mut b, t0 + Duration::from_millis(99)), 0);
        assert_eq!(starts(&mut b, t0 + Duration::from_millis(101)), 1);
        // A long quiet spell refills to the burst, never beyond.
        assert_eq!(starts(&mut b, t0 + Duration::from_secs(3600)), 3);
    }

    #[test]
    fn the_slowest_and_fastest_rates_never_overflow() {
        let t0 = Instant::now();
        let mut slow = bucket(f64::MIN_POSITIVE, 1, t0);
        assert_eq!(starts(&mut slow, t0), 1);
        assert_eq!(slow.next_token(t0), t0 + deadline::FAR_FUTURE);
        let mut fast = bucket(1e9, 1_000_000_000, t0);
        assert!(fast.ready(t0 + Duration::from_secs(86_400)));
        assert!(fast.next_token(t0) >= t0);
    }
}
