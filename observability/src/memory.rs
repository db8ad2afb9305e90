//! The measured RSS of process workers.
//!
//! A process worker (`candado_process::ProcessChild`) measures its process's
//! RSS and reports it with [`ChildLink::set_memory`](candado::ChildLink::set_memory),
//! with its pid as the application counter `pid`. Neither tree snapshots
//! nor events carry these figures: only heartbeats do, and only a
//! supervisor's health strategies see heartbeats. So the readings are taken
//! by a strategy that never judges, [`MemoryProbe`], added to each
//! supervisor of process workers.
//!
//! The workers of a `candado-pool` pool with process isolation are
//! supervised by the pool's own supervisor, whose strategies come from the
//! pool's config: their RSS is not reachable this way.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use candado::{Decisions, HealthStrategy, Signal};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;
use tokio::time::Instant;

use crate::encode::{family_in, gauges};

/// The application counter a process worker reports its pid in.
const PID_COUNTER: &str = "pid";

/// Readings by (supervisor path, child id).
type Readings = Arc<Mutex<BTreeMap<(String, String), u64>>>;

/// The latest RSS of each process worker, shared by the [`MemoryProbe`]s
/// that take the readings and the [`Observer`](crate::Observer) that
/// exports them (`candado_process_rss_bytes`). Cheap to clone.
///
/// ```
/// use candado::SupervisorSpec;
/// use candado_observe::ProcessMemory;
///
/// let memory = ProcessMemory::new();
/// // The probe must know the path of the supervisor it is added to.
/// let spec = SupervisorSpec::new("workers").health(memory.probe("workers"));
/// assert!(spec.validate().is_ok());
/// // ... then `Observer::builder(&runtime).process_memory(&memory)`.
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProcessMemory {
    readings: Readings,
}

impl ProcessMemory {
    /// An empty set of readings.
    pub fn new() -> Self {
        Self::default()
    }

    /// A probe to add to the supervisor at `supervisor` (its path, e.g.
    /// `app/workers`) with [`SupervisorSpec::health`](candado::SupervisorSpec::health).
    pub fn probe(&self, supervisor: impl Into<String>) -> MemoryProbe {
        MemoryProbe {
            supervisor: supervisor.into(),
            readings: self.readings.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), u64>> {
        self.readings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every reading: (supervisor path, child id, bytes), in that order.
    pub(crate) fn readings(&self) -> Vec<(String, String, u64)> {
        self.lock()
            .iter()
            .map(|((supervisor, child), bytes)| (supervisor.clone(), child.clone(), *bytes))
            .collect()
    }
}

/// A health strategy that never judges: it records the RSS that process
/// workers report with their heartbeats, and forgets a worker when its
/// incarnation ends. Made by [`ProcessMemory::probe`].
///
/// It asks for no heartbeats of its own ([`Wants`](candado::Wants) default):
/// a process worker's heartbeats are its process's, sent whatever the
/// supervisor's strategies want. Children that report no `pid` counter
/// (in-process workers) are left out.
#[derive(Debug, Clone)]
pub struct MemoryProbe {
    supervisor: String,
    readings: Readings,
}

impl MemoryProbe {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), u64>> {
        self.readings.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HealthStrategy for MemoryProbe {
    fn name(&self) -> &str {
        "memory-probe"
    }

    fn on_signal(&mut self, _now: Instant, child: &str, signal: &Signal, _out: &mut Decisions) {
        let key = || (self.supervisor.clone(), child.to_owned());
        match signal {
            Signal::Heartbeat(metrics) if metrics.counters.contains_key(PID_COUNTER) => {
                if let Some(bytes) = metrics.memory_bytes {
                    self.lock().insert(key(), bytes);
                }
            }
            Signal::Started { .. } | Signal::Exited { .. } => {
                self.lock().remove(&key());
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, _now: Instant, _out: &mut Decisions) {}
}

/// Writes `candado_process_rss_bytes` from (supervisor, child, bytes) readings.
pub(crate) fn encode(
    readings: &[(String, String, u64)],
    encoder: &mut DescriptorEncoder<'_>,
) -> fmt::Result {
    let family = family_in(
        "process_rss",
        "Resident set size of a process worker, as last measured.",
        &Unit::Bytes,
    );
    let samples = readings.iter().map(|(supervisor, child, bytes)| {
        let labels = [
            ("supervisor", supervisor.as_str()),
            ("child", child.as_str()),
        ];
        (labels, *bytes)
    });
    gauges(encoder, family, samples)
}

#[cfg(test)]
mod tests {
    use candado::{ExitReason, Metrics};

    use super::*;

    fn beat(memory: Option<u64>, pid: Option<u64>) -> Signal {
        let mut metrics = Metrics {
            memory_bytes: memory,
            ..Metrics::default()
        };
        if let Some(pid) = pid {
            metrics.counters.insert(PID_COUNTER.into(), pid);
        }
        Signal::Heartbeat(metrics)
    }

    #[test]
    fn process_workers_are_read_and_forgotten_when_their_incarnation_ends() {
        let memory = ProcessMemory::new();
        let mut probe = memory.probe("app/procs");
        let (now, mut out) = (Instant::now(), Decisions::default());
        probe.on_signal(now, "p1", &beat(Some(1_000), Some(42)), &mut out);
        probe.on_signal(now, "p1", &beat(Some(2_000), Some(42)), &mut out);
        probe.on_signal(now, "inproc", &beat(Some(5), None), &mut out);
        probe.on_signal(now, "p2", &beat(None, Some(43)), &mut out);
        assert_eq!(
            memory.readings(),
            [("app/procs".into(), "p1".into(), 2_000)]
        );
        assert!(out.is_empty(), "a probe never judges");

        let exited = Signal::Exited {
            reason: ExitReason::Killed,
        };
        probe.on_signal(now, "p1", &exited, &mut out);
        assert!(memory.readings().is_empty());
    }
}
