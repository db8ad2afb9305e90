//! Scenarios: what the demo submits and which faults it injects.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{bounds, DemoError, ScenarioError};

mod built_in;
pub use built_in::BUILT_IN;

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
    /// The task spins in `loop {}` with no await: its process is killed
    /// when the task's timeout and `process.timeout_grace` have passed.
    /// Process isolation only, as are the four below.
    pub spin: f64,
    /// The task calls `std::process::abort()`: its process dies of SIGABRT.
    pub abort: f64,
    /// The task leaks `leak_mib` MiB for good (`std::mem::forget`, pages
    /// touched): the memory strategy kills the process by its measured RSS.
    pub forget: f64,
    /// The task brakes 5 times in a row, then its process exits with code
    /// 42 (`candado_process::brake()`), asking for a fresh one.
    pub brake: f64,
    /// The task recurses without end: its thread's stack overflows and the
    /// process aborts.
    pub overflow: f64,
}

impl Faults {
    /// Every fault's probability, with its field as spelled in a scenario
    /// file (`faults.panic`, ...).
    pub fn all(&self) -> [(&'static str, f64); 11] {
        [
            ("faults.panic", self.panic),
            ("faults.crash", self.crash),
            ("faults.hang", self.hang),
            ("faults.starve", self.starve),
            ("faults.slow", self.slow),
            ("faults.leak", self.leak),
            ("faults.spin", self.spin),
            ("faults.abort", self.abort),
            ("faults.forget", self.forget),
            ("faults.brake", self.brake),
            ("faults.overflow", self.overflow),
        ]
    }
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
    /// Nodes sharing the durable queue (needs `--store`). Above 1, each is
    /// a process of its own (the demo binary, re-executed) with a pool of
    /// `workers`, and one is killed with SIGKILL mid-run and replaced.
    pub nodes: usize,
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
            nodes: 1,
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

impl Scenario {
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
}
