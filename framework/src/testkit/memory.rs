//! Memory readings set by hand.

use crate::MemorySample;

/// A reading of a 100 GiB machine (no cgroup) of which `used_percent` is in
/// use, with the process itself at 1 GiB; `used_percent` above 100 counts
/// as 100. Feed it to a [`FixedSampler`](crate::FixedSampler) and
/// [`set`](crate::FixedSampler::set) another to move the memory strategy.
///
/// ```
/// use candado::testkit::memory_sample;
/// assert_eq!(memory_sample(85).used_percent(), 85.0);
/// ```
pub fn memory_sample(used_percent: u64) -> MemorySample {
    const GIB: u64 = 1 << 30;
    let total = 100 * GIB;
    let used = used_percent.min(100) * GIB;
    MemorySample {
        process_rss: GIB,
        system_available: total - used,
        system_total: total,
        cgroup: None,
    }
}
