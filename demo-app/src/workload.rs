//! The demo's work: CPU "predictions", calls to a flaky dependency, and the
//! faults a scenario injects into them.
//!
//! - this file: the tasks ([`Job`]), their faults ([`Fault`]), the flaky
//!   [`Dependency`] and the stream ([`next_job`]);
//! - `engine.rs`: the handler that runs them ([`Engine`]);
//! - `fatal.rs`: the faults that cost a worker its process.

mod engine;
mod fatal;

use std::time::SystemTime;

use candado_pool::TaskOptions;
use rand::rngs::SmallRng;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::scenario::{Outage, Scenario};

pub use engine::Engine;
pub use fatal::BRAKES;

/// Name of the flaky dependency (its breaker has this name).
pub const DEPENDENCY: &str = "feature-store";

/// What a task fails with on its first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// No fault.
    None,
    /// Panics inside the task.
    Panic,
    /// Panics in the handler, crashing the worker.
    Crash,
    /// Never finishes, never reports progress.
    Hang,
    /// Blocks the worker's thread in an unchunked CPU loop.
    Starve,
    /// Runs past its timeout (while reporting progress).
    Slow,
    /// Leaks memory into its worker.
    Leak,
    /// Spins in `loop {}` with no await (process isolation only).
    Spin,
    /// Calls `std::process::abort()` (process isolation only).
    Abort,
    /// Leaks `leak_mib` MiB for good, `std::mem::forget` (process isolation
    /// only).
    Forget,
    /// Brakes [`BRAKES`] times, then exits 42 (process isolation only).
    Brake,
    /// Overflows its stack by unbounded recursion (process isolation only).
    Overflow,
}

/// One demo task (serde-able: with process isolation it travels to a
/// worker process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Job {
    /// A CPU-bound prediction, chunked with `checkpoint`.
    Predict {
        /// Loop iterations.
        iterations: u32,
        /// Injected fault.
        fault: Fault,
    },
    /// A call to the flaky dependency.
    Fetch {
        /// Injected fault.
        fault: Fault,
    },
}

impl Job {
    fn fault(&self) -> Fault {
        match self {
            Job::Predict { fault, .. } | Job::Fetch { fault } => *fault,
        }
    }
}

/// The flaky dependency: down during the scenario's outage.
///
/// The outage is placed on the wall clock, which the demo and its worker
/// processes share (a monotonic `Instant` cannot cross a process boundary);
/// it travels to worker processes with the rest of [`WorkerSettings`](crate::WorkerSettings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    down: Option<(SystemTime, SystemTime)>,
}

impl Dependency {
    /// A dependency whose outage is placed relative to `start`. An outage
    /// past the clock's range (refused by validation) never starts.
    pub fn new(start: SystemTime, outage: Option<Outage>) -> Self {
        let down = outage.and_then(|o| {
            let from = start.checked_add(o.start)?;
            Some((from, from.checked_add(o.length)?))
        });
        Self { down }
    }

    fn is_down(&self, now: SystemTime) -> bool {
        self.down.is_some_and(|(from, to)| now >= from && now < to)
    }
}

/// Draws the next task of a scenario's stream.
pub fn next_job(scenario: &Scenario, rng: &mut SmallRng) -> (Job, TaskOptions) {
    let f = &scenario.faults;
    let roll: f64 = rng.random();
    let mut edge = 0.0;
    let mut fault = Fault::None;
    for (p, kind) in [
        (f.panic, Fault::Panic),
        (f.crash, Fault::Crash),
        (f.hang, Fault::Hang),
        (f.starve, Fault::Starve),
        (f.slow, Fault::Slow),
        (f.leak, Fault::Leak),
        (f.spin, Fault::Spin),
        (f.abort, Fault::Abort),
        (f.forget, Fault::Forget),
        (f.brake, Fault::Brake),
        (f.overflow, Fault::Overflow),
    ] {
        edge += p;
        if roll < edge {
            fault = kind;
            break;
        }
    }
    let priority = rng.random_range(0..20u8);
    if rng.random_bool(scenario.io_share) {
        let options = TaskOptions::priority(priority).with_dependency(DEPENDENCY);
        (Job::Fetch { fault }, options)
    } else {
        let job = Job::Predict {
            iterations: scenario.predict_iterations,
            fault,
        };
        (job, TaskOptions::priority(priority))
    }
}
