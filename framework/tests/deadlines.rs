//! Users' durations at the edges — `Duration::MAX`, one nanosecond — in every
//! knob that becomes a deadline or a timer period: a supervisor given them
//! runs and stops on virtual time without a panic or a spin (issue 16).

mod common;

use std::sync::mpsc;
use std::sync::{Mutex, Once};
use std::thread::ThreadId;
use std::time::Duration;

use candado::{
    BreakerConfig, BreakerStrategy, BreakerStrategyConfig, ChildSpec, FixedSampler, HealLimit,
    Liveness, LivenessConfig, MemoryConfig, MemoryGuard, MemorySample, Runtime, RuntimeError,
    SupervisorSpec,
};
use common::*;

/// Panics seen, by thread: the framework's actors run in tasks whose panics
/// nobody re-raises, so only a hook sees them.
static PANICS: Mutex<Vec<(ThreadId, String)>> = Mutex::new(Vec::new());

fn record_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let message = info.payload_as_str().unwrap_or("non-string payload");
            PANICS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((std::thread::current().id(), format!("{message}{at}")));
            previous(info);
        }));
    });
}

/// Runs `spec` (plus `feed`, which may message its children) on a paused
/// runtime of its own thread for `minutes` of virtual time, then shuts it
/// down. Fails on any panic there, and on a run that takes over 20 s of
/// real time (a spinning timer never lets virtual time move).
fn runs_and_stops<F>(spec: SupervisorSpec, minutes: u64, feed: F)
where
    F: FnOnce(candado::SupervisorRef) + Send + 'static,
{
    record_panics();
    let (done, finished) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        run_paused(|| async move {
            let (runtime, _events, root) = start_local(spec).await;
            feed(root);
            for _ in 0..minutes * 4 {
                advance(Duration::from_secs(15)).await;
            }
            let stopped = tokio::time::timeout(Duration::from_secs(600), runtime.shutdown()).await;
            assert!(stopped.is_ok(), "shutdown hung");
        });
        let _ = done.send(());
    });
    let id = runner.thread().id();
    let outcome = finished.recv_timeout(Duration::from_secs(20));
    let panics: Vec<String> = PANICS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(t, _)| *t == id)
        .map(|(_, m)| m.clone())
        .collect();
    assert!(panics.is_empty(), "panicked: {panics:#?}");
    assert!(outcome.is_ok(), "hung: no progress in 20 s of real time");
}

fn two_children(spec: SupervisorSpec) -> SupervisorSpec {
    spec.child(ChildSpec::worker("a", Echo::new))
        .child(ChildSpec::worker("b", Echo::new))
}

fn quiet_memory() -> MemoryConfig {
    MemoryConfig {
        warning_percent: None,
        critical_percent: None,
        brake_floor: None,
        leak_rate_per_min: None,
        ..MemoryConfig::default()
    }
}

fn plenty() -> FixedSampler {
    FixedSampler::new(MemorySample {
        process_rss: 1 << 20,
        system_available: 1 << 34,
        system_total: 1 << 35,
        cgroup: None,
    })
}

#[test]
fn a_one_nanosecond_heartbeat_does_not_spin() {
    let liveness = Liveness::new(LivenessConfig {
        heartbeat_interval: Some(Duration::from_nanos(1)),
        ..LivenessConfig::default()
    })
    .unwrap();
    runs_and_stops(
        two_children(SupervisorSpec::new("root").health(liveness)),
        2,
        drop,
    );
}

#[test]
fn a_one_nanosecond_ping_and_tick_do_not_spin() {
    let liveness = Liveness::new(LivenessConfig {
        ping_interval: Some(Duration::from_nanos(1)),
        pong_timeout: Duration::from_nanos(1),
        ..LivenessConfig::default()
    })
    .unwrap();
    let spec = SupervisorSpec::new("root")
        .tick_interval(Duration::from_nanos(1))
        .health(liveness);
    runs_and_stops(two_children(spec), 2, drop);
}

#[test]
fn the_longest_heartbeat_interval_and_timeout_do_not_overflow() {
    let liveness = Liveness::new(LivenessConfig {
        heartbeat_interval: Some(Duration::MAX / 2 + Duration::from_secs(1)),
        heartbeat_timeout: Duration::MAX,
        ping_interval: Some(Duration::MAX),
        pong_timeout: Duration::MAX,
        progress_timeout: Some(Duration::MAX),
        ..LivenessConfig::default()
    })
    .unwrap();
    let spec = SupervisorSpec::new("root")
        .tick_interval(Duration::MAX)
        .health(liveness);
    runs_and_stops(two_children(spec), 2, drop);
}

#[test]
fn an_endless_brake_reset_is_no_overflow() {
    let guard = MemoryGuard::new(MemoryConfig {
        brake_floor: Some(u64::MAX),
        brake_limit: u32::MAX,
        brake_reset: Duration::MAX,
        ..quiet_memory()
    })
    .unwrap()
    .with_sampler(plenty());
    runs_and_stops(
        two_children(SupervisorSpec::new("root").health(guard)),
        2,
        drop,
    );
}

/// Children recycled every second order restarts the heal limit must defer.
fn recycling() -> MemoryGuard {
    MemoryGuard::new(MemoryConfig {
        max_age: Some(Duration::from_secs(1)),
        ..quiet_memory()
    })
    .unwrap()
    .with_sampler(plenty())
}

#[test]
fn an_endless_heal_gap_is_no_overflow() {
    let spec = SupervisorSpec::new("root")
        .health(recycling())
        .heal_limit(HealLimit {
            max: u32::MAX,
            period: Duration::from_secs(3600),
            min_gap: Duration::MAX,
        });
    runs_and_stops(two_children(spec), 2, drop);
}

#[test]
fn an_endless_heal_period_is_no_overflow() {
    let spec = SupervisorSpec::new("root")
        .health(recycling())
        .heal_limit(HealLimit {
            max: 1,
            period: Duration::MAX,
            min_gap: Duration::ZERO,
        });
    runs_and_stops(two_children(spec), 2, drop);
}

#[test]
fn an_endless_breaker_cooldown_is_no_overflow() {
    let config = BreakerConfig {
        failure_threshold: 1,
        cooldown_base: Duration::MAX,
        cooldown_cap: Duration::MAX,
        stability_window: Duration::MAX,
        ..BreakerConfig::default()
    };
    let breakers = BreakerStrategy::new(BreakerStrategyConfig {
        child: config,
        dependency: config,
    })
    .unwrap();
    let spec = two_children(SupervisorSpec::new("root").health(breakers));
    runs_and_stops(spec, 2, |root| {
        actix::spawn(async move {
            for child in ["a", "b"] {
                let worker = root.worker::<Echo>(child).await.unwrap();
                worker.do_send(Outcome(None, false));
                worker.do_send(Outcome(Some("db"), false));
            }
        });
    });
}

#[test]
fn runtime_sizes_past_any_machine_are_errors_not_panics() {
    run_paused(|| async {
        let capacity = Runtime::builder()
            .current_thread()
            .event_capacity(usize::MAX)
            .build();
        assert!(matches!(
            capacity,
            Err(RuntimeError::EventCapacityTooLarge { .. })
        ));
        let threads = Runtime::builder()
            .current_thread()
            .worker_threads(usize::MAX)
            .build();
        assert!(matches!(
            threads,
            Err(RuntimeError::TooManyWorkerThreads { .. })
        ));
    });
}

/// A heal budget of 0 refuses every restart until "a period from now", an
/// end that moves with the clock: each tick used to leave one more timer in
/// the supervisor's context, and every wake-up polled them all (quadratic,
/// so a 1 ms tick never got through a virtual minute).
#[test]
fn a_refused_heal_leaves_one_timer_per_child_not_one_per_tick() {
    let brake = MemoryGuard::new(MemoryConfig {
        brake_floor: Some(1),
        brake_limit: 1,
        ..quiet_memory()
    })
    .unwrap()
    .with_sampler(FixedSampler::new(MemorySample {
        process_rss: 1 << 20,
        system_available: 0,
        system_total: 1 << 34,
        cgroup: None,
    }));
    let spec = SupervisorSpec::new("root")
        .tick_interval(Duration::from_millis(1))
        .health(brake)
        .heal_limit(HealLimit {
            max: 0,
            period: Duration::from_secs(5),
            min_gap: Duration::from_secs(5),
        });
    runs_and_stops(two_children(spec), 1, drop);
}
