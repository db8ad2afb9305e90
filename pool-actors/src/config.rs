//! The pool's configuration: one serde structure for every knob, from TOML or JSON.

use std::time::Duration;

use candado::{
    BackoffConfig, BreakerConfig, BreakerStrategyConfig, HealLimit, LivenessConfig, MemoryConfig,
    SpecError,
};
use serde::{Deserialize, Serialize};

use crate::{ConfigError, RetryConfig, TaskId};

/// The most workers one pool may have (`max_size`, and so `size`). Start-up
/// and scaling cost in proportion to the workers started, never to
/// `max_size`; this bound keeps a typo (`1000000`) from a start that does
/// not finish. Larger fleets are several pools.
pub const MAX_WORKERS: usize = 10_000;

/// How the router picks a worker for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dispatch {
    /// The next eligible worker in turn.
    #[default]
    RoundRobin,
    /// The eligible worker with the fewest tasks in flight; ties go to the
    /// next in turn, so equal workers share the load.
    LeastLoaded,
}

/// How to stop a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Stop intake, let queued and running work finish within `deadline`,
    /// then return what is left to its submitters.
    Graceful {
        /// How long to wait for the work to drain.
        deadline: Duration,
    },
    /// Stop intake and cancel running attempts now; every unfinished task
    /// is handled by `unfinished`.
    Immediate {
        /// What happens to unfinished tasks.
        unfinished: UnfinishedAction,
    },
}

/// What an immediate shutdown does with unfinished tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnfinishedAction {
    /// Hand the task back to its submitter ([`TaskFailure::Returned`](crate::TaskFailure::Returned)).
    #[default]
    Return,
    /// Dead-letter it with reason `shutdown`.
    DeadLetter,
}

/// The books at shutdown: `submitted = completed + dead_lettered + returned`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownReport {
    /// Tasks accepted over the pool's life.
    pub submitted: u64,
    /// Tasks that succeeded.
    pub completed: u64,
    /// Tasks dead-lettered (retries exhausted, or at shutdown).
    pub dead_lettered: u64,
    /// Tasks handed back unfinished.
    pub returned: u64,
    /// Ids of the tasks the shutdown itself ended (returned or dead-lettered).
    pub unfinished: Vec<TaskId>,
}

impl ShutdownReport {
    /// Whether every submitted task is accounted for exactly once.
    pub fn balanced(&self) -> bool {
        self.submitted == self.completed + self.dead_lettered + self.returned
    }

    /// Tasks that are in none of the three outcomes (must be 0).
    pub fn lost(&self) -> i128 {
        i128::from(self.submitted) - i128::from(self.completed + self.dead_lettered + self.returned)
    }
}

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
    /// Heartbeat interval (`null` disables heartbeats).
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Option<Duration>,
    /// Silence that makes a zombie.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// Ping interval (`null` disables pings).
    #[serde(with = "humantime_serde")]
    pub ping_interval: Option<Duration>,
    /// Time to answer a ping.
    #[serde(with = "humantime_serde")]
    pub pong_timeout: Duration,
    /// Consecutive missed pongs that restart.
    pub miss_threshold: u32,
    /// Work without progress for this long is stuck (`null` disables).
    #[serde(with = "humantime_serde")]
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
    pub warning_percent: Option<f64>,
    /// System memory in use (%) that restarts the victim.
    pub critical_percent: Option<f64>,
    /// Process RSS that degrades every worker.
    pub warning_rss: Option<u64>,
    /// Process RSS that restarts the victim.
    pub critical_rss: Option<u64>,
    /// Reported worker memory that degrades it.
    pub child_warning_bytes: Option<u64>,
    /// Reported worker memory that restarts it.
    pub child_critical_bytes: Option<u64>,
    /// Emergency-brake floor of available system memory.
    pub brake_floor: Option<u64>,
    /// Consecutive brakes that restart the victim.
    pub brake_limit: u32,
    /// Safe time that resets the brake count.
    #[serde(with = "humantime_serde")]
    pub brake_reset: Duration,
    /// Growth per minute that counts as a leak.
    pub leak_rate_per_min: Option<u64>,
    /// Window of the leak rate.
    #[serde(with = "humantime_serde")]
    pub leak_window: Duration,
    /// Recycle workers older than this.
    #[serde(with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// Recycle workers after this many tasks.
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
    /// Failure rate that also opens it (`null` = off).
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

/// Every knob of a pool. Deserialises from TOML or JSON; missing fields take
/// their defaults; unknown fields are errors.
///
/// ```
/// let config = candado_pool::PoolConfig::from_toml(r#"
///     name = "predict"
///     size = 4
///     dispatch = "least_loaded"
///     task_timeout = "30s"
///     [retry]
///     max_retries = 2
///     [liveness]
///     heartbeat_timeout = "5s"
/// "#).unwrap();
/// assert_eq!(config.size, 4);
/// assert_eq!(config.retry.max_retries, 2);
///
/// let err = candado_pool::PoolConfig::from_toml("size = 0").unwrap_err();
/// assert!(err.to_string().contains("`size`"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Pool name; also the id of its worker supervisor.
    pub name: String,
    /// Workers at start (default 4).
    pub size: usize,
    /// Smallest size scaling may reach (default 1).
    pub min_size: usize,
    /// Largest size scaling may reach (default 64).
    pub max_size: usize,
    /// Tasks one worker runs at once (default 1).
    pub concurrency: usize,
    /// Tasks a worker takes at a time, to run one after another, while
    /// tasks queue up for busy workers and its own tasks are short (under
    /// 1 ms each on average); it reports them together, so the router is
    /// called once per batch (default 4; 1 takes tasks one at a time). A
    /// task submitted later, even at a better priority, waits for the
    /// batches already taken.
    pub batch: usize,
    /// Round-robin or least-loaded (default round-robin).
    pub dispatch: Dispatch,
    /// Tasks that may wait (ready or retrying) before `submit` refuses (default 10,000).
    pub queue_bound: usize,
    /// Time a worker gets to stop before it is killed (default 5 s). A worker
    /// whose thread is starved cannot stop: this is how long its replacement waits.
    #[serde(with = "humantime_serde")]
    pub worker_shutdown_timeout: Duration,
    /// Default per-attempt timeout (default 5 min, as in seed 001).
    #[serde(with = "humantime_serde")]
    pub task_timeout: Duration,
    /// A task waiting this long at its priority climbs one level (default 30 s; `null` disables).
    #[serde(with = "humantime_serde")]
    pub promote_after: Option<Duration>,
    /// `TaskContext::checkpoint` yields every this many calls (default 64).
    pub yield_every: u32,
    /// Capabilities every worker advertises.
    pub capabilities: Vec<String>,
    /// Dead tasks kept before the oldest is evicted (default 1,000).
    pub dead_letter_capacity: usize,
    /// Retries.
    pub retry: RetryConfig,
    /// Worker restarts.
    pub restart: RestartSettings,
    /// Liveness strategy (default on; `null` in JSON disables it).
    pub liveness: Option<LivenessSettings>,
    /// Memory strategy (default off).
    pub memory: Option<MemorySettings>,
    /// Circuit breakers per worker and per dependency (default on).
    pub breaker: Option<BreakerSettings>,
    /// Heal-storm protection.
    pub heal_limit: HealLimitSettings,
    /// Automatic scaling (default off).
    pub autoscale: Option<AutoscaleSettings>,
    /// Router housekeeping period (starvation promotion, and a fresh dispatch
    /// attempt while work waits), default 1 s.
    #[serde(with = "humantime_serde")]
    pub router_tick: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            name: "pool".into(),
            size: 4,
            min_size: 1,
            max_size: 64,
            concurrency: 1,
            batch: 4,
            dispatch: Dispatch::default(),
            queue_bound: 10_000,
            worker_shutdown_timeout: Duration::from_secs(5),
            task_timeout: Duration::from_secs(300),
            promote_after: Some(Duration::from_secs(30)),
            yield_every: 64,
            capabilities: Vec::new(),
            dead_letter_capacity: 1_000,
            retry: RetryConfig::default(),
            restart: RestartSettings::default(),
            liveness: Some(LivenessSettings::default()),
            memory: None,
            breaker: Some(BreakerSettings::default()),
            heal_limit: HealLimitSettings::default(),
            autoscale: None,
            router_tick: Duration::from_secs(1),
        }
    }
}

fn strategy_error(field: &str) -> impl Fn(SpecError) -> ConfigError + '_ {
    move |e| ConfigError::invalid(field, e.to_string())
}

impl PoolConfig {
    /// Parses TOML and validates.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses JSON and validates.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config: Self =
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every knob; the error names the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |field: &str, value: usize| {
            if value == 0 {
                Err(ConfigError::invalid(field, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        if self.name.is_empty() || self.name.contains('/') {
            return Err(ConfigError::invalid(
                "name",
                "must be non-empty and contain no '/'",
            ));
        }
        positive("size", self.size)?;
        positive("min_size", self.min_size)?;
        positive("concurrency", self.concurrency)?;
        positive("batch", self.batch)?;
        positive("queue_bound", self.queue_bound)?;
        positive("dead_letter_capacity", self.dead_letter_capacity)?;
        positive("yield_every", self.yield_every as usize)?;
        if self.max_size > MAX_WORKERS {
            return Err(ConfigError::invalid(
                "max_size",
                format!("must be at most {MAX_WORKERS} (candado_pool::MAX_WORKERS)"),
            ));
        }
        if self.max_size < self.min_size {
            return Err(ConfigError::invalid(
                "max_size",
                "must be at least min_size",
            ));
        }
        if !(self.min_size..=self.max_size).contains(&self.size) {
            return Err(ConfigError::invalid(
                "size",
                "must be within min_size..=max_size",
            ));
        }
        if self.task_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "task_timeout",
                "must be greater than zero",
            ));
        }
        if self.promote_after.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::invalid(
                "promote_after",
                "must be greater than zero",
            ));
        }
        if self.router_tick.is_zero() {
            return Err(ConfigError::invalid(
                "router_tick",
                "must be greater than zero",
            ));
        }
        self.retry.validate()?;
        if self.restart.period.is_zero() {
            return Err(ConfigError::invalid(
                "restart.period",
                "must be greater than zero",
            ));
        }
        if self.restart.backoff_cap < self.restart.backoff_base {
            return Err(ConfigError::invalid(
                "restart.backoff_cap",
                "must be at least restart.backoff_base",
            ));
        }
        if self.heal_limit.period.is_zero() {
            return Err(ConfigError::invalid(
                "heal_limit.period",
                "must be greater than zero",
            ));
        }
        if let Some(l) = self.liveness {
            LivenessConfig::from(l)
                .validate()
                .map_err(strategy_error("liveness"))?;
        }
        if let Some(m) = self.memory {
            MemoryConfig::from(m)
                .validate()
                .map_err(strategy_error("memory"))?;
        }
        if let Some(b) = self.breaker {
            BreakerStrategyConfig::from(b)
                .child
                .validate()
                .map_err(strategy_error("breaker"))?;
            if b.max_ejected_percent > 100 {
                return Err(ConfigError::invalid(
                    "breaker.max_ejected_percent",
                    "must be within 0..=100",
                ));
            }
        }
        if let Some(a) = self.autoscale {
            if a.check_every.is_zero() {
                return Err(ConfigError::invalid(
                    "autoscale.check_every",
                    "must be greater than zero",
                ));
            }
            positive("autoscale.queue_per_worker", a.queue_per_worker)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_toml_agree_and_defaults_fill_in() {
        let toml =
            PoolConfig::from_toml("name = \"p\"\nsize = 2\n[retry]\nbase = \"500ms\"\n").unwrap();
        let json =
            PoolConfig::from_json(r#"{"name":"p","size":2,"retry":{"base":"500ms"}}"#).unwrap();
        assert_eq!(toml, json);
        assert_eq!(toml.retry.base, Duration::from_millis(500));
        assert_eq!(toml.retry.max_retries, 3);
        assert!(toml.liveness.is_some() && toml.memory.is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("size = 0", "size"),
            ("concurrency = 0", "concurrency"),
            ("batch = 0", "batch"),
            ("min_size = 4\nmax_size = 2", "max_size"),
            ("size = 100", "size"),
            ("[retry]\nbase = \"10s\"\ncap = \"1s\"", "retry.cap"),
            ("[retry]\njitter = 2.0", "retry.jitter"),
            ("[liveness]\nheartbeat_timeout = \"1s\"", "liveness"),
            ("[breaker]\nhalf_open_probes = 1", "breaker"),
            (
                "[autoscale]\nqueue_per_worker = 0",
                "autoscale.queue_per_worker",
            ),
        ];
        for (text, field) in cases {
            match PoolConfig::from_toml(text) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            PoolConfig::from_toml("sise = 3"),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            PoolConfig::from_json("{"),
            Err(ConfigError::Parse(_))
        ));
    }
}
