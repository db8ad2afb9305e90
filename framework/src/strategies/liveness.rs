//! Liveness: heartbeats, ping/pong and progress.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::secs;
use crate::{
    Decisions, HealthCause, HealthStrategy, LivenessCause, Signal, SpecError, Verdict, Wants,
};

/// Knobs of [`Liveness`]. Defaults follow production worker pools: see
/// each knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct LivenessConfig {
    /// Children send a heartbeat from their own context this often (default 2 s;
    /// `None` disables heartbeats). Children with
    /// [external heartbeats](crate::ChildSpec::external_heartbeats) beat on
    /// their own schedule, and are late (degraded) after twice this.
    #[cfg_attr(feature = "serde", serde(with = "crate::off::duration"))]
    pub heartbeat_interval: Option<Duration>,
    /// Silence after which a child is a zombie and is restarted (default 10 s).
    /// It is detected on the first supervisor tick at or after the timeout,
    /// so never later than timeout + one tick after its last heartbeat.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub heartbeat_timeout: Duration,
    /// The supervisor pings every child this often (default 5 s; `None` disables pings).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::duration"))]
    pub ping_interval: Option<Duration>,
    /// A ping not answered within this time is a miss (default 3 s).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub pong_timeout: Duration,
    /// Consecutive missed pongs that make a restart (default 5). Fewer misses
    /// make the child degraded.
    pub miss_threshold: u32,
    /// Work begun with [`ChildLink::begin_work`](crate::ChildLink::begin_work)
    /// that reports no progress for this long is stuck, and the child is
    /// restarted (default 60 s; `None` disables the check).
    #[cfg_attr(feature = "serde", serde(with = "crate::off::duration"))]
    pub progress_timeout: Option<Duration>,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Some(Duration::from_secs(2)),
            heartbeat_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(5)),
            pong_timeout: Duration::from_secs(3),
            miss_threshold: 5,
            progress_timeout: Some(Duration::from_secs(60)),
        }
    }
}

impl LivenessConfig {
    /// Checks the knobs, naming the first that is wrong.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |problem: &str| Err(SpecError::strategy("liveness", problem));
        match self.heartbeat_interval {
            Some(d) if d.is_zero() => return bad("heartbeat_interval must be greater than zero"),
            Some(d) if self.heartbeat_timeout <= d => {
                return bad("heartbeat_timeout must be longer than heartbeat_interval")
            }
            _ => {}
        }
        if self.ping_interval.is_some_and(|d| d.is_zero()) {
            return bad("ping_interval must be greater than zero");
        }
        if self.ping_interval.is_some() && self.pong_timeout.is_zero() {
            return bad("pong_timeout must be greater than zero");
        }
        if self.miss_threshold == 0 {
            return bad("miss_threshold must be at least 1");
        }
        if self.progress_timeout.is_some_and(|d| d.is_zero()) {
            return bad("progress_timeout must be greater than zero");
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Track {
    last_heartbeat: Instant,
    /// Pings sent and not answered yet: (sequence, sent at).
    pending: VecDeque<(u64, Instant)>,
    misses: u32,
    /// Current unit of work and when it last progressed (boxed: most
    /// children have none, and a track is kept per child).
    work: Option<Box<(String, Instant)>>,
    /// Verdict last handed out, so a tick reports only changes.
    last: Verdict,
}

/// Restarts children that are zombies (no heartbeat), deaf (unanswered pings)
/// or stuck (work without progress).
///
/// A heartbeat is sent from inside the child's own actix context by Candado,
/// so an event loop starved by CPU work or a long `ctx.wait` stops it, while a
/// child merely busy in an `async` task keeps sending it. That is why stuck
/// work is a separate condition, detected from progress reports. A child
/// that stands for something outside its actor (a process, a connection)
/// takes [external heartbeats](crate::ChildSpec::external_heartbeats)
/// instead, so a frozen process is silent, not merely stuck.
///
/// ```
/// use std::time::Duration;
/// use candado::{Liveness, LivenessConfig, SupervisorSpec};
///
/// let liveness = Liveness::new(LivenessConfig {
///     heartbeat_timeout: Duration::from_secs(5),
///     ..Default::default()
/// })
/// .unwrap();
/// let spec = SupervisorSpec::new("workers").health(liveness);
/// # assert!(spec.validate().is_ok());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    config: LivenessConfig,
    tracks: HashMap<String, Track>,
}

impl Liveness {
    /// A liveness strategy with `config`, if its knobs are valid.
    pub fn new(config: LivenessConfig) -> Result<Self, SpecError> {
        config.validate()?;
        Ok(Self {
            config,
            tracks: HashMap::new(),
        })
    }

    fn judge(config: &LivenessConfig, track: &mut Track, now: Instant) -> Verdict {
        let mut worst = Verdict::Healthy;
        let mut consider = |v: Verdict| {
            if v.kind() > worst.kind() {
                worst = v;
            }
        };
        if let Some(interval) = config.heartbeat_interval {
            let silent = now.duration_since(track.last_heartbeat);
            if silent >= config.heartbeat_timeout {
                consider(Verdict::Restart {
                    cause: HealthCause::Liveness(LivenessCause::Silent),
                    reason: format!("no heartbeat for {}", secs(silent)),
                });
            } else if silent >= interval.saturating_mul(2) {
                consider(Verdict::Degraded {
                    reason: format!("heartbeat late: none for {}", secs(silent)),
                });
            }
        }
        while let Some(&(_, sent)) = track.pending.front() {
            if now.duration_since(sent) < config.pong_timeout {
                break;
            }
            track.pending.pop_front();
            track.misses = track.misses.saturating_add(1);
        }
        if track.misses >= config.miss_threshold {
            consider(Verdict::Restart {
                cause: HealthCause::Liveness(LivenessCause::Unresponsive),
                reason: format!("{} consecutive pings unanswered", track.misses),
            });
        } else if track.misses > 0 {
            consider(Verdict::Degraded {
                reason: format!("{} consecutive pings unanswered", track.misses),
            });
        }
        if let (Some(timeout), Some((label, last))) =
            (config.progress_timeout, track.work.as_deref())
        {
            let idle = now.duration_since(*last);
            if idle >= timeout {
                consider(Verdict::Restart {
                    cause: HealthCause::Liveness(LivenessCause::Stuck),
                    reason: format!("stuck: no progress on `{label}` for {}", secs(idle)),
                });
            }
        }
        worst
    }
}

impl HealthStrategy for Liveness {
    fn name(&self) -> &str {
        "liveness"
    }

    fn wants(&self) -> Wants {
        Wants {
            heartbeat: self.config.heartbeat_interval,
            ping: self.config.ping_interval,
            thread_watch: Some(self.config.heartbeat_timeout),
        }
    }

    fn on_signal(&mut self, now: Instant, child: &str, signal: &Signal, out: &mut Decisions) {
        match signal {
            Signal::Started { .. } => {
                self.tracks.insert(
                    child.to_owned(),
                    Track {
                        last_heartbeat: now,
                        pending: VecDeque::new(),
                        misses: 0,
                        work: None,
                        last: Verdict::Healthy,
                    },
                );
                out.set(child, Verdict::Healthy);
            }
            Signal::Exited { .. } => {
                self.tracks.remove(child);
            }
            _ => {
                let Some(track) = self.tracks.get_mut(child) else {
                    return;
                };
                match signal {
                    Signal::Heartbeat(_) => track.last_heartbeat = now,
                    Signal::PingSent { seq } => track.pending.push_back((*seq, now)),
                    Signal::Pong { seq } => {
                        // Pings are answered in order: this answers every earlier one.
                        track.pending.retain(|(s, _)| s > seq);
                        track.misses = 0;
                    }
                    Signal::WorkStarted { label } => match &mut track.work {
                        Some(work) => {
                            work.0.clone_from(label);
                            work.1 = now;
                        }
                        None => track.work = Some(Box::new((label.clone(), now))),
                    },
                    Signal::Progress => {
                        if let Some((_, last)) = track.work.as_deref_mut() {
                            *last = now;
                        }
                    }
                    Signal::WorkFinished => track.work = None,
                    _ => return,
                }
                // Good news clears a verdict at once; bad news waits for the
                // tick. A signal only ever improves the standing verdict: the
                // news delivered with it (a heartbeat collected with fresh
                // work reports, say) may not all have arrived yet, so a worse
                // verdict now could rest on stale facts.
                if matches!(
                    signal,
                    Signal::Heartbeat(_)
                        | Signal::Pong { .. }
                        | Signal::Progress
                        | Signal::WorkFinished
                ) {
                    let verdict = Self::judge(&self.config, track, now);
                    if verdict.kind() < track.last.kind() {
                        track.last = verdict.clone();
                        out.set(child, verdict);
                    }
                }
            }
        }
    }

    fn reserve(&mut self, additional: usize) {
        self.tracks.reserve(additional);
    }

    fn on_tick(&mut self, now: Instant, out: &mut Decisions) {
        for (child, track) in &mut self.tracks {
            let verdict = Self::judge(&self.config, track, now);
            if verdict != track.last {
                track.last = verdict.clone();
                out.set(child.clone(), verdict);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks and returns the standing verdict (strategies report only changes).
    fn verdict_after(l: &mut Liveness, now: Instant) -> Verdict {
        let mut out = Decisions::default();
        l.on_tick(now, &mut out);
        let changed = out.iter().next().map(|(_, v)| v.clone());
        changed.unwrap_or_else(|| l.tracks["w"].last.clone())
    }

    #[test]
    fn good_news_never_worsens_the_verdict_on_stale_facts() {
        // Work began at t0; a heartbeat is handled a second later, before
        // the work reports collected with it (which show progress). The
        // heartbeat alone must not restart the child.
        let t0 = Instant::now();
        let mut l = Liveness::new(LivenessConfig {
            ping_interval: None,
            progress_timeout: Some(Duration::from_millis(500)),
            ..Default::default()
        })
        .unwrap();
        let mut quiet = Decisions::default();
        l.on_signal(t0, "w", &Signal::Started { incarnation: 1 }, &mut quiet);
        let label = "task 1".to_owned();
        l.on_signal(t0, "w", &Signal::WorkStarted { label }, &mut quiet);
        let later = t0 + Duration::from_secs(1);
        let mut out = Decisions::default();
        l.on_signal(later, "w", &Signal::Heartbeat(Default::default()), &mut out);
        assert!(
            out.iter().next().is_none(),
            "a heartbeat restarted the child"
        );
        l.on_signal(later, "w", &Signal::Progress, &mut out);
        assert_eq!(verdict_after(&mut l, later), Verdict::Healthy);
        // Without progress the tick still finds the work stuck.
        let stuck = later + Duration::from_millis(500);
        assert_eq!(
            verdict_after(&mut l, stuck).kind(),
            crate::VerdictKind::Restart
        );
    }

    #[test]
    fn silence_degrades_then_restarts_at_the_timeout() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut l = Liveness::new(LivenessConfig {
            ping_interval: None,
            ..Default::default()
        })
        .unwrap();
        l.on_signal(
            t0,
            "w",
            &Signal::Started { incarnation: 1 },
            &mut Decisions::default(),
        );
        assert_eq!(verdict_after(&mut l, t0 + 3 * s), Verdict::Healthy);
        assert_eq!(
            verdict_after(&mut l, t0 + 4 * s).kind(),
            crate::VerdictKind::Degraded
        );
        assert_eq!(
            verdict_after(&mut l, t0 + 9 * s).kind(),
            crate::VerdictKind::Degraded
        );
        assert_eq!(
            verdict_after(&mut l, t0 + 10 * s).kind(),
            crate::VerdictKind::Restart
        );
        // A heartbeat clears it at once.
        let mut out = Decisions::default();
        l.on_signal(
            t0 + 10 * s,
            "w",
            &Signal::Heartbeat(Default::default()),
            &mut out,
        );
        assert_eq!(out.iter().next().unwrap().1, Verdict::Healthy);
    }

    #[test]
    fn consecutive_pong_misses_restart_and_a_pong_resets() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut l = Liveness::new(LivenessConfig {
            heartbeat_interval: None,
            ..Default::default()
        })
        .unwrap();
        let mut sink = Decisions::default();
        l.on_signal(t0, "w", &Signal::Started { incarnation: 1 }, &mut sink);
        for n in 1..=4u64 {
            l.on_signal(
                t0 + 5 * n as u32 * s,
                "w",
                &Signal::PingSent { seq: n },
                &mut sink,
            );
        }
        // Pings at 5,10,15,20: by 23 s all four missed their 3 s window.
        assert_eq!(
            verdict_after(&mut l, t0 + 23 * s).kind(),
            crate::VerdictKind::Degraded
        );
        l.on_signal(t0 + 25 * s, "w", &Signal::PingSent { seq: 5 }, &mut sink);
        assert_eq!(
            verdict_after(&mut l, t0 + 28 * s).kind(),
            crate::VerdictKind::Restart
        );
        l.on_signal(t0 + 29 * s, "w", &Signal::PingSent { seq: 6 }, &mut sink);
        l.on_signal(t0 + 29 * s, "w", &Signal::Pong { seq: 6 }, &mut sink);
        assert_eq!(verdict_after(&mut l, t0 + 30 * s), Verdict::Healthy);
    }

    #[test]
    fn invalid_knobs_are_named() {
        let err = Liveness::new(LivenessConfig {
            heartbeat_timeout: Duration::from_secs(1),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("heartbeat_timeout"), "{err}");
        assert!(Liveness::new(LivenessConfig {
            miss_threshold: 0,
            ..Default::default()
        })
        .is_err());
    }
}
