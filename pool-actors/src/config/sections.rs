//! The strategy sections of a pool's config: worker restarts, liveness,
//! memory, breakers, heal limit and autoscaling.

use std::time::Duration;

use candado::{
    BackoffConfig, BreakerConfig, BreakerStrategyConfig, HealLimit, LivenessConfig, MemoryConfig,
};
use serde::{Deserialize, Serialize};

/// Restart policy of the pool's worker supervisor (see Candado's `Intensity`
/// and `BackoffConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestartSettings {
    /// Restarts allowed within `period` before the pool's supervisor gives up.
    pub max_restarts: u32,
    /// Intensity window.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// First restart delay.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Longest restart delay.
    #[serde(with = "humantime_serde")]
    pub backoff_cap: Duration,
}

impl Default for RestartSettings {
    fn default() -> Self {
        let backoff = BackoffConfig::default();
        Self {
            // A pool of many workers sees more independent failures than a
            // small tree: allow more before giving up.
            max_restarts: 50,
            period: Duration::from_secs(60),
            backoff_base: backoff.base,
            backoff_cap: backoff.cap,
        }
    }
}

/// Liveness knobs (see `candado::LivenessConfig`; same defaults, except that
/// stuck-work detection is off: enable `progress_timeout` when your tasks call
/// `TaskContext::progress` or `checkpoint`, otherwise any task longer than the
/// timeout would count as stuck. The per-task timeout bounds them anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LivenessSettings {
    /// Heartbeat interval (`"off"` disables heartbeats).
    #[serde(with = "super::off::duration")]
    pub heartbeat_interval: Option<Duration>,
    /// Silence that makes a zombie.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// Ping interval (`"off"` disables pings).
    #[serde(with = "super::off::duration")]
    pub ping_interval: Option<Duration>,
    /// Time to answer a ping.
    #[serde(with = "humantime_serde")]
    pub pong_timeout: Duration,
    /// Consecutive missed pongs that restart.
    pub miss_threshold: u32,
    /// Work without progress for this long is stuck (`"off"` disables).
    #[serde(with = "super::off::duration")]
    pub progress_timeout: Option<Duration>,
}

impl Default for LivenessSettings {
    fn default() -> Self {
        let c = LivenessConfig::default();
        Self {
            heartbeat_interval: c.heartbeat_interval,
            heartbeat_timeout: c.heartbeat_timeout,
            ping_interval: c.ping_interval,
            pong_timeout: c.pong_timeout,
            miss_threshold: c.miss_threshold,
            progress_timeout: None,
        }
    }
}

impl From<LivenessSettings> for LivenessConfig {
    fn from(s: LivenessSettings) -> Self {
        LivenessConfig {
            heartbeat_interval: s.heartbeat_interval,
            heartbeat_timeout: s.heartbeat_timeout,
            ping_interval: s.ping_interval,
            pong_timeout: s.pong_timeout,
            miss_threshold: s.miss_threshold,
            progress_timeout: s.progress_timeout,
        }
    }
}

/// Memory knobs (see `candado::MemoryConfig`; same defaults). Sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemorySettings {
    /// System memory in use (%) that degrades every worker.
    #[serde(with = "super::off::number")]
    pub warning_percent: Option<f64>,
    /// System memory in use (%) that restarts the victim.
    #[serde(with = "super::off::number")]
    pub critical_percent: Option<f64>,
    /// Process RSS that degrades every worker.
    #[serde(with = "super::off::number")]
    pub warning_rss: Option<u64>,
    /// Process RSS that restarts the victim.
    #[serde(with = "super::off::number")]
    pub critical_rss: Option<u64>,
    /// Reported worker memory that degrades it.
    #[serde(with = "super::off::number")]
    pub child_warning_bytes: Option<u64>,
    /// Reported worker memory that restarts it.
    #[serde(with = "super::off::number")]
    pub child_critical_bytes: Option<u64>,
    /// Emergency-brake floor of available system memory.
    #[serde(with = "super::off::number")]
    pub brake_floor: Option<u64>,
    /// Consecutive brakes that restart the victim.
    pub brake_limit: u32,
    /// Safe time that resets the brake count.
    #[serde(with = "humantime_serde")]
    pub brake_reset: Duration,
    /// Growth per minute that counts as a leak.
    #[serde(with = "super::off::number")]
    pub leak_rate_per_min: Option<u64>,
    /// Window of the leak rate.
    #[serde(with = "humantime_serde")]
    pub leak_window: Duration,
    /// Recycle workers older than this.
    #[serde(with = "super::off::duration")]
    pub max_age: Option<Duration>,
    /// Recycle workers after this many tasks.
    #[serde(with = "super::off::number")]
    pub max_tasks: Option<u64>,
}

impl Default for MemorySettings {
    fn default() -> Self {
        let c = MemoryConfig::default();
        Self {
            warning_percent: c.warning_percent,
            critical_percent: c.critical_percent,
            warning_rss: c.warning_rss,
            critical_rss: c.critical_rss,
            child_warning_bytes: c.child_warning_bytes,
            child_critical_bytes: c.child_critical_bytes,
            brake_floor: c.brake_floor,
            brake_limit: c.brake_limit,
            brake_reset: c.brake_reset,
            leak_rate_per_min: c.leak_rate_per_min,
            leak_window: c.leak_window,
            max_age: c.max_age,
            max_tasks: c.max_tasks,
        }
    }
}

impl From<MemorySettings> for MemoryConfig {
    fn from(s: MemorySettings) -> Self {
        MemoryConfig {
            warning_percent: s.warning_percent,
            critical_percent: s.critical_percent,
            warning_rss: s.warning_rss,
            critical_rss: s.critical_rss,
            child_warning_bytes: s.child_warning_bytes,
            child_critical_bytes: s.child_critical_bytes,
            brake_floor: s.brake_floor,
            brake_limit: s.brake_limit,
            brake_reset: s.brake_reset,
            leak_rate_per_min: s.leak_rate_per_min,
            leak_window: s.leak_window,
            max_age: s.max_age,
            max_tasks: s.max_tasks,
            ..MemoryConfig::default()
        }
    }
}

/// Circuit-breaker knobs, for worker and dependency breakers alike (see
/// `candado::BreakerConfig`; same defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Consecutive failures that open it.
    pub failure_threshold: u32,
    /// Failure rate that also opens it (`"off"` by default).
    #[serde(with = "super::off::number")]
    pub failure_rate: Option<f64>,
    /// Successful probes that close it.
    pub success_threshold: u32,
    /// Probes let through while half-open.
    pub half_open_probes: u32,
    /// First cooldown.
    #[serde(with = "humantime_serde")]
    pub cooldown_base: Duration,
    /// Longest cooldown.
    #[serde(with = "humantime_serde")]
    pub cooldown_cap: Duration,
    /// Closed time that resets the open count.
    #[serde(with = "humantime_serde")]
    pub stability_window: Duration,
    /// The most workers (in percent of the pool, rounded down) their
    /// breakers may take out of service at once, as Envoy's outlier
    /// detection bounds ejections. Past it, workers whose breakers are
    /// open keep taking work, so the pool never stops for its breakers
    /// alone. 0 turns worker ejection off; 100 allows every worker out.
    pub max_ejected_percent: u8,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        let c = BreakerConfig::default();
        Self {
            max_ejected_percent: 50,
            failure_threshold: c.failure_threshold,
            failure_rate: c.failure_rate,
            success_threshold: c.success_threshold,
            half_open_probes: c.half_open_probes,
            cooldown_base: c.cooldown_base,
            cooldown_cap: c.cooldown_cap,
            stability_window: c.stability_window,
        }
    }
}

impl From<BreakerSettings> for BreakerStrategyConfig {
    fn from(s: BreakerSettings) -> Self {
        let config = BreakerConfig {
            failure_threshold: s.failure_threshold,
            failure_rate: s.failure_rate,
            success_threshold: s.success_threshold,
            half_open_probes: s.half_open_probes,
            cooldown_base: s.cooldown_base,
            cooldown_cap: s.cooldown_cap,
            stability_window: s.stability_window,
            ..BreakerConfig::default()
        };
        BreakerStrategyConfig {
            child: config,
            dependency: config,
        }
    }
}

/// Heal-storm protection for strategy-ordered restarts (see `candado::HealLimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealLimitSettings {
    /// Restarts per worker per period.
    pub max: u32,
    /// The period.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// Minimum gap between two.
    #[serde(with = "humantime_serde")]
    pub min_gap: Duration,
}

impl Default for HealLimitSettings {
    fn default() -> Self {
        let h = HealLimit::default();
        Self {
            max: h.max,
            period: h.period,
            min_gap: h.min_gap,
        }
    }
}

/// Automatic scaling between `min_size` and `max_size` on queue depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoscaleSettings {
    /// How often the queue is looked at.
    #[serde(with = "humantime_serde")]
    pub check_every: Duration,
    /// Scale up by one when more than this many tasks wait per worker.
    pub queue_per_worker: usize,
    /// Scale down by one when nothing waited and some worker was idle for
    /// this many consecutive checks.
    pub idle_checks: u32,
}

impl Default for AutoscaleSettings {
    fn default() -> Self {
        Self {
            check_every: Duration::from_secs(5),
            queue_per_worker: 10,
            idle_checks: 6,
        }
    }
}
