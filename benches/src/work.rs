//! CPU work per request, for the CPU-bound throughput shapes: every echo
//! handler (Candado's and each peer's) calls [`spin`] before it answers, so
//! one setting gives every system the same work. Zero (the default) is the
//! no-op shapes: one relaxed atomic load per request, the same for all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Nanoseconds of CPU work per request.
static WORK_NANOS: AtomicU64 = AtomicU64::new(0);

/// Sets the CPU work of every request from now on (zero for none).
pub fn set(work: Duration) {
    WORK_NANOS.store(
        u64::try_from(work.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The CPU work each request does now.
pub fn current() -> Duration {
    Duration::from_nanos(WORK_NANOS.load(Ordering::Relaxed))
}

/// Spins the calling thread for the current work (a busy loop on the
/// clock, as a CPU-bound handler would: no sleep, no yield).
pub fn spin() {
    let nanos = WORK_NANOS.load(Ordering::Relaxed);
    if nanos == 0 {
        return;
    }
    let until = Instant::now() + Duration::from_nanos(nanos);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// The most requests per second `cores` cores can answer when each request
/// takes `work` of CPU and nothing else costs anything.
pub fn limit(cores: usize, work: Duration) -> f64 {
    cores as f64 / work.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_takes_at_least_the_work_and_limit_is_cores_over_work() {
        set(Duration::from_micros(200));
        let start = Instant::now();
        spin();
        assert!(start.elapsed() >= Duration::from_micros(200));
        set(Duration::ZERO);
        assert_eq!(current(), Duration::ZERO);
        assert!((limit(2, Duration::from_micros(50)) - 40_000.0).abs() < 1e-6);
    }
}
