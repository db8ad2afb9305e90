//! Where memory numbers come from: `sysinfo`, or a value a test sets.

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One reading of the process's and the system's memory, in bytes.
///
/// Inside a container the host's figures say little: a pod limited to 2 GiB
/// on a 64 GiB host is killed by the kernel long before the host looks busy.
/// So when the sample carries a [`CgroupMemory`] whose limit is below the
/// host's total, [`used_percent`](Self::used_percent) and
/// [`available`](Self::available) judge against the limit instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemorySample {
    /// Resident set size of this process.
    pub process_rss: u64,
    /// Memory the host can still hand out.
    pub system_available: u64,
    /// Total memory of the host.
    pub system_total: u64,
    /// The memory cgroup this process runs in, if the platform has one
    /// (Linux with cgroups v1 or v2; `None` elsewhere).
    #[serde(default)]
    pub cgroup: Option<CgroupMemory>,
}

/// The memory limit of the cgroup (container) a process runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CgroupMemory {
    /// The limit in bytes; `u64::MAX` when the cgroup has none (`max`).
    pub limit: u64,
    /// The limit minus what the cgroup uses now.
    pub available: u64,
}

impl MemorySample {
    /// The cgroup limit, when there is one below the host's total (an
    /// unlimited cgroup, `u64::MAX`, or one larger than the host, counts as
    /// none).
    pub fn cgroup_limit(&self) -> Option<u64> {
        self.cgroup
            .map(|c| c.limit)
            .filter(|&limit| limit < self.system_total || self.system_total == 0)
            .filter(|&limit| limit != u64::MAX)
    }

    /// What the figures are judged against, for messages: `"container memory"`
    /// under a cgroup limit, else `"system memory"`.
    pub fn scope(&self) -> &'static str {
        if self.cgroup_limit().is_some() {
            "container memory"
        } else {
            "system memory"
        }
    }

    /// The memory judged against: the cgroup limit if there is one, else
    /// the host's total.
    pub fn total(&self) -> u64 {
        self.cgroup_limit().unwrap_or(self.system_total)
    }

    /// Memory still available: within the cgroup limit if there is one
    /// (and never more than the host has), else the host's.
    pub fn available(&self) -> u64 {
        match (self.cgroup_limit(), self.cgroup) {
            (Some(_), Some(c)) => c.available.min(self.system_available),
            _ => self.system_available,
        }
    }

    /// Share of memory in use, 0.0..=100.0, against [`total`](Self::total)
    /// (0 if the total is unknown).
    ///
    /// ```
    /// use candado::{CgroupMemory, MemorySample};
    /// let gib = 1 << 30;
    /// let host = MemorySample { process_rss: 0, system_available: 60 * gib, system_total: 64 * gib, cgroup: None };
    /// assert_eq!(host.used_percent(), 6.25);
    /// // The same host, inside a container limited to 2 GiB of which 1.5 are used:
    /// let pod = MemorySample { cgroup: Some(CgroupMemory { limit: 2 * gib, available: gib / 2 }), ..host };
    /// assert_eq!(pod.used_percent(), 75.0);
    /// ```
    pub fn used_percent(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let used = total.saturating_sub(self.available());
        used as f64 * 100.0 / total as f64
    }
}

/// A source of [`MemorySample`]s. Called on the control thread once per
/// supervisor tick: it must be quick.
pub trait MemorySampler: Send + Sync + fmt::Debug + 'static {
    /// Takes a reading.
    fn sample(&self) -> MemorySample;
}

/// Reads the machine with `sysinfo`: this process's RSS, the host's
/// available and total memory, and the memory cgroup's limit and usage
/// (`System::cgroup_limits`, Linux only; `None` elsewhere or outside any
/// memory cgroup).
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
        let system_total = system.total_memory();
        // sysinfo reports an unlimited cgroup as the host's total; that is
        // no limit to judge against. (It asserts a known host total first.)
        let cgroup = (system_total > 0)
            .then(|| system.cgroup_limits())
            .flatten()
            .filter(|limits| limits.total_memory < system_total)
            .map(|limits| CgroupMemory {
                limit: limits.total_memory,
                available: limits.free_memory,
            });
        MemorySample {
            process_rss,
            system_available: system.available_memory(),
            system_total,
            cgroup,
        }
    }
}

/// A sampler that returns whatever was last [`set`](Self::set): for tests, or
/// for applications that measure memory themselves (e.g. from cgroups).
/// Clones share the value.
///
/// ```
/// use candado::{FixedSampler, MemorySample, MemorySampler};
/// let sampler = FixedSampler::new(MemorySample { process_rss: 1, system_available: 2, system_total: 4, cgroup: None });
/// let handle = sampler.clone();
/// handle.set(MemorySample { process_rss: 3, system_available: 1, system_total: 4, cgroup: None });
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
        assert!(s.available() <= s.total());
        if let Some(limit) = s.cgroup_limit() {
            assert!(limit < s.system_total);
        }
    }
}
