//! The demo's work: CPU "predictions", calls to a flaky dependency, and the
//! faults a scenario injects into them.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use candado_pool::{TaskContext, TaskHandler, TaskOptions};
use rand::rngs::SmallRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::bounds::MIB;
use crate::scenario::{Outage, Scenario};

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

/// Runs demo jobs. Holds the memory its leaking tasks left behind, so a
/// restart (a fresh handler) is what frees it.
#[derive(Debug)]
pub struct Engine {
    dependency: Arc<Dependency>,
    leaked: Vec<Vec<u8>>,
    leak_mib: u64,
}

impl Engine {
    /// A fresh engine (one per worker incarnation).
    pub fn new(dependency: Arc<Dependency>, leak_mib: u64) -> Self {
        Self {
            dependency,
            leaked: Vec::new(),
            leak_mib,
        }
    }
}

impl TaskHandler for Engine {
    type Task = Job;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        job: Job,
        mut ctx: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        let fault = if ctx.attempt() == 1 {
            job.fault()
        } else {
            Fault::None
        };
        match fault {
            Fault::Crash => panic!("worker crash injected by the demo"),
            Fault::Starve => {
                // An unchunked CPU loop: nothing else runs on this thread meanwhile.
                let until = std::time::Instant::now() + Duration::from_millis(2_500);
                let mut x = 0u64;
                while std::time::Instant::now() < until {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                std::hint::black_box(x);
            }
            Fault::Leak => {
                // Real memory (pages touched), and reported to the supervisor.
                // A leak the allocator refuses is skipped, not an abort.
                let bytes =
                    usize::try_from(self.leak_mib.saturating_mul(MIB)).unwrap_or(usize::MAX);
                let mut leak = Vec::new();
                match leak.try_reserve_exact(bytes) {
                    Ok(()) => {
                        leak.resize(bytes, 1u8);
                        self.leaked.push(leak);
                    }
                    Err(error) => tracing::warn!(%error, bytes, "injected leak refused"),
                }
                let held: usize = self.leaked.iter().map(Vec::len).sum();
                ctx.report_memory(held as u64);
            }
            _ => {}
        }
        let dependency = self.dependency.clone();
        async move {
            match fault {
                Fault::Panic => panic!("task panic injected by the demo"),
                Fault::Hang => std::future::pending::<()>().await,
                Fault::Slow => loop {
                    // Alive and reporting progress, just too slow.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    ctx.progress();
                },
                _ => {}
            }
            match job {
                Job::Predict { iterations, .. } => {
                    let mut acc = 0u64;
                    for i in 0..iterations {
                        acc = acc.wrapping_add(u64::from(i).wrapping_mul(2654435761) % 1009);
                        ctx.checkpoint().await;
                    }
                    Ok(acc)
                }
                Job::Fetch { .. } => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if dependency.is_down(SystemTime::now()) {
                        Err(format!("{DEPENDENCY} is down"))
                    } else {
                        Ok(1)
                    }
                }
            }
        }
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
