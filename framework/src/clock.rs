//! Deadlines and periods built from users' durations.
//!
//! Any `Duration` is a valid knob (`Duration::MAX` included), so nothing here
//! may overflow or spin:
//! - a deadline past the clock's range is "no deadline": it is placed
//!   [`FAR_FUTURE`] from now, as tokio places a sleep it cannot represent;
//! - a period is at least [`RESOLUTION`], the timer's granularity. A shorter
//!   one cannot fire more often, and a timer that catches up on missed
//!   ticks one nanosecond at a time spins without ever letting the clock
//!   move (a 1 ns heartbeat hung a paused runtime for good).

use std::time::Duration;

use tokio::time::Instant;

/// About thirty years: later than anything a supervisor waits for, within
/// every clock's range, and what tokio's timers treat as "never".
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The timer's granularity (tokio's timer wheel counts milliseconds).
pub(crate) const RESOLUTION: Duration = Duration::from_millis(1);

/// `now + d`, or [`FAR_FUTURE`] from now if `d` is longer.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    // Thirty years fit any clock read in this process's life; were the clock
    // itself at its end, "now" is the only deadline left.
    now.checked_add(d.min(FAR_FUTURE)).unwrap_or(now)
}

/// A timer period from a user's duration: within `RESOLUTION..=FAR_FUTURE`.
pub(crate) fn period(d: Duration) -> Duration {
    d.clamp(RESOLUTION, FAR_FUTURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_duration_is_a_far_deadline_not_an_overflow() {
        let now = Instant::now();
        assert_eq!(after(now, Duration::MAX), now + FAR_FUTURE);
        let second = Duration::from_secs(1);
        assert_eq!(after(now, second), now + second);
    }

    #[test]
    fn periods_are_never_shorter_than_the_timer_nor_past_the_clock() {
        assert_eq!(period(Duration::from_nanos(1)), RESOLUTION);
        assert_eq!(period(Duration::ZERO), RESOLUTION);
        assert_eq!(period(Duration::MAX), FAR_FUTURE);
        assert_eq!(period(Duration::from_secs(5)), Duration::from_secs(5));
    }
}
