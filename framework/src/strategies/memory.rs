//! Memory: thresholds, emergency brake, leak detection and recycling.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{secs, MemorySample, MemorySampler, SystemSampler};
use crate::{
    Decisions, HealthCause, HealthStrategy, MemoryCause, Signal, SpecError, Verdict, Wants,
};

const MIB: u64 = 1024 * 1024;

/// Which child a memory restart hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum VictimPolicy {
    /// The child that reports the most memory in its heartbeats (the oldest
    /// among equals, or when none reports).
    #[default]
    LargestReported,
    /// The child that has been up the longest.
    Oldest,
}

/// Knobs of [`MemoryGuard`]. Every threshold is optional; `None` disables it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct MemoryConfig {
    /// System memory in use (percent) that makes every child degraded (default 85).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::number"))]
    pub warning_percent: Option<f64>,
    /// System memory in use (percent) that restarts the victim (default 95).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::number"))]
    pub critical_percent: Option<f64>,
    /// Process RSS that makes every child degraded (default none).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::number"))]
    pub warning_rss: Option<u64>,
    /// Process RSS that restarts the victim (default none).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::number"))]
    pub critical_rss: Option<u64>,
    /// Memory a child reports that makes it degraded (default none).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::number"))]
    pub child_warning_bytes: Option<u64>,
    /// Memory a child reports that restarts it (default none; 8 GB suits a
    /// model-serving worker).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::number"))]
    pub child_critical_bytes: Option<u64>,
    /// Who is restarted for a process- or system-level critical level.
    pub victim: VictimPolicy,
    /// After a memory restart, no other victim is chosen for this long, so
    /// memory can settle (default 30 s).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub settle: Duration,
    /// Emergency brake: while the system has less than this available, every
    /// child is isolated (no new work) each tick (default 2 GiB).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::number"))]
    pub brake_floor: Option<u64>,
    /// Consecutive brakes after which the victim is restarted (default 10).
    pub brake_limit: u32,
    /// Time memory must stay above the floor before the brake count resets (default 60 s).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub brake_reset: Duration,
    /// Growth of a child's reported memory, per minute, that counts as a leak
    /// and restarts it (default 50 MiB/min).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::number"))]
    pub leak_rate_per_min: Option<u64>,
    /// Window over which the growth rate is measured (default 5 min); a rate
    /// is judged once samples span half of it.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub leak_window: Duration,
    /// Children older than this are recycled (default none; an hour is a
    /// common choice for long-lived workers).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::duration"))]
    pub max_age: Option<Duration>,
    /// Children that finished this many tasks (from heartbeat metrics) are
    /// recycled (default none).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::number"))]
    pub max_tasks: Option<u64>,
    /// Heartbeat interval this strategy asks for, to receive the memory and
    /// task counts children report (default 2 s).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub report_interval: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            warning_percent: Some(85.0),
            critical_percent: Some(95.0),
            warning_rss: None,
            critical_rss: None,
            child_warning_bytes: None,
            child_critical_bytes: None,
            victim: VictimPolicy::default(),
            settle: Duration::from_secs(30),
            brake_floor: Some(2 * 1024 * MIB),
            brake_limit: 10,
            brake_reset: Duration::from_secs(60),
            leak_rate_per_min: Some(50 * MIB),
            leak_window: Duration::from_secs(300),
            max_age: None,
            max_tasks: None,
            report_interval: Duration::from_secs(2),
        }
    }
}

impl MemoryConfig {
    /// Checks the knobs, naming the first that is wrong.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |problem: String| Err(SpecError::strategy("memory", problem));
        for (name, value) in [
            ("warning_percent", self.warning_percent),
            ("critical_percent", self.critical_percent),
        ] {
            if value.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
                return bad(format!("{name} must be within 0..=100"));
            }
        }
        // Percentages compare as they are: truncated to whole numbers, 95.5
        // would pass for a warning below a 95.2 critical.
        if let (Some(w), Some(c)) = (self.warning_percent, self.critical_percent) {
            if w > c {
                return bad("warning_percent must not exceed its critical threshold".into());
            }
        }
        let pairs = [
            ("warning_rss", self.warning_rss, self.critical_rss),
            (
                "child_warning_bytes",
                self.child_warning_bytes,
                self.child_critical_bytes,
            ),
        ];
        for (name, warning, critical) in pairs {
            if let (Some(w), Some(c)) = (warning, critical) {
                if w > c {
                    return bad(format!("{name} must not exceed its critical threshold"));
                }
            }
        }
        if self.brake_floor.is_some() && self.brake_limit == 0 {
            return bad("brake_limit must be at least 1".into());
        }
        if self.report_interval.is_zero() {
            return bad("report_interval must be greater than zero".into());
        }
        if self.leak_rate_per_min.is_some() && self.leak_window.is_zero() {
            return bad("leak_window must be greater than zero".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Track {
    started: Instant,
    reported: Option<u64>,
    samples: VecDeque<(Instant, u64)>,
    tasks_done: u64,
}

/// Watches memory and restarts the children that hold too much of it.
///
/// On every supervisor tick it takes a [`MemorySample`] from its sampler
/// (by default [`SystemSampler`], i.e. `sysinfo`) and judges, for each child:
/// - **recycling**: older than `max_age`, or `max_tasks` or more done → restart;
/// - **leak**: reported memory growing faster than `leak_rate_per_min` → restart;
/// - **per-child thresholds** on reported memory → degraded / restart;
/// - **process and system thresholds** → every child degraded at warning; at
///   critical, the victim restarts (then nobody else for `settle`);
/// - **emergency brake**: below `brake_floor` available, every child is
///   isolated; after `brake_limit` consecutive brakes the victim restarts.
///   That restart stays demanded (a standing condition, critical while the
///   heal limit refuses it) until the victim exits, which resets the count,
///   or memory stayed above the floor for `brake_reset`, which resets it too.
///
/// ```
/// use candado::{FixedSampler, MemoryConfig, MemoryGuard, MemorySample, SupervisorSpec};
///
/// let sampler = FixedSampler::new(MemorySample::default());
/// let guard = MemoryGuard::new(MemoryConfig::default()).unwrap().with_sampler(sampler.clone());
/// let spec = SupervisorSpec::new("trainers").health(guard);
/// # assert!(spec.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct MemoryGuard {
    config: MemoryConfig,
    sampler: Arc<dyn MemorySampler>,
    tracks: HashMap<String, Track>,
    brakes: u32,
    /// The child the brake condemned once it reached `brake_limit`: its
    /// restart stays demanded until it happens (the count resets then) or
    /// memory stays safe for `brake_reset`. A restart the heal limit refuses
    /// therefore leaves the condition standing, instead of starting the count
    /// again.
    brake_victim: Option<String>,
    safe_since: Option<Instant>,
    last_restart: Option<Instant>,
}

impl MemoryGuard {
    /// A memory guard with `config`, sampling the machine with `sysinfo`.
    pub fn new(config: MemoryConfig) -> Result<Self, SpecError> {
        config.validate()?;
        Ok(Self {
            config,
            sampler: Arc::new(SystemSampler::new()),
            tracks: HashMap::new(),
            brakes: 0,
            brake_victim: None,
            safe_since: None,
            last_restart: None,
        })
    }

    /// Uses `sampler` instead of `sysinfo`.
    pub fn with_sampler(mut self, sampler: impl MemorySampler) -> Self {
        self.sampler = Arc::new(sampler);
        self
    }

    /// Consecutive emergency brakes so far.
    pub fn brakes(&self) -> u32 {
        self.brakes
    }

    fn victim(&self) -> Option<String> {
        let oldest = |a: &Track, b: &Track| b.started.cmp(&a.started);
        let pick = match self.config.victim {
            VictimPolicy::LargestReported => self
                .tracks
                .iter()
                .max_by(|(_, a), (_, b)| a.reported.cmp(&b.reported).then_with(|| oldest(a, b))),
            VictimPolicy::Oldest => self.tracks.iter().max_by(|(_, a), (_, b)| oldest(a, b)),
        };
        pick.map(|(id, _)| id.clone())
    }

    fn judge_child(&self, now: Instant, track: &Track) -> Verdict {
        let c = &self.config;
        if let Some(age) = c.max_age {
            let up = now.duration_since(track.started);
            if up >= age {
                return Verdict::Restart {
                    cause: HealthCause::Memory(MemoryCause::Age),
                    reason: format!("recycled: up for {}", secs(up)),
                };
            }
        }
        if let Some(max) = c.max_tasks {
            if track.tasks_done >= max {
                return Verdict::Restart {
                    cause: HealthCause::Memory(MemoryCause::Tasks),
                    reason: format!("recycled: {} tasks done", track.tasks_done),
                };
            }
        }
        if let (Some(limit), Some(&(t0, m0)), Some(&(t1, m1))) = (
            c.leak_rate_per_min,
            track.samples.front(),
            track.samples.back(),
        ) {
            let span = t1.duration_since(t0);
            if !span.is_zero() && span >= c.leak_window / 2 && m1 > m0 {
                let per_min = ((m1 - m0) as f64 * 60.0 / span.as_secs_f64()) as u64;
                if per_min > limit {
                    return Verdict::Restart {
                        cause: HealthCause::Memory(MemoryCause::Leak),
                        reason: format!("leak: reported memory grows {} MiB/min", per_min / MIB),
                    };
                }
            }
        }
        match (
            track.reported,
            c.child_critical_bytes,
            c.child_warning_bytes,
        ) {
            (Some(m), Some(crit), _) if m >= crit => Verdict::Restart {
                cause: HealthCause::Memory(MemoryCause::Critical),
                reason: format!("reports {} MiB, critical at {} MiB", m / MIB, crit / MIB),
            },
            (Some(m), _, Some(warn)) if m >= warn => Verdict::Degraded {
                reason: format!("reports {} MiB, warning at {} MiB", m / MIB, warn / MIB),
            },
            _ => Verdict::Healthy,
        }
    }

    /// Process- or system-level level: `Some((critical, reason))`.
    fn level(&self, s: &MemorySample) -> Option<(bool, String)> {
        let c = &self.config;
        let used = s.used_percent();
        let rss = s.process_rss;
        if c.critical_percent.is_some_and(|p| used >= p) {
            return Some((true, format!("{} {used:.1}% used", s.scope())));
        }
        if c.critical_rss.is_some_and(|limit| rss >= limit) {
            return Some((true, format!("process RSS {} MiB", rss / MIB)));
        }
        if c.warning_percent.is_some_and(|p| used >= p) {
            return Some((false, format!("{} {used:.1}% used", s.scope())));
        }
        if c.warning_rss.is_some_and(|limit| rss >= limit) {
            return Some((false, format!("process RSS {} MiB", rss / MIB)));
        }
        None
    }
}

fn raise(verdicts: &mut HashMap<String, Verdict>, child: &str, verdict: Verdict) {
    if let Some(current) = verdicts.get_mut(child) {
        if verdict.kind() > current.kind() {
            *current = verdict;
        }
    }
}

impl HealthStrategy for MemoryGuard {
    fn name(&self) -> &str {
        "memory"
    }

    fn wants(&self) -> Wants {
        Wants {
            heartbeat: Some(self.config.report_interval),
            ping: None,
            thread_watch: None,
        }
    }

    fn on_signal(&mut self, now: Instant, child: &str, signal: &Signal, out: &mut Decisions) {
        match signal {
            Signal::Started { .. } => {
                self.tracks.insert(
                    child.to_owned(),
                    Track {
                        started: now,
                        reported: None,
                        samples: VecDeque::new(),
                        tasks_done: 0,
                    },
                );
                out.set(child, Verdict::Healthy);
            }
            Signal::Exited { .. } => {
                self.tracks.remove(child);
                if self.brake_victim.as_deref() == Some(child) {
                    // The restart the brake demanded happened: count anew.
                    self.brake_victim = None;
                    self.brakes = 0;
                }
            }
            Signal::Heartbeat(metrics) => {
                let window = self.config.leak_window;
                if let Some(track) = self.tracks.get_mut(child) {
                    track.tasks_done = metrics.tasks_done;
                    track.reported = metrics.memory_bytes;
                    if let Some(bytes) = metrics.memory_bytes {
                        track.samples.push_back((now, bytes));
                        while track
                            .samples
                            .front()
                            .is_some_and(|(t, _)| now.duration_since(*t) > window)
                        {
                            track.samples.pop_front();
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Decisions) {
        let sample = self.sampler.sample();
        let mut verdicts: HashMap<String, Verdict> = self
            .tracks
            .iter()
            .map(|(id, track)| (id.clone(), self.judge_child(now, track)))
            .collect();
        let settled = self
            .last_restart
            .is_none_or(|t| now.duration_since(t) >= self.config.settle);
        let mut victim_reason = None;

        if let Some((critical, reason)) = self.level(&sample) {
            for v in verdicts.values_mut() {
                if v.kind() < crate::VerdictKind::Degraded {
                    *v = Verdict::Degraded {
                        reason: reason.clone(),
                    };
                }
            }
            if critical && settled {
                victim_reason = Some(format!("memory critical: {reason}"));
            }
        }

        if let Some(floor) = self.config.brake_floor {
            if sample.available() < floor {
                self.brakes = self.brakes.saturating_add(1);
                self.safe_since = None;
                let reason = format!(
                    "emergency brake #{}: {} MiB available, floor {} MiB",
                    self.brakes,
                    sample.available() / MIB,
                    floor / MIB
                );
                let until = crate::clock::after(now, self.config.brake_reset);
                let ids: Vec<String> = verdicts.keys().cloned().collect();
                for id in ids {
                    raise(
                        &mut verdicts,
                        &id,
                        Verdict::Isolate {
                            until,
                            reason: reason.clone(),
                        },
                    );
                }
                if self.brakes >= self.config.brake_limit {
                    if self.brake_victim.is_none() {
                        self.brake_victim = self.victim();
                        self.last_restart = Some(now);
                    }
                    if let Some(victim) = &self.brake_victim {
                        let reason =
                            format!("emergency brake fired {} times in a row", self.brakes);
                        let cause = HealthCause::Memory(MemoryCause::Brake);
                        raise(&mut verdicts, victim, Verdict::Restart { cause, reason });
                    }
                }
            } else {
                let since = *self.safe_since.get_or_insert(now);
                if now.duration_since(since) >= self.config.brake_reset {
                    self.brakes = 0;
                    self.brake_victim = None;
                }
            }
        }

        if let (Some(reason), Some(victim)) = (victim_reason, self.victim()) {
            let cause = HealthCause::Memory(MemoryCause::Critical);
            raise(&mut verdicts, &victim, Verdict::Restart { cause, reason });
            self.last_restart = Some(now);
        }
        for (child, verdict) in verdicts {
            out.set(child, verdict);
        }
    }
}
