//! The memory guard's validation, its emergency brake over long runs (on
//! virtual time), and container (cgroup) limits.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use candado::{
    Alert, AlertLevel, AlertSink, CgroupMemory, ChildSpec, Decisions, EventKind, EventStream,
    FixedSampler, HealLimit, HealthStatus, HealthStrategy, MemoryConfig, MemoryGuard, MemorySample,
    Runtime, Signal, SpecError, SupervisorSpec, Verdict,
};
use common::*;

const GIB: u64 = 1024 * 1024 * 1024;

fn sample(available: u64) -> MemorySample {
    MemorySample {
        process_rss: GIB,
        system_total: 100 * GIB,
        system_available: available,
        cgroup: None,
    }
}

/// A guard that only brakes (no percentage thresholds, no leak detection).
fn brake_only(sampler: &FixedSampler, brake_limit: u32) -> MemoryGuard {
    MemoryGuard::new(MemoryConfig {
        warning_percent: None,
        critical_percent: None,
        leak_rate_per_min: None,
        brake_limit,
        ..Default::default()
    })
    .unwrap()
    .with_sampler(sampler.clone())
}

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<Alert>>);

impl AlertSink for Collect {
    fn deliver(&self, alert: &Alert) {
        self.0.lock().unwrap().push(alert.clone());
    }
}

/// Counts the events queued on `stream`, failing if the stream lagged.
fn count(stream: &mut EventStream, pred: impl Fn(&EventKind) -> bool) -> usize {
    let mut n = 0;
    loop {
        match stream.try_recv() {
            Ok(Some(event)) => n += usize::from(pred(&event.kind)),
            Ok(None) => return n,
            Err(e) => panic!("the event stream lagged: {e}"),
        }
    }
}

#[test]
fn a_warning_percentage_above_the_critical_one_is_rejected_even_within_a_whole_percent() {
    let config = MemoryConfig {
        warning_percent: Some(95.5),
        critical_percent: Some(95.2),
        ..Default::default()
    };
    let err = MemoryGuard::new(config).unwrap_err();
    assert!(
        matches!(&err, SpecError::InvalidStrategy { strategy, problem }
            if strategy == "memory" && problem.contains("warning_percent")),
        "{err}"
    );
    assert_eq!(config.validate(), Err(err));
    // Equal thresholds are allowed, as before.
    assert!(MemoryGuard::new(MemoryConfig {
        warning_percent: Some(95.2),
        critical_percent: Some(95.2),
        ..Default::default()
    })
    .is_ok());
}

#[test]
fn a_standing_brake_the_heal_limit_refuses_stays_critical_and_raises_one_critical_alert() {
    run_paused(|| async {
        let sink = Arc::new(Collect::default());
        let runtime = Runtime::builder()
            .current_thread()
            .alert_sink(sink.clone())
            .build()
            .unwrap();
        let sampler = FixedSampler::new(sample(90 * GIB));
        let spec = SupervisorSpec::new("root")
            .health(brake_only(&sampler, 10))
            // Every memory restart is refused.
            .heal_limit(HealLimit {
                max: 0,
                ..Default::default()
            })
            .child(ChildSpec::worker("w", Echo::new));
        let root = runtime.start(spec).await.unwrap();
        advance(Duration::from_millis(500)).await;

        sampler.set(sample(GIB));
        // Ten brakes order the restart; the heal limit refuses it.
        advance(Duration::from_secs(10)).await;
        let w = &root.children().await.unwrap()[0];
        assert_eq!(w.health, HealthStatus::Critical);
        assert_eq!(w.incarnation, 1);
        // The condition stands: critical on every tick that follows, never
        // degraded in between.
        for second in 0..30 {
            advance(Duration::from_secs(1)).await;
            let w = &root.children().await.unwrap()[0];
            assert_eq!(w.health, HealthStatus::Critical, "{second} s later");
            assert!(w.isolated);
        }
        let critical = |sink: &Collect| {
            sink.0
                .lock()
                .unwrap()
                .iter()
                .filter(|a| a.level == AlertLevel::Critical && a.key == "root/w:heal-limit")
                .count()
        };
        assert_eq!(critical(&sink), 1, "the critical alert came");
        // Within its one-hour cooldown it is not repeated; after it, it is.
        advance(Duration::from_secs(3000)).await;
        assert_eq!(critical(&sink), 1);
        advance(Duration::from_secs(600)).await;
        assert_eq!(critical(&sink), 2);
        assert_eq!(root.children().await.unwrap()[0].incarnation, 1);
        root.shutdown().await;
    });
}

#[test]
fn a_standing_brake_over_an_hour_publishes_a_bounded_number_of_events() {
    run_paused(|| async {
        let sampler = FixedSampler::new(sample(90 * GIB));
        let spec = SupervisorSpec::new("root")
            // The brake isolates, and never reaches a restart.
            .health(brake_only(&sampler, u32::MAX))
            .child(ChildSpec::worker("a", Echo::new))
            .child(ChildSpec::worker("b", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        advance(Duration::from_millis(500)).await;
        count(&mut events, |_| true);

        sampler.set(sample(GIB));
        let health_events = |k: &EventKind| {
            matches!(
                k,
                EventKind::VerdictChanged { .. } | EventKind::HealthChanged { .. }
            )
        };
        let (mut health, mut all) = (0, 0);
        for _ in 0..60 {
            advance(Duration::from_secs(60)).await;
            let batch: Vec<_> = std::iter::from_fn(|| events.try_recv().expect("no lag"))
                .map(|e| e.kind)
                .collect();
            health += batch.iter().filter(|k| health_events(k)).count();
            all += batch.len();
        }
        // One verdict change and one health change per child when the brake
        // begins; nothing while it stands.
        assert_eq!(health, 4, "verdict and health changes in an hour");
        assert!(all <= 10, "{all} events in an hour");
        let info = root.info().await.unwrap();
        assert!(info.children.iter().all(|c| c.isolated));
        // The count is in the snapshot, not in the events.
        let reason = info.children[0].health_reason.clone().unwrap();
        assert!(reason.contains("emergency brake"), "{reason}");
        root.shutdown().await;
    });
}

/// The verdict a fresh guard gives one started child on its first tick.
fn verdict_for(sample: MemorySample) -> Verdict {
    let mut guard = MemoryGuard::new(MemoryConfig {
        brake_floor: None,
        leak_rate_per_min: None,
        ..MemoryConfig::default()
    })
    .unwrap()
    .with_sampler(FixedSampler::new(sample));
    let now = tokio::time::Instant::now();
    let mut out = Decisions::default();
    guard.on_signal(now, "w", &Signal::Started { incarnation: 1 }, &mut out);
    let mut out = Decisions::default();
    guard.on_tick(now, &mut out);
    let verdict = out
        .iter()
        .find(|(child, _)| child == "w")
        .map_or(Verdict::Healthy, |(_, v)| v.clone());
    verdict
}

#[test]
fn a_cgroup_limit_below_the_host_total_is_what_the_percentage_is_judged_against() {
    // The host is 10% used; the container holds 31/32 of its 2 GiB limit.
    let pod = MemorySample {
        process_rss: GIB,
        system_total: 100 * GIB,
        system_available: 90 * GIB,
        cgroup: Some(CgroupMemory {
            limit: 2 * GIB,
            available: 2 * GIB / 32,
        }),
    };
    assert_eq!(pod.total(), 2 * GIB);
    assert!(pod.used_percent() == 96.875, "{}", pod.used_percent());
    assert!(
        matches!(verdict_for(pod), Verdict::Restart { ref reason, .. } if reason.contains("container memory 96.9% used")),
        "{:?}",
        verdict_for(pod)
    );

    // The same container usage with no limit (`max`), or a limit above
    // the host's memory: the host's total is the measure, and all is well.
    for limit in [u64::MAX, 200 * GIB] {
        let unlimited = MemorySample {
            cgroup: Some(CgroupMemory {
                limit,
                available: 0,
            }),
            ..pod
        };
        assert_eq!(unlimited.cgroup_limit(), None);
        assert_eq!(unlimited.total(), 100 * GIB);
        assert_eq!(unlimited.available(), 90 * GIB);
        assert_eq!(unlimited.used_percent(), 10.0);
        assert_eq!(verdict_for(unlimited), Verdict::Healthy);
    }
    let no_cgroup = MemorySample {
        cgroup: None,
        ..pod
    };
    assert_eq!(no_cgroup.used_percent(), 10.0);
    assert_eq!(verdict_for(no_cgroup), Verdict::Healthy);
}

#[test]
fn the_brake_floor_counts_what_the_container_has_left() {
    let sampler = FixedSampler::new(MemorySample {
        process_rss: GIB,
        system_total: 100 * GIB,
        system_available: 90 * GIB,
        cgroup: Some(CgroupMemory {
            limit: 4 * GIB,
            available: GIB,
        }),
    });
    let mut guard = brake_only(&sampler, 10);
    let now = tokio::time::Instant::now();
    let mut out = Decisions::default();
    guard.on_signal(now, "w", &Signal::Started { incarnation: 1 }, &mut out);
    let mut out = Decisions::default();
    guard.on_tick(now, &mut out);
    assert!(
        out.iter().any(|(child, v)| child == "w"
            && matches!(v, Verdict::Isolate { reason, .. } if reason.contains("1024 MiB available"))),
        "{out:?}"
    );
}
