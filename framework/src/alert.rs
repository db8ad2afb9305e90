//! Alerts: rate-limited notifications about conditions that persist.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    /// Worth knowing (e.g. a strategy restarted a child).
    Info,
    /// Something is degraded (e.g. a child misses heartbeats or is isolated).
    Warning,
    /// Needs a human (e.g. the heal limit left a child isolated).
    Critical,
}

/// When occurrences of one alert become a delivered alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPolicy {
    /// Consecutive occurrences needed before the alert is delivered.
    pub threshold: u32,
    /// After a delivery, the same alert is not delivered again within this time.
    pub cooldown: Duration,
}

/// Policies per level. Defaults (from production alerting of worker
/// fleets): critical after 3 occurrences
/// with a 1 h cooldown, warning after 5 with 2 h, info after 10 with 24 h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertConfig {
    /// Policy for [`AlertLevel::Critical`].
    pub critical: AlertPolicy,
    /// Policy for [`AlertLevel::Warning`].
    pub warning: AlertPolicy,
    /// Policy for [`AlertLevel::Info`].
    pub info: AlertPolicy,
}

impl Default for AlertConfig {
    fn default() -> Self {
        let hour = Duration::from_secs(3600);
        Self {
            critical: AlertPolicy {
                threshold: 3,
                cooldown: hour,
            },
            warning: AlertPolicy {
                threshold: 5,
                cooldown: 2 * hour,
            },
            info: AlertPolicy {
                threshold: 10,
                cooldown: 24 * hour,
            },
        }
    }
}

impl AlertConfig {
    fn policy(&self, level: AlertLevel) -> AlertPolicy {
        match level {
            AlertLevel::Critical => self.critical,
            AlertLevel::Warning => self.warning,
            AlertLevel::Info => self.info,
        }
    }
}

/// A delivered alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Urgency.
    pub level: AlertLevel,
    /// Identity of the condition, e.g. `root/engine-1:heal-limit`; cooldowns are per key.
    pub key: String,
    /// Human-readable text.
    pub message: String,
    /// Consecutive occurrences when delivered.
    pub occurrences: u32,
}

/// Where delivered alerts go, besides the event stream.
pub trait AlertSink: Send + Sync + fmt::Debug + 'static {
    /// Delivers one alert. Must not block: it runs on the control thread.
    fn deliver(&self, alert: &Alert);
}

/// The default sink: a `tracing` event (error for critical, warn for warning, info for info).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl AlertSink for TracingSink {
    fn deliver(&self, alert: &Alert) {
        let Alert {
            level,
            key,
            message,
            occurrences,
        } = alert;
        match level {
            AlertLevel::Critical => tracing::error!(alert = key, occurrences, "{message}"),
            AlertLevel::Warning => tracing::warn!(alert = key, occurrences, "{message}"),
            AlertLevel::Info => tracing::info!(alert = key, occurrences, "{message}"),
        }
    }
}

#[derive(Debug, Default)]
struct Track {
    consecutive: u32,
    last_delivered: Option<Instant>,
}

/// Counts occurrences per key and decides deliveries (pure, clock passed in).
#[derive(Debug, Default)]
pub(crate) struct Alerter {
    config: AlertConfig,
    tracks: HashMap<String, Track>,
}

impl Alerter {
    pub(crate) fn new(config: AlertConfig) -> Self {
        Self {
            config,
            tracks: HashMap::new(),
        }
    }

    /// Records one occurrence; returns the alert if it must be delivered now.
    pub(crate) fn occur(
        &mut self,
        now: Instant,
        level: AlertLevel,
        key: &str,
        message: &str,
    ) -> Option<Alert> {
        let policy = self.config.policy(level);
        let track = self.tracks.entry(key.to_owned()).or_default();
        track.consecutive = track.consecutive.saturating_add(1);
        let cooled = track
            .last_delivered
            .is_none_or(|t| now.duration_since(t) >= policy.cooldown);
        if track.consecutive >= policy.threshold && cooled {
            track.last_delivered = Some(now);
            Some(Alert {
                level,
                key: key.to_owned(),
                message: message.to_owned(),
                occurrences: track.consecutive,
            })
        } else {
            None
        }
    }

    /// The condition is gone: the next occurrence starts a new streak (the
    /// cooldown still applies).
    pub(crate) fn clear(&mut self, key: &str) {
        if let Some(track) = self.tracks.get_mut(key) {
            track.consecutive = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_then_cooldown() {
        let t0 = Instant::now();
        let mut a = Alerter::new(AlertConfig::default());
        let crit = |a: &mut Alerter, t| a.occur(t, AlertLevel::Critical, "k", "m");
        assert!(crit(&mut a, t0).is_none());
        assert!(crit(&mut a, t0).is_none());
        let alert = crit(&mut a, t0).expect("third occurrence delivers");
        assert_eq!(alert.occurrences, 3);
        // Within the hour: counted, not delivered.
        assert!(crit(&mut a, t0 + Duration::from_secs(600)).is_none());
        // After the cooldown, the streak continues and delivers again.
        assert!(crit(&mut a, t0 + Duration::from_secs(3600)).is_some());
        // A cleared condition needs the full threshold again.
        a.clear("k");
        let later = t0 + Duration::from_secs(3 * 3600);
        assert!(crit(&mut a, later).is_none());
        assert!(crit(&mut a, later).is_none());
        assert!(crit(&mut a, later).is_some());
    }

    #[test]
    fn levels_have_their_own_thresholds() {
        let t0 = Instant::now();
        let mut a = Alerter::new(AlertConfig::default());
        let delivered = (0..10)
            .filter_map(|_| a.occur(t0, AlertLevel::Info, "i", "m"))
            .count();
        assert_eq!(delivered, 1, "info delivers at the 10th occurrence only");
        let first = (1..=5).find(|_| a.occur(t0, AlertLevel::Warning, "w", "m").is_some());
        assert_eq!(first, Some(5));
    }
}
