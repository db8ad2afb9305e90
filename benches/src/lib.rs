//! Benchmarks of Candado next to its peers, measured on the same machine in
//! the same run. The `compare` binary runs the whole side-by-side set and
//! prints a Markdown table (see `docs/performance.md`); the criterion
//! benchmarks in `benches/` cover the micro measurements.

use std::time::Duration;

pub mod peers;

/// The shape of a throughput run: no-op request/replies spread round-robin
/// over `workers`, from `submitters` concurrent submitters that each await
/// one reply before sending the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Actors (or pool workers) that answer.
    pub workers: usize,
    /// Concurrent submitters, each with one request in flight.
    pub submitters: usize,
    /// Requests in all (rounded down to a multiple of `submitters`).
    pub requests: usize,
}

impl Shape {
    /// Requests each submitter sends.
    pub fn per_submitter(&self) -> usize {
        (self.requests / self.submitters.max(1)).max(1)
    }

    /// Requests actually sent.
    pub fn total(&self) -> usize {
        self.per_submitter() * self.submitters.max(1)
    }
}

/// Requests per second for `shape` finished in `elapsed`.
pub fn rate(shape: Shape, elapsed: Duration) -> f64 {
    shape.total() as f64 / elapsed.as_secs_f64()
}
pub mod durable;
pub mod failure;
pub mod pool;
pub mod process;
pub mod process_workers;
pub mod stats;
pub mod supervision;
pub mod work;
