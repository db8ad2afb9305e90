//! Where memory numbers come from: `sysinfo`, or a value a test sets.

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One reading of the process's and the system's memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemorySample {
    /// Resident set size of this process.
    pub process_rss: u64,
    /// Memory the system can still hand out.
    pub system_available: u64,
    /// Total memory of the system.
    pub system_total: u64,
}

impl MemorySample {
    /// Share of system memory in use, 0.0..=100.0 (0 if the total is unknown).
    pub fn used_percent(&self) -> f64 {
        if self.system_total == 0 {
            return 0.0;
        }
        let used = self.system_total.saturating_sub(self.system_available);
        used as f64 * 100.0 / self.system_total as f64
    }
}

/// A source of [`MemorySample`]s. Called on the control thread once per
/// supervisor tick: it must be quick.
pub trait MemorySampler: Send + Sync + fmt::Debug + 'static {
    /// Takes a reading.
    fn sample(&self) -> MemorySample;
}

/// Reads the machine with `sysinfo`: this process's RSS and the system's
/// available and total memory.
pub struct SystemSampler {
    system: Mutex<System>,
    pid: Option<Pid>,
}

impl SystemSampler {
    /// A sampler for the current process.
    pub fn new() -> Self {
        Self {
            system: Mutex::new(System::new()),
            pid: sysinfo::get_current_pid().ok(),
        }
    }
}

impl Default for SystemSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SystemSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemSampler")
            .field("pid", &self.pid)
            .finish()
    }
}

impl MemorySampler for SystemSampler {
    fn sample(&self) -> MemorySample {
        let mut system = self.system.lock().unwrap_or_else(|p| p.into_inner());
        system.refresh_memory();
        let process_rss = self.pid.map_or(0, |pid| {
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                false,
                ProcessRefreshKind::nothing().with_memory(),
            );
            system.process(pid).map_or(0, |p| p.memory())
        });
        MemorySample {
            process_rss,
            system_available: system.available_memory(),
            system_total: system.total_memory(),
        }
    }
}

/// A sampler that returns whatever was last [`set`](Self::set): for tests, or
/// for applications that measure memory themselves (e.g. from cgroups).
/// Clones share the value.
///
/// ```
/// use candado::{FixedSampler, MemorySample, MemorySampler};
/// let sampler = FixedSampler::new(MemorySample { process_rss: 1, system_available: 2, system_total: 4 });
/// let handle = sampler.clone();
/// handle.set(MemorySample { process_rss: 3, system_available: 1, system_total: 4 });
/// assert_eq!(sampler.sample().used_percent(), 75.0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FixedSampler {
    value: Arc<Mutex<MemorySample>>,
}

impl FixedSampler {
    /// A sampler returning `sample` until told otherwise.
    pub fn new(sample: MemorySample) -> Self {
        Self {
            value: Arc::new(Mutex::new(sample)),
        }
    }

    /// Changes the value every clone returns from now on.
    pub fn set(&self, sample: MemorySample) {
        *self.value.lock().unwrap_or_else(|p| p.into_inner()) = sample;
    }
}

impl MemorySampler for FixedSampler {
    fn sample(&self) -> MemorySample {
        *self.value.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_sampler_reads_something_plausible() {
        let s = SystemSampler::new().sample();
        assert!(s.system_total > 0);
        assert!(s.system_available <= s.system_total);
        assert!(s.process_rss > 0);
    }
}
