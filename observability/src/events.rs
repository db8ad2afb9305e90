//! Counters fed by the runtime's event stream.
//!
//! Transitions (a restart, a verdict, a refusal) leave no trace in a
//! snapshot, so they are counted as they happen, by the feed
//! (`feed.rs`) on the observer's own thread. Events the bus dropped before
//! the observer read them are counted too (`events_lagged`);
//! gauges never depend on these counters (they come from snapshots).

use candado::{Event, EventKind, HealthStatus};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::labels::{
    self, ChildLabels, LevelLabels, ReasonLabels, SupervisorLabels, VerdictLabels,
};

/// The counters the event stream feeds. Clones share their values.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventCounters {
    received: Counter,
    lagged: Counter,
    exits: Family<ReasonLabels, Counter>,
    restarts: Family<ReasonLabels, Counter>,
    verdicts: Family<VerdictLabels, Counter>,
    heal_refusals: Family<ChildLabels, Counter>,
    escalations: Family<SupervisorLabels, Counter>,
    root_failures: Family<SupervisorLabels, Counter>,
    threads_stuck: Counter,
    threads_recovered: Counter,
    alerts: Family<LevelLabels, Counter>,
}

impl EventCounters {
    /// Counts one event.
    pub(crate) fn record(&self, event: &Event) {
        self.received.inc();
        let supervisor = || event.supervisor.clone();
        match &event.kind {
            EventKind::ChildExited { reason, .. } => {
                let reason = reason.cause().key().to_owned();
                let labels = ReasonLabels {
                    supervisor: supervisor(),
                    reason,
                };
                self.exits.get_or_create(&labels).inc();
            }
            EventKind::ChildRestarted { cause, .. } => {
                let labels = ReasonLabels {
                    supervisor: supervisor(),
                    reason: cause.key().to_owned(),
                };
                self.restarts.get_or_create(&labels).inc();
            }
            EventKind::VerdictChanged {
                strategy, verdict, ..
            } => {
                let labels = VerdictLabels {
                    supervisor: supervisor(),
                    strategy: strategy.clone(),
                    verdict: labels::verdict(*verdict).to_owned(),
                };
                self.verdicts.get_or_create(&labels).inc();
            }
            // Only the heal limit's refusal of a restart makes a child
            // critical; the event is published when the status changes.
            EventKind::HealthChanged {
                child,
                status: HealthStatus::Critical,
                ..
            } => {
                let labels = ChildLabels {
                    supervisor: supervisor(),
                    child: child.clone(),
                };
                self.heal_refusals.get_or_create(&labels).inc();
            }
            EventKind::Escalated { .. } => {
                let labels = SupervisorLabels {
                    supervisor: supervisor(),
                };
                self.escalations.get_or_create(&labels).inc();
            }
            EventKind::Fatal { .. } => {
                let labels = SupervisorLabels {
                    supervisor: supervisor(),
                };
                self.root_failures.get_or_create(&labels).inc();
            }
            EventKind::ThreadStuck { .. } => {
                self.threads_stuck.inc();
            }
            EventKind::ThreadRecovered { .. } => {
                self.threads_recovered.inc();
            }
            EventKind::Alert(alert) => {
                let labels = LevelLabels {
                    level: labels::alert_level(alert.level).to_owned(),
                };
                self.alerts.get_or_create(&labels).inc();
            }
            _ => {}
        }
    }

    /// Counts events the bus dropped before the observer read them.
    pub(crate) fn lagged(&self, missed: u64) {
        self.lagged.inc_by(missed);
    }

    /// Registers every counter (clones sharing the values) in `registry`.
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "events_received",
            "Runtime events the observer counted",
            self.received.clone(),
        );
        registry.register(
            "events_lagged",
            "Runtime events the bus dropped before the observer read them (the counters below miss them)",
            self.lagged.clone(),
        );
        registry.register(
            "child_exits",
            "Exits of child incarnations, by supervisor and reason kind",
            self.exits.clone(),
        );
        registry.register(
            "restarts",
            "Children restarted, by supervisor and the reason their previous incarnation ended",
            self.restarts.clone(),
        );
        registry.register(
            "verdicts",
            "Changes of a health strategy's verdict about a child, by supervisor, strategy and new verdict",
            self.verdicts.clone(),
        );
        registry.register(
            "heal_limit_refusals",
            "Times a child turned critical because the heal limit refused the restart a strategy ordered",
            self.heal_refusals.clone(),
        );
        registry.register(
            "escalations",
            "Supervisors that exceeded their restart intensity and escalated to their parent",
            self.escalations.clone(),
        );
        registry.register(
            "root_failures",
            "Root supervisors that gave up: their whole tree went down",
            self.root_failures.clone(),
        );
        registry.register(
            "threads_stuck",
            "Worker threads found stuck and retired",
            self.threads_stuck.clone(),
        );
        registry.register(
            "threads_recovered",
            "Stuck worker threads that answered again",
            self.threads_recovered.clone(),
        );
        registry.register("alerts", "Alerts delivered, by level", self.alerts.clone());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use candado::{ExitReason, VerdictKind};
    use prometheus_client::encoding::text::encode;

    use super::*;

    pub(crate) fn render(counters: &EventCounters) -> String {
        let mut registry = Registry::with_prefix("candado");
        counters.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    fn event(supervisor: &str, kind: EventKind) -> Event {
        Event {
            at_ms: 0,
            supervisor: supervisor.into(),
            kind,
        }
    }

    #[test]
    fn verdicts_refusals_escalations_and_alerts_are_counted_by_their_labels() {
        let counters = EventCounters::default();
        let verdict = |verdict| EventKind::VerdictChanged {
            strategy: "liveness".into(),
            child: "w".into(),
            verdict,
            cause: None,
            reason: None,
        };
        let health = |status| EventKind::HealthChanged {
            child: "w".into(),
            status,
            isolated: true,
            reason: None,
        };
        for kind in [
            verdict(VerdictKind::Restart),
            verdict(VerdictKind::Healthy),
            verdict(VerdictKind::Restart),
            health(HealthStatus::Degraded),
            health(HealthStatus::Critical),
            EventKind::Escalated {
                reason: ExitReason::Escalated {
                    child: "w".into(),
                    restarts: 3,
                },
            },
            EventKind::Alert(candado::Alert {
                level: candado::AlertLevel::Critical,
                key: "app/w:heal-limit".into(),
                message: "m".into(),
                occurrences: 3,
            }),
        ] {
            counters.record(&event("app", kind));
        }
        let text = render(&counters);
        for line in [
            r#"candado_verdicts_total{supervisor="app",strategy="liveness",verdict="restart"} 2"#,
            r#"candado_verdicts_total{supervisor="app",strategy="liveness",verdict="healthy"} 1"#,
            r#"candado_heal_limit_refusals_total{supervisor="app",child="w"} 1"#,
            r#"candado_escalations_total{supervisor="app"} 1"#,
            r#"candado_alerts_total{level="critical"} 1"#,
            "# TYPE candado_heal_limit_refusals counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
