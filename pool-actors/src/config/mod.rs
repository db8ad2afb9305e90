//! The pool's configuration: one serde structure for every knob, from TOML or JSON.
//!
//! - [`PoolConfig`] and its validation live here;
//! - the strategy sections (`[restart]`, `[liveness]`, `[memory]`,
//!   `[breaker]`, `[heal_limit]`, `[autoscale]`) in `sections`: Candado's
//!   own configs, with the pool's differing defaults listed there;
//! - where handlers run (`isolation`, `[process]`) in `isolation`;
//! - how a section is read (or switched off) in `off`;
//! - shutdown modes and the report in `shutdown`;
//! - the overflow policy and the rate limit in `admission`.

mod admission;
mod isolation;
mod off;
mod sections;
mod shutdown;

use std::time::Duration;

use candado::{HealLimit, LivenessConfig, MemoryConfig, SpecError, DEFAULT_TICK};
use serde::{Deserialize, Serialize};

pub use admission::{Overflow, RateLimitSettings};
pub use isolation::{Isolation, ProcessSettings};
pub use sections::{AutoscaleSettings, BreakerSettings, Difference, PoolDefault, RestartSettings};
pub use shutdown::{ShutdownMode, ShutdownReport, UnfinishedAction};

use crate::{ConfigError, RetryConfig};

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
    /// called once per batch (default 16; 1 takes tasks one at a time). A
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
    /// Default per-attempt timeout (default 5 min, the task timeout of a
    /// production persistent worker pool: long tasks are normal; a stuck
    /// one is for liveness to find).
    #[serde(with = "humantime_serde")]
    pub task_timeout: Duration,
    /// A task waiting this long at its priority climbs one level (default 30 s; `"off"` disables).
    #[serde(with = "candado::off::duration")]
    pub promote_after: Option<Duration>,
    /// `TaskContext::checkpoint` yields every this many calls (default 64).
    pub yield_every: u32,
    /// Capabilities every worker advertises.
    pub capabilities: Vec<String>,
    /// Dead tasks kept before the oldest is evicted (default 1,000).
    pub dead_letter_capacity: usize,
    /// Retries.
    pub retry: RetryConfig,
    /// Worker restarts: intensity and backoff.
    #[serde(with = "off::table")]
    pub restart: RestartSettings,
    /// The worker supervisor's housekeeping tick (restart window pruning,
    /// backoff stability, strategy deadlines), default 1 s.
    #[serde(with = "humantime_serde")]
    pub supervisor_tick: Duration,
    /// Liveness strategy (default on, Candado's knobs with the pool's
    /// [differences](PoolDefault::DIFFERENCES); `liveness = "off"` disables it).
    #[serde(with = "off::section")]
    pub liveness: Option<LivenessConfig>,
    /// Memory strategy (default off; Candado's knobs).
    #[serde(with = "off::section")]
    pub memory: Option<MemoryConfig>,
    /// Circuit breakers per worker and per dependency (default on).
    #[serde(with = "off::section")]
    pub breaker: Option<BreakerSettings>,
    /// Heal-storm protection (Candado's knobs and defaults).
    pub heal_limit: HealLimit,
    /// Automatic scaling (default off).
    #[serde(with = "off::section")]
    pub autoscale: Option<AutoscaleSettings>,
    /// Router housekeeping period (starvation promotion, and a fresh dispatch
    /// attempt while work waits), default 1 s.
    #[serde(with = "humantime_serde")]
    pub router_tick: Duration,
    /// Where handlers run: `"in_process"` (default) or `"process"`, one OS
    /// process per worker (see [`Isolation`]).
    pub isolation: Isolation,
    /// Worker processes' knobs, used with `isolation = "process"`.
    pub process: ProcessSettings,
    /// What `submit` does on a full queue: `"reject"` (default) or
    /// `"discard_oldest"` (see [`Overflow`]).
    pub overflow: Overflow,
    /// A token bucket on task starts (default off; see [`RateLimitSettings`]).
    #[serde(with = "off::section")]
    pub rate_limit: Option<RateLimitSettings>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            name: "pool".into(),
            size: 4,
            min_size: 1,
            max_size: 64,
            concurrency: 1,
            batch: 16,
            dispatch: Dispatch::default(),
            queue_bound: 10_000,
            worker_shutdown_timeout: Duration::from_secs(5),
            task_timeout: Duration::from_secs(300),
            promote_after: Some(Duration::from_secs(30)),
            yield_every: 64,
            capabilities: Vec::new(),
            dead_letter_capacity: 1_000,
            retry: RetryConfig::default(),
            restart: RestartSettings::pool_default(),
            supervisor_tick: DEFAULT_TICK,
            liveness: Some(LivenessConfig::pool_default()),
            memory: None,
            breaker: Some(BreakerSettings::pool_default()),
            heal_limit: HealLimit::pool_default(),
            autoscale: None,
            router_tick: Duration::from_secs(1),
            isolation: Isolation::default(),
            process: ProcessSettings::default(),
            overflow: Overflow::default(),
            rate_limit: None,
        }
    }
}

/// The `[restart]` key a backoff error is about.
fn backoff_field(error: &SpecError) -> &'static str {
    match error {
        SpecError::BackoffCapBelowBase { .. } => "restart.cap",
        SpecError::JitterOutOfRange(_) => "restart.jitter",
        SpecError::BackoffMultiplierInvalid(_) => "restart.multiplier",
        _ => "restart.delays",
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
        self.validate_process()?;
        if let Some(r) = self.rate_limit {
            r.validate()?;
        }
        if self.restart.intensity.period.is_zero() {
            return Err(ConfigError::invalid(
                "restart.period",
                "must be greater than zero",
            ));
        }
        self.restart
            .backoff
            .validate()
            .map_err(|e| ConfigError::invalid(backoff_field(&e), e.to_string()))?;
        if self.supervisor_tick.is_zero() {
            return Err(ConfigError::invalid(
                "supervisor_tick",
                "must be greater than zero",
            ));
        }
        if self.heal_limit.period.is_zero() {
            return Err(ConfigError::invalid(
                "heal_limit.period",
                "must be greater than zero",
            ));
        }
        if let Some(l) = self.liveness {
            l.validate().map_err(strategy_error("liveness"))?;
        }
        if let Some(m) = self.memory {
            m.validate().map_err(strategy_error("memory"))?;
        }
        if let Some(b) = self.breaker {
            b.config.validate().map_err(strategy_error("breaker"))?;
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

    fn validate_process(&self) -> Result<(), ConfigError> {
        if self.isolation != Isolation::Process {
            return Ok(());
        }
        if self.concurrency > 1 {
            return Err(ConfigError::invalid(
                "concurrency",
                "must be 1 with isolation = \"process\": a worker process runs one task at a time; use more workers",
            ));
        }
        let p = &self.process;
        for (field, value) in [
            ("process.heartbeat_interval", p.heartbeat_interval),
            ("process.handshake_timeout", p.handshake_timeout),
            ("process.memory_interval", p.memory_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(field, "must be greater than zero"));
            }
        }
        if p.max_frame < 1024 {
            return Err(ConfigError::invalid(
                "process.max_frame",
                "must be at least 1024 bytes",
            ));
        }
        if let Some(l) = self.liveness {
            if l.heartbeat_timeout <= p.heartbeat_interval {
                return Err(ConfigError::invalid(
                    "process.heartbeat_interval",
                    "must be shorter than liveness.heartbeat_timeout",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
