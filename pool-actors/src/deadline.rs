//! Deadlines built from users' durations, with arithmetic that cannot
//! overflow: any duration is valid (`Duration::MAX` included), and one past
//! the clock's range means "no deadline".

use std::time::Duration;

use tokio::time::Instant;

/// About thirty years: later than anything a pool waits for, and within
/// every clock's range (tokio's timers treat it as "never" too).
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + d`, or [`FAR_FUTURE`] from now if `d` is longer.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now + d.min(FAR_FUTURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_duration_is_a_far_deadline_not_an_overflow() {
        let now = Instant::now();
        assert_eq!(after(now, Duration::MAX), now + FAR_FUTURE);
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
