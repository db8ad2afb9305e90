//! Scenarios: what the demo submits and which faults it injects.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{bounds, DemoError, ScenarioError};

/// Probability, per task, of each injected fault. Faults hit a task's first
/// attempt only (they are transient), so retries show recovery.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The task panics (fails its attempt; the worker lives on).
    pub panic: f64,
    /// The handler panics outside the task: the worker itself crashes and is
    /// restarted (restart reason `panic`).
    pub crash: f64,
    /// The task hangs without progress: liveness finds it stuck and restarts
    /// the worker (reason `liveness`).
    pub hang: f64,
    /// The task runs an unchunked CPU loop that starves its worker's thread:
    /// heartbeats stop, the worker is restarted elsewhere (reason `liveness`)
    /// and the thread is reported stuck until it returns.
    pub starve: f64,
    /// The task is slow but alive and runs past its timeout (attempt cancelled).
    pub slow: f64,
    /// The task leaks memory into its worker (real and reported), until the
    /// memory strategy restarts the worker (reason `memory`).
    pub leak: f64,
}

/// A window in which the flaky dependency is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// When it goes down, from the start of the run.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    /// How long it stays down.
    #[serde(with = "humantime_serde")]
    pub length: Duration,
}

/// One demo run. Deserialises from TOML (`--scenario-file`); missing fields
/// take the `calm` values, unknown fields are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in the report.
    pub name: String,
    /// One line on what to watch.
    pub description: String,
    /// How long tasks are submitted.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Tasks submitted per second.
    pub rate: u32,
    /// Workers at start.
    pub workers: usize,
    /// Upper bound for autoscaling (equal to `workers`: no autoscaling).
    pub max_workers: usize,
    /// Tasks per worker at once.
    pub concurrency: usize,
    /// Waiting tasks before submissions are refused (backpressure).
    pub queue_bound: usize,
    /// Share of tasks that call the flaky dependency (the rest are CPU "predictions").
    pub io_share: f64,
    /// Iterations of a prediction (CPU work, chunked with `checkpoint`).
    pub predict_iterations: u32,
    /// Injected faults.
    pub faults: Faults,
    /// When the dependency is down, if ever.
    pub outage: Option<Outage>,
    /// Memory a leaking task adds to its worker, in MiB.
    pub leak_mib: u64,
    /// Memory a worker may report before it is restarted, in MiB.
    pub worker_memory_limit_mib: u64,
    /// Workers older than this are recycled (restart reason `age`).
    #[serde(with = "humantime_serde")]
    pub max_worker_age: Option<Duration>,
    /// Per-attempt timeout.
    #[serde(with = "humantime_serde")]
    pub task_timeout: Duration,
    /// Graceful-shutdown deadline after the last submission.
    #[serde(with = "humantime_serde")]
    pub drain_deadline: Duration,
    /// Seed of the task stream and its faults.
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "custom".into(),
            description: "a custom scenario".into(),
            duration: Duration::from_secs(8),
            rate: 150,
            workers: 4,
            max_workers: 4,
            concurrency: 2,
            queue_bound: 5_000,
            io_share: 0.3,
            predict_iterations: 20_000,
            faults: Faults::default(),
            outage: None,
            leak_mib: 8,
            worker_memory_limit_mib: 96,
            max_worker_age: None,
            task_timeout: Duration::from_millis(1_500),
            drain_deadline: Duration::from_secs(20),
            seed: 7,
        }
    }
}

/// Names of the built-in scenarios.
pub const BUILT_IN: [&str; 5] = ["calm", "chaos", "leak", "outage", "overload"];

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
            other => {
                return Err(DemoError::UnknownScenario {
                    name: other.to_owned(),
                    known: BUILT_IN.join(", "),
                })
            }
        };
        Ok(scenario)
    }

    /// Parses a TOML scenario and validates it.
    pub fn from_toml(text: &str) -> Result<Self, DemoError> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|e| DemoError::ScenarioFile(e.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The same scenario with its timeline — `duration`, the outage and
    /// `max_worker_age` — scaled by `factor` (for quick runs), and validated:
    /// a scaled duration past the clock's range is an error, not a panic.
    pub fn shortened(&self, factor: f64) -> Result<Self, ScenarioError> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(ScenarioError::Scale { factor });
        }
        let outage = match self.outage {
            Some(o) => Some(Outage {
                start: bounds::scale("outage.start", o.start, factor)?,
                length: bounds::scale("outage.length", o.length, factor)?,
            }),
            None => None,
        };
        let max_worker_age = match self.max_worker_age {
            Some(age) => Some(bounds::scale("max_worker_age", age, factor)?),
            None => None,
        };
        let scaled = Scenario {
            duration: bounds::scale("duration", self.duration, factor)?,
            outage,
            max_worker_age,
            ..self.clone()
        };
        scaled.validate()?;
        Ok(scaled)
    }

    /// Checks every field against its bound in [`crate::bounds`]; the error
    /// names the first bad one.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        bounds::check(self)
    }

    /// The tasks this scenario submits (`rate × duration`, rounded down),
    /// accepted or refused by backpressure. Saturates for an invalid scenario.
    pub fn task_count(&self) -> u64 {
        bounds::task_count(self.rate, self.duration).unwrap_or(u64::MAX)
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

    #[test]
    fn files_parse_and_errors_name_the_field() {
        let s = Scenario::from_toml("name = \"mine\"\nrate = 10\n[faults]\npanic = 0.1\n[outage]\nstart = \"1s\"\nlength = \"2s\"").unwrap();
        assert_eq!((s.rate, s.faults.panic), (10, 0.1));
        let err = Scenario::from_toml("[faults]\npanic = 1.5").unwrap_err();
        assert!(err.to_string().contains("faults.panic"), "{err}");
        assert!(matches!(
            Scenario::from_toml("rate = \"fast\""),
            Err(DemoError::ScenarioFile(_))
        ));
        assert!(matches!(
            Scenario::from_toml("colour = 1"),
            Err(DemoError::ScenarioFile(_))
        ));
    }

    fn field_of(err: ScenarioError) -> &'static str {
        err.field()
    }

    #[test]
    fn hostile_values_are_refused_naming_the_field() {
        let base = Scenario::default();
        let huge = Duration::from_secs(u64::MAX);
        let cases: Vec<(&str, Scenario)> = vec![
            (
                "workers",
                Scenario {
                    workers: 1_000_000,
                    max_workers: 1_000_000,
                    ..base.clone()
                },
            ),
            (
                "leak_mib",
                Scenario {
                    leak_mib: 102_400,
                    ..base.clone()
                },
            ),
            (
                "worker_memory_limit_mib",
                Scenario {
                    worker_memory_limit_mib: u64::MAX / 1024,
                    ..base.clone()
                },
            ),
            (
                "max_worker_age",
                Scenario {
                    max_worker_age: Some(huge),
                    ..base.clone()
                },
            ),
            (
                "outage.start",
                Scenario {
                    outage: Some(Outage {
                        start: huge,
                        length: Duration::from_secs(1),
                    }),
                    ..base.clone()
                },
            ),
            (
                "rate",
                Scenario {
                    rate: u32::MAX,
                    ..base.clone()
                },
            ),
            (
                "queue_bound",
                Scenario {
                    queue_bound: usize::MAX,
                    ..base.clone()
                },
            ),
            (
                "concurrency",
                Scenario {
                    concurrency: 1_000_000,
                    ..base.clone()
                },
            ),
            (
                "io_share",
                Scenario {
                    io_share: f64::NAN,
                    ..base.clone()
                },
            ),
            (
                "task_timeout",
                Scenario {
                    task_timeout: huge,
                    ..base.clone()
                },
            ),
            (
                "drain_deadline",
                Scenario {
                    drain_deadline: huge,
                    ..base.clone()
                },
            ),
        ];
        for (field, scenario) in cases {
            let err = scenario.validate().expect_err(field);
            assert_eq!(field_of(err), field);
        }
    }

    #[test]
    fn scaling_a_huge_duration_is_an_error_not_a_panic() {
        let s = Scenario {
            outage: Some(Outage {
                start: Duration::from_secs(u64::MAX),
                length: Duration::from_secs(1),
            }),
            max_worker_age: Some(Duration::from_secs(u64::MAX)),
            ..Scenario::default()
        };
        let err = s.shortened(2.0).expect_err("past the clock");
        assert!(
            matches!(
                err,
                ScenarioError::ScaledPastClock {
                    field: "outage.start",
                    ..
                }
            ),
            "{err}"
        );
        let err = Scenario::default().shortened(f64::NAN).unwrap_err();
        assert_eq!(err.field(), "time_scale");
        let err = Scenario::default().shortened(1e-9).unwrap_err();
        assert_eq!(err.field(), "duration", "scaled below its bound");
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
