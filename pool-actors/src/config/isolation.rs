//! Where a pool's handlers run: in the workers' actors (the default) or in
//! a process per worker (`isolation = "process"`, with the `[process]`
//! section's knobs).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the handler of each worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// In the worker's actor, on a worker thread (the default): the
    /// cheapest; a handler that never awaits can only be abandoned.
    #[default]
    InProcess,
    /// In an OS process of its own, one per worker incarnation: a hung,
    /// leaking or aborting handler costs one process, which is killed,
    /// measured and replaced. Needs the builder's
    /// [`process_worker`](crate::PoolBuilder::process_worker) and serde-able
    /// tasks and outputs; see `docs/process.md`.
    Process,
}

/// How a pool with `isolation = "process"` talks to and watches its worker
/// processes (the `[process]` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessSettings {
    /// How often each worker process heartbeats from its own thread
    /// (default 1 s). Keep it well under `liveness.heartbeat_timeout`.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How long a new process has to answer the handshake (default 10 s).
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// How often each process's RSS is measured for the memory strategy
    /// (default 1 s).
    #[serde(with = "humantime_serde")]
    pub memory_interval: Duration,
    /// The largest frame (an encoded task or output) either side may send
    /// (default 8 MiB).
    pub max_frame: usize,
    /// A task past its timeout whose process has not answered this much
    /// later (its handler ignored the cancellation) gets its process killed
    /// and replaced (default 1 s).
    #[serde(with = "humantime_serde")]
    pub timeout_grace: Duration,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        let options = candado_process::ProcessOptions::default();
        Self {
            heartbeat_interval: options.heartbeat_interval,
            handshake_timeout: options.handshake_timeout,
            memory_interval: options.memory_interval,
            max_frame: options.max_frame,
            timeout_grace: Duration::from_secs(1),
        }
    }
}

/// Intervals and timeouts longer than this are taken as this: a timer
/// cannot live with `Duration::MAX`, and a day is "never" here.
const LONGEST: Duration = Duration::from_secs(24 * 60 * 60);

impl ProcessSettings {
    pub(crate) fn options(&self) -> candado_process::ProcessOptions {
        candado_process::ProcessOptions::default()
            .heartbeat_interval(self.heartbeat_interval.min(LONGEST))
            .handshake_timeout(self.handshake_timeout.min(LONGEST))
            .memory_interval(self.memory_interval.min(LONGEST))
            .max_frame(self.max_frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_a_timer_cannot_live_with_are_taken_as_a_day() {
        let settings = ProcessSettings {
            heartbeat_interval: Duration::MAX,
            handshake_timeout: Duration::MAX,
            memory_interval: Duration::MAX,
            max_frame: usize::MAX,
            timeout_grace: Duration::MAX,
        };
        let options = settings.options();
        assert_eq!(options.heartbeat_interval, LONGEST);
        assert_eq!(options.handshake_timeout, LONGEST);
        assert_eq!(options.memory_interval, LONGEST);
        assert_eq!(options.max_frame, usize::MAX);
        // The grace goes through the pool's deadline arithmetic, which takes
        // any duration: a deadline at the far future, not an overflow.
        let now = tokio::time::Instant::now();
        let far = crate::deadline::after(now, crate::deadline::FAR_FUTURE);
        assert_eq!(
            crate::deadline::after(far, settings.timeout_grace),
            far + crate::deadline::FAR_FUTURE
        );
    }

    #[test]
    fn durations_within_a_day_are_kept_as_given() {
        let settings = ProcessSettings {
            heartbeat_interval: Duration::from_millis(250),
            memory_interval: LONGEST,
            ..ProcessSettings::default()
        };
        let options = settings.options();
        assert_eq!(options.heartbeat_interval, Duration::from_millis(250));
        assert_eq!(options.memory_interval, LONGEST);
        assert_eq!(
            options.handshake_timeout,
            ProcessSettings::default().handshake_timeout
        );
    }
}
