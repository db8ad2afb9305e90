//! The strategy sections of a pool's config. Each is Candado's own config
//! (which reads itself from TOML with the `serde` feature), so a knob is
//! defined once, in the framework; the pool only adds what is its own
//! (`max_ejected_percent`, autoscaling) and states where its defaults
//! differ, in one list per section ([`PoolDefault::DIFFERENCES`]).

use std::time::Duration;

use candado::{
    BackoffConfig, BreakerConfig, BreakerStrategyConfig, HealLimit, Intensity, LivenessConfig,
    MemoryConfig,
};
use serde::{Deserialize, Serialize};

use super::RateLimitSettings;

/// One knob whose pool default differs from Candado's: its serde name, and
/// the function that sets the pool's value.
pub type Difference<T> = (&'static str, fn(&mut T));

/// A section whose default in a pool differs from Candado's default in a
/// few knobs, listed in [`DIFFERENCES`](Self::DIFFERENCES). A key missing
/// from a section the user wrote takes the pool's default too.
///
/// ```
/// use candado::LivenessConfig;
/// use candado_pool::{PoolConfig, PoolDefault};
///
/// // Stuck-work detection is off in a pool (tasks rarely report progress).
/// assert_eq!(LivenessConfig::pool_default().progress_timeout, None);
/// assert!(LivenessConfig::default().progress_timeout.is_some());
/// let config = PoolConfig::from_toml("[liveness]\nheartbeat_timeout = \"20s\"").unwrap();
/// assert_eq!(config.liveness.unwrap().progress_timeout, None);
/// ```
pub trait PoolDefault: Sized + 'static {
    /// Knobs (by their serde name) whose pool default differs from
    /// Candado's, each with the function that sets the pool's value.
    const DIFFERENCES: &'static [Difference<Self>];

    /// Candado's default, before the pool's differences.
    fn framework_default() -> Self;

    /// The pool's default: Candado's with [`DIFFERENCES`](Self::DIFFERENCES) applied.
    fn pool_default() -> Self {
        let mut value = Self::framework_default();
        for (_, set) in Self::DIFFERENCES {
            set(&mut value);
        }
        value
    }
}

/// Same defaults as Candado's, except:
impl PoolDefault for LivenessConfig {
    /// `progress_timeout` is off: enable it when your tasks call
    /// `TaskContext::progress` or `checkpoint`, otherwise any task longer
    /// than the timeout would count as stuck (the per-task timeout bounds
    /// them anyway).
    const DIFFERENCES: &'static [Difference<Self>] =
        &[("progress_timeout", |c| c.progress_timeout = None)];

    fn framework_default() -> Self {
        Self::default()
    }
}

/// Same defaults as Candado's.
impl PoolDefault for MemoryConfig {
    const DIFFERENCES: &'static [Difference<Self>] = &[];

    fn framework_default() -> Self {
        Self::default()
    }
}

/// Restart policy of the pool's worker supervisor: Candado's [`Intensity`]
/// and [`BackoffConfig`] side by side in one `[restart]` table
/// (`max_restarts`, `period`, `base`, `cap`, `multiplier`, `delays`,
/// `jitter`, `stability_window`; `backoff_base` and `backoff_cap` are the
/// older names of `base` and `cap`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestartSettings {
    /// Restarts allowed within a period before the pool's supervisor gives up.
    #[serde(flatten)]
    pub intensity: Intensity,
    /// Delays between restarts of one worker.
    #[serde(flatten)]
    pub backoff: BackoffConfig,
}

/// Candado's defaults, except:
impl PoolDefault for RestartSettings {
    /// A pool of many workers sees more independent failures than a small
    /// tree: it allows 50 restarts in 60 s (Candado: 5 in 30 s).
    const DIFFERENCES: &'static [Difference<Self>] = &[
        ("max_restarts", |r| r.intensity.max_restarts = 50),
        ("period", |r| r.intensity.period = Duration::from_secs(60)),
    ];

    fn framework_default() -> Self {
        Self {
            intensity: Intensity::default(),
            backoff: BackoffConfig::default(),
        }
    }
}

impl Default for RestartSettings {
    fn default() -> Self {
        Self::pool_default()
    }
}

/// Circuit breakers, per worker and per dependency alike: Candado's
/// [`BreakerConfig`] (its keys at the top of the `[breaker]` table) and
/// the pool's ejection bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// The knobs of every breaker.
    #[serde(flatten)]
    pub config: BreakerConfig,
    /// The most workers (in percent of the pool, rounded down) their
    /// breakers may take out of service at once, as Envoy's outlier
    /// detection bounds ejections. Past it, workers whose breakers are
    /// open keep taking work, so the pool never stops for its breakers
    /// alone. 0 turns worker ejection off; 100 allows every worker out
    /// (default 50).
    pub max_ejected_percent: u8,
}

impl BreakerSettings {
    /// The same knobs for worker and dependency breakers.
    pub fn strategy_config(&self) -> BreakerStrategyConfig {
        BreakerStrategyConfig {
            child: self.config,
            dependency: self.config,
        }
    }
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            config: BreakerConfig::default(),
            max_ejected_percent: 50,
        }
    }
}

/// Candado's breaker defaults; `max_ejected_percent` is the pool's own.
impl PoolDefault for BreakerSettings {
    const DIFFERENCES: &'static [Difference<Self>] = &[];

    fn framework_default() -> Self {
        Self::default()
    }
}

/// Same defaults as Candado's.
impl PoolDefault for HealLimit {
    const DIFFERENCES: &'static [Difference<Self>] = &[];

    fn framework_default() -> Self {
        Self::default()
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

/// The pool's own section.
impl PoolDefault for AutoscaleSettings {
    const DIFFERENCES: &'static [Difference<Self>] = &[];

    fn framework_default() -> Self {
        Self::default()
    }
}

/// The pool's own section.
impl PoolDefault for RateLimitSettings {
    const DIFFERENCES: &'static [Difference<Self>] = &[];

    fn framework_default() -> Self {
        Self::default()
    }
}
