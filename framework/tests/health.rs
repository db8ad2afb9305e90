//! Health strategies acting through supervisors, on virtual time.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use candado::{
    Alert, AlertLevel, AlertSink, BreakerStrategy, BreakerStrategyConfig, ChildLink, ChildSpec,
    EventKind, ExitReason, FixedSampler, HealLimit, HealthStatus, Liveness, LivenessConfig,
    MemoryConfig, MemoryGuard, MemorySample, Runtime, SupervisorSpec, VerdictKind,
};
use common::*;

const GIB: u64 = 1024 * 1024 * 1024;

fn liveness(config: LivenessConfig) -> Liveness {
    Liveness::new(config).unwrap()
}

fn restart_verdict_for(child: &str) -> impl Fn(&EventKind) -> bool + '_ {
    move |k| matches!(k, EventKind::VerdictChanged { child: c, verdict: VerdictKind::Restart, .. } if c == child)
}

#[test]
fn a_starved_child_is_restarted_within_heartbeat_timeout_plus_one_tick() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root")
            .health(liveness(LivenessConfig {
                ping_interval: None,
                ..Default::default()
            }))
            .child(
                ChildSpec::worker("w", Echo::new)
                    .shutdown(candado::ShutdownPolicy::Timeout(Duration::from_secs(1))),
            )
            .child(ChildSpec::worker("calm", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        advance(Duration::from_millis(5_500)).await;
        root.worker::<Echo>("w")
            .await
            .unwrap()
            .do_send(Starve(Duration::from_secs(3600)));
        let verdict = events
            .wait_for(|e| restart_verdict_for("w")(&e.kind))
            .await
            .unwrap();
        // Heartbeats at 2 s and 4 s; starved from 5.5 s. Last heartbeat: 4 s.
        let last_heartbeat = 4_000;
        assert!(
            verdict.at_ms >= last_heartbeat + 10_000
                && verdict.at_ms <= last_heartbeat + 10_000 + 1_000,
            "detected at {} ms",
            verdict.at_ms
        );
        let exit = events
            .wait_for(|e| matches!(&e.kind, EventKind::ChildExited { child, .. } if child == "w"))
            .await
            .unwrap();
        assert!(
            matches!(&exit.kind, EventKind::ChildExited { reason: ExitReason::Unhealthy { strategy, reason, .. }, .. }
                if strategy == "liveness" && reason.starts_with("no heartbeat")),
            "{exit:?}"
        );
        events
            .wait_for(
                |e| matches!(&e.kind, EventKind::ChildRestarted { child, .. } if child == "w"),
            )
            .await
            .unwrap();
        // The new incarnation answers; the calm sibling was never touched.
        assert_eq!(
            root.worker::<Echo>("w")
                .await
                .unwrap()
                .send(Ping)
                .await
                .unwrap(),
            2
        );
        advance(Duration::from_secs(30)).await;
        let info = root.info().await.unwrap();
        assert_eq!(
            (info.children[1].incarnation, info.children[1].health),
            (1, HealthStatus::Healthy)
        );
        assert_eq!(info.children[0].health, HealthStatus::Healthy);
        root.shutdown().await;
    });
}

#[test]
fn unanswered_pings_degrade_then_restart_after_the_threshold() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root")
            .health(liveness(LivenessConfig {
                heartbeat_interval: None,
                ..Default::default()
            }))
            .child(
                ChildSpec::worker("w", Echo::new)
                    .shutdown(candado::ShutdownPolicy::Timeout(Duration::ZERO)),
            );
        let (_rt, mut events, root) = start_local(spec).await;
        advance(Duration::from_millis(5_500)).await; // one ping answered at 5 s
        root.worker::<Echo>("w")
            .await
            .unwrap()
            .do_send(Starve(Duration::from_secs(3600)));
        let degraded = events
            .wait_for(|e| {
                matches!(
                    e.kind,
                    EventKind::VerdictChanged {
                        verdict: VerdictKind::Degraded,
                        ..
                    }
                )
            })
            .await
            .unwrap();
        // Ping at 10 s, unanswered at 13 s.
        assert_eq!(degraded.at_ms, 13_000);
        let restart = events
            .wait_for(|e| restart_verdict_for("w")(&e.kind))
            .await
            .unwrap();
        // Pings at 10, 15, 20, 25, 30 s; the fifth misses at 33 s.
        assert_eq!(restart.at_ms, 33_000);
        events
            .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
            .await
            .unwrap();
        root.shutdown().await;
    });
}

#[test]
fn a_task_without_progress_is_stuck_while_heartbeats_continue() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root")
            .health(liveness(LivenessConfig {
                progress_timeout: Some(Duration::from_secs(30)),
                ..Default::default()
            }))
            .child(ChildSpec::worker("w", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        root.worker::<Echo>("w")
            .await
            .unwrap()
            .do_send(BeginWork("train epoch 3"));
        let restart = events
            .wait_for(|e| restart_verdict_for("w")(&e.kind))
            .await
            .unwrap();
        assert!(
            matches!(&restart.kind, EventKind::VerdictChanged { reason: Some(r), .. } if r.starts_with("stuck: no progress on `train epoch 3`")),
            "{restart:?}"
        );
        assert_eq!(restart.at_ms, 30_000);
        root.shutdown().await;
    });
}

/// A work label that begins work itself while it is printed.
struct Nested<'a>(&'a ChildLink);

impl std::fmt::Display for Nested<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.begin_work("inner");
        f.write_str("outer")
    }
}

/// A work label whose printing panics.
struct Unprintable;

impl std::fmt::Display for Unprintable {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("this label cannot be printed")
    }
}

#[test]
fn a_work_label_that_panics_or_begins_work_itself_leaves_the_link_working() {
    run_paused(|| async {
        let worker = |link: ChildLink| {
            let begin = std::panic::AssertUnwindSafe(|| link.begin_work(Unprintable));
            assert!(std::panic::catch_unwind(begin).is_err());
            link.begin_work(Nested(&link));
            Echo::new(link)
        };
        let spec = SupervisorSpec::new("root")
            .health(liveness(LivenessConfig {
                progress_timeout: Some(Duration::from_secs(30)),
                ..Default::default()
            }))
            .child(ChildSpec::worker("w", worker));
        let (_rt, mut events, root) = start_local(spec).await;
        let restart = events
            .wait_for(|e| restart_verdict_for("w")(&e.kind))
            .await
            .unwrap();
        assert!(
            matches!(&restart.kind, EventKind::VerdictChanged { reason: Some(r), .. } if r.starts_with("stuck: no progress on `outer`")),
            "{restart:?}"
        );
        root.shutdown().await;
    });
}

fn sample(used_percent: u64, available: u64) -> MemorySample {
    MemorySample {
        process_rss: GIB,
        system_total: 100 * GIB,
        system_available: available.min(100 * GIB - used_percent * GIB),
        cgroup: None,
    }
}

#[test]
fn memory_thresholds_degrade_then_restart_the_largest_child() {
    run_paused(|| async {
        let sampler = FixedSampler::new(sample(50, 50 * GIB));
        let guard = MemoryGuard::new(MemoryConfig {
            leak_rate_per_min: None,
            ..Default::default()
        })
        .unwrap()
        .with_sampler(sampler.clone());
        let spec = SupervisorSpec::new("root")
            .health(guard)
            .child(ChildSpec::worker("small", Echo::new))
            .child(ChildSpec::worker("big", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        root.worker::<Echo>("small")
            .await
            .unwrap()
            .do_send(ReportMemory(GIB));
        root.worker::<Echo>("big")
            .await
            .unwrap()
            .do_send(ReportMemory(4 * GIB));
        // No heartbeat yet: give the metrics a heartbeat to travel.
        advance(Duration::from_millis(2_500)).await;
        assert_eq!(root.info().await.unwrap().health, HealthStatus::Healthy);

        sampler.set(sample(85, 50 * GIB)); // exactly the warning threshold
        advance(Duration::from_secs(1)).await;
        let info = root.info().await.unwrap();
        assert_eq!(info.health, HealthStatus::Degraded);
        assert!(info
            .children
            .iter()
            .all(|c| c.health == HealthStatus::Degraded));
        assert!(info.children[0]
            .health_reason
            .as_deref()
            .unwrap()
            .contains("85.0%"));
        drain(&mut events);

        sampler.set(sample(95, 50 * GIB)); // exactly critical: the biggest goes
        let restart = events
            .wait_for(|e| {
                matches!(
                    e.kind,
                    EventKind::VerdictChanged {
                        verdict: VerdictKind::Restart,
                        ..
                    }
                )
            })
            .await
            .unwrap();
        assert!(
            matches!(&restart.kind, EventKind::VerdictChanged { child, strategy, .. } if child == "big" && strategy == "memory")
        );
        events
            .wait_for(
                |e| matches!(&e.kind, EventKind::ChildRestarted { child, .. } if child == "big"),
            )
            .await
            .unwrap();
        // It stays critical, but the next victim waits for the settle time (30 s).
        advance(Duration::from_secs(20)).await;
        let info = root.info().await.unwrap();
        assert_eq!(
            (info.children[0].incarnation, info.children[1].incarnation),
            (1, 2)
        );
        sampler.set(sample(10, 90 * GIB));
        advance(Duration::from_secs(2)).await;
        assert_eq!(root.info().await.unwrap().health, HealthStatus::Healthy);
        root.shutdown().await;
    });
}

#[test]
fn the_emergency_brake_isolates_then_restarts_after_ten_brakes_and_resets_after_a_safe_minute() {
    run_paused(|| async {
        let sampler = FixedSampler::new(sample(10, 90 * GIB));
        let guard = MemoryGuard::new(MemoryConfig {
            warning_percent: None,
            critical_percent: None,
            ..Default::default()
        })
        .unwrap()
        .with_sampler(sampler.clone());
        let spec = SupervisorSpec::new("root")
            .health(guard)
            .heal_limit(HealLimit {
                max: 10,
                min_gap: Duration::ZERO,
                ..Default::default()
            })
            .child(ChildSpec::worker("w", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        advance(Duration::from_millis(500)).await;
        drain(&mut events);

        // Below the 2 GiB floor for 9 ticks: isolated (no new work), not restarted.
        sampler.set(sample(10, GIB));
        advance(Duration::from_secs(9)).await;
        let w = &root.children().await.unwrap()[0];
        assert!(w.isolated);
        assert_eq!(w.incarnation, 1);
        // Safe for less than a minute: the count is kept...
        sampler.set(sample(10, 90 * GIB));
        advance(Duration::from_secs(30)).await;
        assert!(!root.children().await.unwrap()[0].isolated);
        // ...so one more brake is the tenth in a row.
        sampler.set(sample(10, GIB));
        let restart = events
            .wait_for(|e| {
                matches!(
                    e.kind,
                    EventKind::VerdictChanged {
                        verdict: VerdictKind::Restart,
                        ..
                    }
                )
            })
            .await
            .unwrap();
        assert!(
            matches!(&restart.kind, EventKind::VerdictChanged { reason: Some(r), .. } if r.contains("10 times"))
        );
        events
            .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
            .await
            .unwrap();

        // Safe for a full minute resets the count: 9 more brakes restart nothing.
        sampler.set(sample(10, 90 * GIB));
        advance(Duration::from_secs(61)).await;
        sampler.set(sample(10, GIB));
        advance(Duration::from_secs(9)).await;
        assert_eq!(root.children().await.unwrap()[0].incarnation, 2);
        // The tenth brake orders the restart; the backoff delays it briefly.
        advance(Duration::from_secs(2)).await;
        assert_eq!(
            root.children().await.unwrap()[0].incarnation,
            3,
            "the tenth brake restarts again"
        );
        root.shutdown().await;
    });
}

#[test]
fn a_leaking_child_is_restarted_by_growth_rate() {
    run_paused(|| async {
        let sampler = FixedSampler::new(sample(10, 90 * GIB));
        let guard = MemoryGuard::new(MemoryConfig::default())
            .unwrap()
            .with_sampler(sampler);
        let spec = SupervisorSpec::new("root")
            .health(guard)
            .child(ChildSpec::worker("leaky", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        // Grows 100 MiB every 60 s: 100 MiB/min, over the 50 MiB/min limit.
        for minute in 0..4u64 {
            root.worker::<Echo>("leaky")
                .await
                .unwrap()
                .do_send(ReportMemory(GIB + minute * 100 * 1024 * 1024));
            advance(Duration::from_secs(60)).await;
        }
        let seen = drain(&mut events);
        let restart = find(&seen, |k| {
            matches!(
                k,
                EventKind::VerdictChanged {
                    verdict: VerdictKind::Restart,
                    ..
                }
            )
        })
        .unwrap();
        assert!(
            matches!(&restart.kind, EventKind::VerdictChanged { reason: Some(r), .. } if r.starts_with("leak"))
        );
        // Judged once the samples span half the 5-minute window.
        assert!(
            restart.at_ms >= 150_000 && restart.at_ms <= 182_000,
            "{}",
            restart.at_ms
        );
        root.shutdown().await;
    });
}

#[test]
fn workers_are_recycled_by_age_and_by_tasks() {
    run_paused(|| async {
        let sampler = FixedSampler::new(sample(10, 90 * GIB));
        let guard = MemoryGuard::new(MemoryConfig {
            max_age: Some(Duration::from_secs(3600)),
            max_tasks: Some(100),
            ..Default::default()
        })
        .unwrap()
        .with_sampler(sampler);
        let spec = SupervisorSpec::new("root")
            .health(guard)
            .heal_limit(HealLimit {
                min_gap: Duration::ZERO,
                ..Default::default()
            })
            .child(ChildSpec::worker("old", Echo::new))
            .child(ChildSpec::worker("busy", |link: candado::ChildLink| {
                link.add_tasks_done(100);
                Echo::new(link)
            }));
        let (_rt, mut events, root) = start_local(spec).await;
        let recycled = events
            .wait_for(|e| restart_verdict_for("busy")(&e.kind))
            .await
            .unwrap();
        assert!(
            matches!(&recycled.kind, EventKind::VerdictChanged { reason: Some(r), .. } if r == "recycled: 100 tasks done")
        );
        let aged = events
            .wait_for(|e| restart_verdict_for("old")(&e.kind))
            .await
            .unwrap();
        assert_eq!(aged.at_ms, 3_600_000);
        root.shutdown().await;
    });
}

#[test]
fn a_child_breaker_isolates_probes_half_open_and_closes() {
    run_paused(|| async {
        let strategy = BreakerStrategy::new(BreakerStrategyConfig::default()).unwrap();
        let breakers = strategy.breakers();
        let spec = SupervisorSpec::new("root")
            .health(strategy)
            .child(ChildSpec::worker("w", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        let w = root.worker::<Echo>("w").await.unwrap();
        for _ in 0..5 {
            w.do_send(Outcome(None, false));
        }
        let isolated = events
            .wait_for(|e| {
                matches!(
                    e.kind,
                    EventKind::VerdictChanged {
                        verdict: VerdictKind::Isolate,
                        ..
                    }
                )
            })
            .await
            .unwrap();
        let opened_at = isolated.at_ms;
        assert!(root.children().await.unwrap()[0].isolated);
        assert!(!breakers.allow_child("w"));
        let half = events
            .wait_for(|e| {
                matches!(
                    e.kind,
                    EventKind::VerdictChanged {
                        verdict: VerdictKind::Degraded,
                        ..
                    }
                )
            })
            .await
            .unwrap();
        assert_eq!(
            half.at_ms - opened_at,
            5_000,
            "half-open on the tick when the 5 s cooldown ends"
        );
        assert!(!root.children().await.unwrap()[0].isolated);
        // Both probes out: no more work for `w` until one reports back.
        assert!(breakers.allow_child("w") && breakers.allow_child("w"));
        assert!(!breakers.allow_child("w"));
        // A probe that failed through a dependency proves nothing against the
        // child, but frees its probe slot.
        w.do_send(Outcome(Some("payments"), false));
        advance(Duration::from_millis(10)).await;
        assert!(breakers.allow_child("w"), "the probe slot came back");
        assert_eq!(
            breakers.child_state("w"),
            Some(candado::BreakerState::HalfOpen)
        );
        // Successes through a dependency count for the child too.
        w.do_send(Outcome(Some("payments"), true));
        w.do_send(Outcome(None, true));
        events
            .wait_for(|e| {
                matches!(
                    e.kind,
                    EventKind::VerdictChanged {
                        verdict: VerdictKind::Healthy,
                        ..
                    }
                )
            })
            .await
            .unwrap();
        assert_eq!(
            breakers.child_state("w"),
            Some(candado::BreakerState::Closed)
        );

        // Dependency outcomes open the dependency's breaker, not the child's.
        for _ in 0..5 {
            w.do_send(Outcome(Some("payments"), false));
        }
        advance(Duration::from_millis(10)).await;
        assert_eq!(
            breakers.dependency_state("payments"),
            Some(candado::BreakerState::Open)
        );
        assert_eq!(
            root.children().await.unwrap()[0].health,
            HealthStatus::Healthy
        );
        assert_eq!(breakers.opened_total(), 2);

        // Saved state survives into a new registry.
        let saved = serde_json::to_string(&breakers.snapshot()).unwrap();
        let fresh = BreakerStrategy::new(BreakerStrategyConfig::default())
            .unwrap()
            .breakers();
        fresh
            .restore(&serde_json::from_str(&saved).unwrap())
            .unwrap();
        assert_eq!(
            fresh.dependency_state("payments"),
            Some(candado::BreakerState::Open)
        );
        assert!(!fresh.allow_dependency("payments"));
        root.shutdown().await;
    });
}

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<Alert>>);

impl AlertSink for Collect {
    fn deliver(&self, alert: &Alert) {
        self.0.lock().unwrap().push(alert.clone());
    }
}

#[test]
fn the_heal_limit_defers_then_refuses_restarts_and_raises_a_critical_alert() {
    run_paused(|| async {
        let sink = Arc::new(Collect::default());
        let runtime = Runtime::builder()
            .current_thread()
            .alert_sink(sink.clone())
            .build()
            .unwrap();
        let mut events = runtime.subscribe();
        let spec = SupervisorSpec::new("root")
            .health(liveness(LivenessConfig {
                ping_interval: None,
                ..Default::default()
            }))
            .child(
                ChildSpec::worker("w", Echo::new)
                    .shutdown(candado::ShutdownPolicy::Timeout(Duration::ZERO)),
            );
        let root = runtime.start(spec).await.unwrap();
        let mut restarts_at = Vec::new();
        for _ in 0..3 {
            root.worker::<Echo>("w")
                .await
                .unwrap()
                .do_send(Starve(Duration::from_secs(7200)));
            let e = events
                .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
                .await
                .unwrap();
            restarts_at.push(e.at_ms / 1000);
        }
        // Detected at 10 s; the second restart waits for the 5-minute gap; the third too.
        assert_eq!(restarts_at[0], 10);
        assert_eq!(restarts_at[1], 10 + 300);
        assert_eq!(restarts_at[2], 10 + 600);

        // A fourth within the hour: refused, left isolated, critical.
        root.worker::<Echo>("w")
            .await
            .unwrap()
            .do_send(Starve(Duration::from_secs(7200)));
        let critical = events
            .wait_for(|e| {
                matches!(
                    e.kind,
                    EventKind::HealthChanged {
                        status: HealthStatus::Critical,
                        ..
                    }
                )
            })
            .await
            .unwrap();
        let w = &root.children().await.unwrap()[0];
        assert!(w.isolated && w.incarnation == 4);
        assert_eq!(root.info().await.unwrap().health, HealthStatus::Critical);
        // The critical alert needs 3 consecutive occurrences: at the refusal and two ticks later.
        let alert = events
            .wait_for(|e| matches!(e.kind, EventKind::Alert(_)))
            .await
            .unwrap();
        assert_eq!(alert.at_ms - critical.at_ms, 2_000);
        let delivered = sink.0.lock().unwrap().clone();
        let critical: Vec<_> = delivered
            .iter()
            .filter(|a| a.level == AlertLevel::Critical)
            .collect();
        assert_eq!(critical.len(), 1);
        assert_eq!(critical[0].key, "root/w:heal-limit");
        // While the gap deferred a restart, `w` was degraded long enough for a warning.
        assert!(delivered
            .iter()
            .any(|a| a.level == AlertLevel::Warning && a.key == "root/w:degraded"));
        // Within the hour's cooldown it is not repeated.
        advance(Duration::from_secs(600)).await;
        assert_eq!(
            sink.0
                .lock()
                .unwrap()
                .iter()
                .filter(|a| a.level == AlertLevel::Critical)
                .count(),
            1
        );
        // When the first heal leaves the hour window, the restart goes ahead.
        events
            .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
            .await
            .unwrap();
        let w = &root.children().await.unwrap()[0];
        assert_eq!(w.incarnation, 5);
        root.shutdown().await;
    });
}

#[test]
fn the_tree_summary_is_the_worst_health_anywhere_below() {
    run_paused(|| async {
        let sampler = FixedSampler::new(sample(10, 90 * GIB));
        let guard = MemoryGuard::new(MemoryConfig {
            child_warning_bytes: Some(GIB),
            ..Default::default()
        })
        .unwrap()
        .with_sampler(sampler);
        let spec = SupervisorSpec::new("root")
            .child(ChildSpec::worker("top", Echo::new))
            .child(ChildSpec::supervisor(
                SupervisorSpec::new("mid").child(ChildSpec::supervisor(
                    SupervisorSpec::new("leaf")
                        .health(guard)
                        .child(ChildSpec::worker("w", Echo::new)),
                )),
            ));
        let (_rt, _events, root) = start_local(spec).await;
        assert_eq!(root.tree_health().await.unwrap(), HealthStatus::Healthy);
        let leaf = root
            .supervisor("mid")
            .await
            .unwrap()
            .supervisor("leaf")
            .await
            .unwrap();
        leaf.worker::<Echo>("w")
            .await
            .unwrap()
            .do_send(ReportMemory(2 * GIB));
        advance(Duration::from_secs(3)).await;
        assert_eq!(leaf.info().await.unwrap().health, HealthStatus::Degraded);
        assert_eq!(
            root.info().await.unwrap().health,
            HealthStatus::Healthy,
            "root's own children are fine"
        );
        assert_eq!(root.tree_health().await.unwrap(), HealthStatus::Degraded);
        root.shutdown().await;
    });
}

/// An application's own strategy: the verdict named by a failed outcome's dependency.
#[derive(Clone, Default)]
struct Scripted;

impl candado::HealthStrategy for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn on_signal(
        &mut self,
        _: tokio::time::Instant,
        child: &str,
        signal: &candado::Signal,
        out: &mut candado::Decisions,
    ) {
        if let candado::Signal::Outcome {
            dependency: Some(order),
            success: false,
        } = signal
        {
            let reason = format!("ordered: {order}");
            match order.as_str() {
                "stop" => out.set(
                    child,
                    candado::Verdict::Stop {
                        cause: candado::HealthCause::Other,
                        reason,
                    },
                ),
                "escalate" => out.set(child, candado::Verdict::Escalate { reason }),
                _ => {}
            }
        }
    }
    fn on_tick(&mut self, _: tokio::time::Instant, _: &mut candado::Decisions) {}
}

#[test]
fn a_custom_strategy_can_stop_a_child_or_escalate() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root").child(ChildSpec::supervisor(
            SupervisorSpec::new("sub")
                .health(Scripted)
                .child(ChildSpec::worker("a", Echo::new))
                .child(ChildSpec::worker("b", Echo::new)),
        ));
        let (_rt, mut events, root) = start_local(spec).await;
        let sub = root.supervisor("sub").await.unwrap();

        sub.worker::<Echo>("a")
            .await
            .unwrap()
            .do_send(Outcome(Some("stop"), false));
        let exit = events
            .wait_for(|e| matches!(&e.kind, EventKind::ChildExited { child, .. } if child == "a"))
            .await
            .unwrap();
        assert!(
            matches!(&exit.kind, EventKind::ChildExited { reason: ExitReason::Unhealthy { strategy, reason, .. }, .. }
            if strategy == "scripted" && reason == "ordered: stop")
        );
        advance(Duration::from_secs(10)).await;
        let a = &sub.children().await.unwrap()[0];
        assert_eq!(
            (a.status, a.incarnation),
            (candado::ChildStatus::Stopped, 1),
            "stopped, not restarted"
        );

        sub.worker::<Echo>("b")
            .await
            .unwrap()
            .do_send(Outcome(Some("escalate"), false));
        let escalated = events
            .wait_for(|e| matches!(e.kind, EventKind::Escalated { .. }))
            .await
            .unwrap();
        assert_eq!(escalated.supervisor, "root/sub");
        // The parent restarts the subtree, fresh.
        events
            .wait_for(
                |e| matches!(&e.kind, EventKind::ChildRestarted { child, .. } if child == "sub"),
            )
            .await
            .unwrap();
        let sub = root.supervisor("sub").await.unwrap();
        assert!(sub
            .children()
            .await
            .unwrap()
            .iter()
            .all(|c| c.status == candado::ChildStatus::Running));
        root.shutdown().await;
    });
}
