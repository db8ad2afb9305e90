//! Durations as HdrHistograms: all-time, and over a recent window that
//! rotates on the router's clock (so it runs on virtual time in tests).
//!
//! The recent window is [`RECENT_SLOTS`] histograms of [`RECENT_SLOT`] each:
//! a sample is recorded in the slot of its time, and a slot leaves the
//! window once it is [`RECENT_SLOTS`] slots old. So the window covers the
//! current slot and the five before it: between 50 and 60 seconds.
//!
//! A sample is recorded once, in its slot; a slot that leaves the window is
//! added to the histogram of everything before it. All-time figures merge
//! that with the slots still in the window, when asked (a metrics
//! snapshot), so the task path pays for one record, not two.

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::metrics::{DurationBuckets, Percentiles};

/// Significant decimal digits kept: values are exact to within 0.1%.
pub(crate) const SIGNIFICANT_DIGITS: u8 = 3;
/// The largest duration tracked, in microseconds (one day); longer ones
/// count as one day.
pub(crate) const HIGHEST_MICROS: u64 = 24 * 3600 * 1_000_000;
/// Length of one slot of the recent window.
pub(crate) const RECENT_SLOT: Duration = Duration::from_secs(10);
/// Slots in the recent window.
pub(crate) const RECENT_SLOTS: u64 = 6;

/// One histogram with the exact largest value recorded in it.
#[derive(Debug, Clone)]
struct Recorded {
    histogram: Histogram<u64>,
    max: u64,
}

impl Recorded {
    fn new() -> Self {
        Self {
            // The bounds are constants that hdrhistogram accepts (1 ≤ low,
            // 2·low ≤ high, digits ≤ 5): checked by a unit test.
            histogram: Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
                .unwrap_or_else(|_| unreachable!("constant bounds are valid")),
            max: 0,
        }
    }

    fn record(&mut self, micros: u64) {
        self.histogram.saturating_record(micros);
        self.max = self.max.max(micros);
    }

    fn add(&mut self, other: &Recorded) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        self.max = self.max.max(other.max);
    }

    fn summary(&self) -> Percentiles {
        let h = &self.histogram;
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(self.max),
            count: h.len(),
        }
    }
}

/// Durations recorded over the pool's life and over the recent window.
#[derive(Debug, Clone)]
pub(crate) struct LatencyHistogram {
    /// Everything recorded in the slots that left the window.
    folded: Recorded,
    /// Where slot numbers count from (the first sample's time).
    origin: Option<Instant>,
    /// Recent slots, oldest first, each with its number.
    recent: VecDeque<(u64, Recorded)>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            folded: Recorded::new(),
            origin: None,
            recent: VecDeque::new(),
        }
    }
}

impl LatencyHistogram {
    /// An empty histogram whose window slots count from `origin`: the
    /// histograms of one pool's routers share it, so they add up slot by
    /// slot (see [`add`](Self::add)).
    pub(crate) fn since(origin: Instant) -> Self {
        Self {
            origin: Some(origin),
            ..Self::default()
        }
    }

    /// Adds what `other` recorded (the same origin, see
    /// [`since`](Self::since)): its slots join the slots of the same number.
    pub(crate) fn add(&mut self, other: &LatencyHistogram) {
        self.folded.add(&other.folded);
        if self.origin.is_none() {
            self.origin = other.origin;
        }
        for (number, recorded) in &other.recent {
            match self.recent.binary_search_by_key(number, |(n, _)| *n) {
                Ok(at) => self.recent[at].1.add(recorded),
                Err(at) => self.recent.insert(at, (*number, recorded.clone())),
            }
        }
    }

    /// Records `duration`, taken at `now`. Durations past a day count as a
    /// day (never a panic).
    pub(crate) fn record(&mut self, now: Instant, duration: Duration) {
        let micros = u64::try_from(duration.as_micros())
            .unwrap_or(u64::MAX)
            .min(HIGHEST_MICROS);
        let origin = *self.origin.get_or_insert(now);
        let slot = slot_of(origin, now);
        while self
            .recent
            .front()
            .is_some_and(|(number, _)| number.saturating_add(RECENT_SLOTS) <= slot)
        {
            if let Some((_, old)) = self.recent.pop_front() {
                self.folded.add(&old);
            }
        }
        match self.recent.back_mut() {
            Some((number, recorded)) if *number == slot => recorded.record(micros),
            _ => {
                let mut recorded = Recorded::new();
                recorded.record(micros);
                self.recent.push_back((slot, recorded));
            }
        }
    }

    /// Percentiles over everything recorded.
    pub(crate) fn all_time(&self) -> Percentiles {
        self.everything().summary()
    }

    /// Everything recorded: the slots that left the window, and the ones
    /// in it.
    fn everything(&self) -> Recorded {
        let mut all = self.folded.clone();
        for (_, recorded) in &self.recent {
            all.add(recorded);
        }
        all
    }

    /// Everything recorded, in the fixed buckets of
    /// [`BUCKET_BOUNDS_MS`](crate::BUCKET_BOUNDS_MS).
    pub(crate) fn all_time_buckets(&self) -> DurationBuckets {
        let mut buckets = DurationBuckets::empty();
        let all = self.everything();
        let histogram = &all.histogram;
        for value in histogram.iter_recorded() {
            // The middle of the value's equivalence range: a duration on a
            // bound (50 ms) stays in that bound's bucket.
            let micros = histogram.median_equivalent(value.value_iterated_to());
            let ms = micros as f64 / 1000.0;
            buckets.add(ms, value.count_at_value());
        }
        buckets
    }

    /// Percentiles over the slots still in the window at `now`.
    pub(crate) fn recent(&self, now: Instant) -> Percentiles {
        let Some(origin) = self.origin else {
            return Percentiles::default();
        };
        let current = slot_of(origin, now);
        let mut in_window = self
            .recent
            .iter()
            .filter(|(number, _)| number.saturating_add(RECENT_SLOTS) > current)
            .map(|(_, recorded)| recorded);
        let Some(first) = in_window.next() else {
            return Percentiles::default();
        };
        let mut merged = first.clone();
        for recorded in in_window {
            merged.add(recorded);
        }
        merged.summary()
    }
}

/// A slot is whole seconds long, so a slot number divides whole seconds
/// (a 64-bit division by a constant, where nanoseconds would take a
/// 128-bit one on every sample).
const _: () = assert!(RECENT_SLOT.subsec_nanos() == 0 && RECENT_SLOT.as_secs() > 0);

/// The number of the window slot `now` falls in, counting from `origin`.
fn slot_of(origin: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(origin).as_secs() / RECENT_SLOT.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn close(actual: f64, expected: f64) -> bool {
        // hdr keeps 3 significant digits: within 0.1% (plus float noise).
        (actual - expected).abs() <= expected * 0.001 + 1e-9
    }

    #[test]
    fn the_bounds_are_valid() {
        assert!(Histogram::<u64>::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn known_samples_give_known_percentiles_within_hdr_precision() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.all_time(), Percentiles::default());
        assert_eq!(h.recent(Instant::now()), Percentiles::default());
        for ms in 1..=100u32 {
            h.record(Instant::now(), MS * ms);
        }
        for p in [h.all_time(), h.recent(Instant::now())] {
            assert!(close(p.p50, 50.0), "{p:?}");
            assert!(close(p.p90, 90.0), "{p:?}");
            assert!(close(p.p99, 99.0), "{p:?}");
            assert_eq!(p.max, 100.0, "the largest is exact");
            assert_eq!(p.count, 100);
        }
        // A heavy tail: 990 fast, 10 slow.
        let mut h = LatencyHistogram::default();
        for i in 0..1000 {
            let d = if i % 100 == 0 { 5 * MS * 1000 } else { 2 * MS };
            h.record(Instant::now(), d);
        }
        let p = h.all_time();
        assert!(
            close(p.p50, 2.0) && close(p.p90, 2.0) && close(p.p99, 2.0),
            "{p:?}"
        );
        assert_eq!(p.max, 5000.0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_recent_window_forgets_old_samples_once_it_elapses() {
        let mut h = LatencyHistogram::default();
        let start = Instant::now();
        h.record(start, 7 * MS);
        tokio::time::advance(Duration::from_secs(30)).await;
        h.record(Instant::now(), 2 * MS);
        let p = h.recent(Instant::now());
        assert_eq!((p.count, p.max), (2, 7.0));

        // 59.9 s after the first sample it is still in the window (slot 0
        // of slots 0..=5)...
        tokio::time::advance(Duration::from_millis(29_900)).await;
        assert_eq!(h.recent(Instant::now()).count, 2);
        // ...at 60 s its slot has left: only the second remains.
        tokio::time::advance(Duration::from_millis(100)).await;
        let p = h.recent(Instant::now());
        assert_eq!((p.count, p.max), (1, 2.0));
        assert!(close(p.p50, 2.0), "{p:?}");
        // A new sample after a long quiet spell drops the stale slots.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(h.recent(Instant::now()), Percentiles::default());
        h.record(Instant::now(), 3 * MS);
        let p = h.recent(Instant::now());
        assert_eq!((p.count, p.max), (1, 3.0));
        assert_eq!(h.recent.len(), 1);
        // All-time keeps everything.
        let all = h.all_time();
        assert_eq!((all.count, all.max), (3, 7.0));
    }

    #[tokio::test(start_paused = true)]
    async fn buckets_count_each_duration_once_by_its_bound_and_sum_them() {
        let mut h = LatencyHistogram::default();
        let now = Instant::now();
        for ms in [0, 1, 2, 3, 40, 50, 999, 120_000] {
            h.record(now, Duration::from_millis(ms));
        }
        h.record(now, Duration::MAX);
        let b = h.all_time_buckets();
        assert_eq!(b.count, 9);
        assert_eq!(b.counts.iter().sum::<u64>(), 9);
        // ≤1 ms: 0 and 1; ≤2.5: 2; ≤5: 3; ≤50: 40 and 50; ≤1 s: 999;
        // above a minute: two minutes and Duration::MAX (a day).
        assert_eq!(
            b.counts,
            [2, 1, 1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2],
            "{b:?}"
        );
        let exact = 1.0 + 2.0 + 3.0 + 40.0 + 50.0 + 999.0 + 120_000.0 + 86_400_000.0;
        assert!(close(b.sum_ms, exact), "{} vs {exact}", b.sum_ms);
        assert_eq!(
            LatencyHistogram::default().all_time_buckets(),
            DurationBuckets::empty()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn durations_beyond_the_range_are_clamped_never_a_panic() {
        let mut h = LatencyHistogram::default();
        h.record(Instant::now(), Duration::ZERO);
        h.record(Instant::now(), Duration::MAX);
        h.record(Instant::now(), Duration::from_secs(7 * 24 * 3600));
        let day_ms = HIGHEST_MICROS as f64 / 1000.0;
        for p in [h.all_time(), h.recent(Instant::now())] {
            assert_eq!(p.count, 3);
            assert_eq!(p.max, day_ms);
            assert!(close(p.p99, day_ms), "{p:?}");
            assert!(p.p50 <= day_ms * 1.001);
        }
        let mut zero = LatencyHistogram::default();
        zero.record(Instant::now(), Duration::ZERO);
        assert_eq!(zero.all_time().p99, 0.0);
        // A clock that goes backwards (or an `Instant` from before the
        // first sample) is read as the first slot.
        let mut h = LatencyHistogram::default();
        let later = Instant::now() + Duration::from_secs(100);
        h.record(later, MS);
        h.record(Instant::now(), MS);
        assert_eq!(h.recent(Instant::now()).count, 2);
    }
}
