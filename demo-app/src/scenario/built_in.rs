//! The built-in scenarios.

use std::time::Duration;

use super::{Faults, Outage, Scenario};
use crate::DemoError;

/// Names of the built-in scenarios.
pub const BUILT_IN: [&str; 7] = [
    "calm",
    "chaos",
    "leak",
    "outage",
    "overload",
    "process-faults",
    "cluster",
];

impl Scenario {
    /// A built-in scenario by name.
    pub fn built_in(name: &str) -> Result<Self, DemoError> {
        let s = |secs: u64| Duration::from_secs(secs);
        let scenario = match name {
            "calm" => Scenario {
                name: "calm".into(),
                description: "steady prioritised work, no faults: every task completes on its first attempt".into(),
                ..Scenario::default()
            },
            "chaos" => Scenario {
                name: "chaos".into(),
                description: "every fault at once (panics, crashing workers, the silent hang, the starved thread, the slow task, the leak) plus a dependency outage; workers that escape them for 4 s are recycled by age, and no task is lost".into(),
                duration: s(25),
                rate: 120,
                faults: Faults {
                    panic: 0.02,
                    crash: 0.004,
                    hang: 0.004,
                    starve: 0.002,
                    slow: 0.01,
                    leak: 0.02,
                    ..Faults::default()
                },
                outage: Some(Outage {
                    start: s(8),
                    length: s(5),
                }),
                worker_memory_limit_mib: 48,
                // Its faults restart a worker every few seconds, so only an
                // age a worker can reach shows recycling (20 s never did).
                max_worker_age: Some(s(4)),
                ..Scenario::default()
            },
            "leak" => Scenario {
                name: "leak".into(),
                description: "workers leak real memory until the memory strategy restarts them and frees it".into(),
                duration: s(20),
                rate: 100,
                workers: 3,
                max_workers: 3,
                io_share: 0.0,
                faults: Faults {
                    leak: 0.06,
                    ..Faults::default()
                },
                leak_mib: 16,
                ..Scenario::default()
            },
            "outage" => Scenario {
                name: "outage".into(),
                description: "the dependency is down for 8 s: its breaker opens, probes half-open, and closes again".into(),
                duration: s(20),
                rate: 100,
                io_share: 0.7,
                outage: Some(Outage {
                    start: s(4),
                    length: s(8),
                }),
                ..Scenario::default()
            },
            "overload" => Scenario {
                name: "overload".into(),
                description: "far more work than the pool can take: backpressure refuses, autoscaling adds workers".into(),
                duration: s(15),
                rate: 1_500,
                workers: 2,
                max_workers: 6,
                queue_bound: 400,
                io_share: 0.0,
                predict_iterations: 3_000_000,
                ..Scenario::default()
            },
            "process-faults" => Scenario {
                name: "process-faults".into(),
                description: "faults no in-process worker survives (loop {} with no await, abort(), 256 MiB leaked for good, exit 42 after repeated brakes, a stack overflow): each costs one worker process, which is killed or reaped, measured and replaced, and no task is lost (needs --isolation process)".into(),
                duration: s(12),
                rate: 40,
                workers: 6,
                max_workers: 6,
                concurrency: 1,
                faults: Faults {
                    spin: 0.02,
                    abort: 0.02,
                    forget: 0.02,
                    brake: 0.02,
                    overflow: 0.02,
                    ..Faults::default()
                },
                // One leak takes a process far past its limit; even a leak
                // cut short by the task timeout (touching 256 MiB can take
                // a busy machine a second) takes it past.
                leak_mib: 256,
                worker_memory_limit_mib: 64,
                // A spinning task loses its process at 600 ms + the 250 ms
                // grace, before liveness's 1 s progress timeout finds it.
                task_timeout: Duration::from_millis(600),
                ..Scenario::default()
            },
            "cluster" => Scenario {
                name: "cluster".into(),
                description: "three node processes share a durable queue in PostgreSQL (needs --store); tasks panic, crash their workers or run slow, one node is killed with SIGKILL half way and replaced, its tasks are rescued when their leases expire, and no task is lost".into(),
                duration: s(12),
                rate: 200,
                workers: 2,
                max_workers: 2,
                nodes: 3,
                // Slow tasks hold their leases for a task timeout (1.5 s),
                // so the killed node takes a few with it.
                faults: Faults {
                    panic: 0.02,
                    crash: 0.004,
                    slow: 0.03,
                    ..Faults::default()
                },
                ..Scenario::default()
            },
            other => {
                return Err(DemoError::UnknownScenario {
                    name: other.to_owned(),
                    known: BUILT_IN.join(", "),
                })
            }
        };
        Ok(scenario)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_is_valid_at_every_suggested_scale() {
        for name in BUILT_IN {
            let s = Scenario::built_in(name).unwrap();
            s.validate().unwrap();
            for factor in [0.2, 0.3, 0.4, 1.0, 10.0] {
                s.shortened(factor)
                    .unwrap_or_else(|e| panic!("{name} × {factor}: {e}"));
            }
        }
        assert!(matches!(
            Scenario::built_in("nope"),
            Err(DemoError::UnknownScenario { .. })
        ));
    }

    /// The age restarts a run of `s` can expect, in a simple model: every
    /// worker is restarted by its faults at a steady rate (crashes, hangs and
    /// starved threads at once, leaks once `worker_memory_limit_mib` is
    /// reached), so an incarnation reaches `max_worker_age` with probability
    /// `e^(-rate × age)`.
    fn expected_age_restarts(s: &Scenario) -> f64 {
        let Some(age) = s.max_worker_age else {
            return 0.0;
        };
        let f = &s.faults;
        let leaks_to_restart = (s.worker_memory_limit_mib as f64 / s.leak_mib as f64).ceil();
        let per_task = f.crash + f.hang + f.starve + f.leak / leaks_to_restart;
        let hazard = f64::from(s.rate) * per_task / s.workers as f64;
        let reach = (-hazard * age.as_secs_f64()).exp();
        let mean_life = (1.0 - reach) / hazard;
        let incarnations = s.workers as f64 * s.duration.as_secs_f64() / mean_life;
        incarnations * reach
    }

    #[test]
    fn chaos_workers_live_long_enough_to_be_recycled_by_age() {
        let chaos = Scenario::built_in("chaos").unwrap();
        let expected = expected_age_restarts(&chaos);
        assert!(
            expected >= 3.0,
            "chaos's faults restart a worker long before `max_worker_age`: {expected:.2} age restarts expected"
        );
    }

    #[test]
    fn no_description_speaks_of_seeds() {
        for name in BUILT_IN {
            let s = Scenario::built_in(name).unwrap();
            assert!(!s.description.contains("seed"), "{name}: {}", s.description);
        }
    }
}
