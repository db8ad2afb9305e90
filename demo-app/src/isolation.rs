//! `--isolation process`: the demo's workers run their tasks in processes of
//! the demo binary itself.
//!
//! The parent starts each worker process as `candado-demo` with two
//! environment variables: the pool's (`CANDADO_PROCESS_WORKER`, naming
//! [`WORKER_ENTRY`]) and the demo's own ([`SETTINGS_ENV`]: the workload's
//! settings, which a handler in another process cannot read from the
//! parent's memory). `main` calls [`serve_if_worker`] first thing; in a
//! worker process it serves tasks and never returns.

use std::sync::Arc;

use candado_pool::{Isolation, ProcessCommand};
use serde::{Deserialize, Serialize};

use crate::workload::{Dependency, Engine};
use crate::{bounds, DemoError, Faults, Scenario};

/// The name of the demo's worker entry point (the value of
/// `CANDADO_PROCESS_WORKER` in a worker process).
pub const WORKER_ENTRY: &str = "candado-demo-worker";

/// The environment variable that carries [`WorkerSettings`] (JSON) to a
/// worker process.
pub const SETTINGS_ENV: &str = "CANDADO_DEMO_WORKER_SETTINGS";

/// What a worker process's handler needs from the scenario: what
/// [`Engine::new`] takes in the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSettings {
    /// The flaky dependency, with its outage on the wall clock.
    pub dependency: Dependency,
    /// Memory a leaking task leaks, in MiB.
    pub leak_mib: u64,
}

impl WorkerSettings {
    /// A fresh handler with these settings.
    pub fn engine(&self) -> Engine {
        Engine::new(Arc::new(self.dependency.clone()), self.leak_mib)
    }
}

/// If this process was started as one of the demo's worker processes,
/// serves tasks until its parent closes the pipe, then exits; if it was
/// started as a node process of a durable run ([`NODE_ENV`](crate::NODE_ENV)),
/// runs the node until its parent closes its stdin, then exits; otherwise
/// returns at once. Call it first thing in `main`.
///
/// A worker process started without valid settings (only a broken parent
/// does that) ends at its first task with exit code 101 and a message
/// saying so in its stderr, which the parent puts in the exit reason.
pub fn serve_if_worker() {
    crate::durable::serve_if_node();
    candado_pool::run_if_process_worker(WORKER_ENTRY, || {
        let text = std::env::var(SETTINGS_ENV)
            .unwrap_or_else(|_| panic!("a demo worker process needs {SETTINGS_ENV}"));
        let settings: WorkerSettings = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{SETTINGS_ENV} is not worker settings: {e}"));
        settings.engine()
    });
}

/// The command that starts a worker process: this program, re-executed,
/// with `settings` in its environment.
pub(crate) fn worker_command(settings: &WorkerSettings) -> Result<ProcessCommand, DemoError> {
    let text = serde_json::to_string(settings).map_err(|e| DemoError::Worker(e.to_string()))?;
    let command = ProcessCommand::current_exe(WORKER_ENTRY)
        .map_err(|e| DemoError::Worker(format!("cannot find this program: {e}")))?;
    // Injected panics print no backtrace: symbolising one costs a debug
    // build about 0.2 s and 100 MiB of RSS, which the memory limit would
    // count against the process.
    Ok(command.env(SETTINGS_ENV, text).env("RUST_BACKTRACE", "0"))
}

/// The pool's shape for a scenario: `(size, max_size, concurrency)`. With
/// process isolation a worker process runs one task at a time, so each of
/// the scenario's task slots (`workers × concurrency`) is a process of its
/// own and the pool keeps the scenario's capacity.
pub(crate) fn shape(s: &Scenario, isolation: Isolation) -> (usize, usize, usize) {
    match isolation {
        Isolation::InProcess => (s.workers, s.max_workers, s.concurrency),
        Isolation::Process => (
            s.workers.saturating_mul(s.concurrency),
            s.max_workers.saturating_mul(s.concurrency),
            1,
        ),
    }
}

/// The faults only a worker process survives, each with what it would do
/// to the demo if a worker ran it in the demo's own process.
const PROCESS_ONLY: [(&str, &str); 5] = [
    (
        "faults.spin",
        "`loop {}` never yields, so it would hold a demo thread and a core for ever",
    ),
    (
        "faults.abort",
        "`abort()` would kill the demo with every task in flight",
    ),
    (
        "faults.forget",
        "memory leaked for good would stay in the demo, restarts or not",
    ),
    (
        "faults.brake",
        "exit 42 would end the demo with every task in flight",
    ),
    (
        "faults.overflow",
        "a stack overflow would abort the demo with every task in flight",
    ),
];

impl Faults {
    /// The faults set here (probability above 0) that only a worker process
    /// survives, by field: `faults.spin`, `faults.abort`, `faults.forget`,
    /// `faults.brake` and `faults.overflow`.
    pub fn process_only(&self) -> Vec<&'static str> {
        self.all()
            .into_iter()
            .filter(|(field, p)| *p > 0.0 && PROCESS_ONLY.iter().any(|(f, _)| f == field))
            .map(|(field, _)| field)
            .collect()
    }
}

/// Why each of `faults` needs process isolation, for people.
pub(crate) fn why_process_only(faults: &[&str]) -> String {
    faults
        .iter()
        .filter_map(|field| PROCESS_ONLY.iter().find(|(f, _)| f == field))
        .map(|(field, why)| format!("{field}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Scenario {
    /// Checks that this (valid) scenario can run with `isolation`. In the
    /// demo's process, it must inject none of the faults only a worker
    /// process survives ([`Faults::process_only`]):
    /// [`DemoError::NeedsProcessIsolation`]. With process isolation, its
    /// worker processes stay within [`bounds::PROCESSES`] and the memory
    /// they may leak within [`bounds::MAX_LEAKED_MIB`].
    pub fn check_isolation(&self, isolation: Isolation) -> Result<(), DemoError> {
        match isolation {
            Isolation::InProcess => {
                let faults = self.faults.process_only();
                if !faults.is_empty() {
                    return Err(DemoError::NeedsProcessIsolation {
                        scenario: self.name.clone(),
                        faults,
                    });
                }
            }
            Isolation::Process => {
                let (_, processes, _) = shape(self, isolation);
                bounds::check_processes(self, processes)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_only_faults_are_refused_in_process_naming_each() {
        let s = Scenario::built_in("process-faults").unwrap();
        let err = s.check_isolation(Isolation::InProcess).unwrap_err();
        let DemoError::NeedsProcessIsolation { faults, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(
            faults,
            &[
                "faults.spin",
                "faults.abort",
                "faults.forget",
                "faults.brake",
                "faults.overflow"
            ]
        );
        let text = err.to_string();
        assert!(text.contains("--isolation process"), "{text}");
        assert!(text.contains("`loop {}` never yields"), "{text}");
        s.check_isolation(Isolation::Process).unwrap();
        for name in crate::BUILT_IN.iter().filter(|n| **n != "process-faults") {
            let s = Scenario::built_in(name).unwrap();
            s.check_isolation(Isolation::InProcess).unwrap();
            s.check_isolation(Isolation::Process).unwrap();
        }
    }

    #[test]
    fn each_task_slot_is_a_process_and_their_number_is_bounded() {
        let s = Scenario::built_in("overload").unwrap();
        assert_eq!(shape(&s, Isolation::InProcess), (2, 6, 2));
        assert_eq!(shape(&s, Isolation::Process), (4, 12, 1));
        let many = Scenario {
            max_workers: 40,
            concurrency: 2,
            ..Scenario::default()
        };
        many.validate().unwrap();
        let err = many.check_isolation(Isolation::Process).unwrap_err();
        assert!(err.to_string().contains("`concurrency`"), "{err}");
    }
}
