//! Restarts that health strategies order count against the supervisor's
//! restart intensity, like any other restart (as in OTP, where such a
//! restart is an exit with an abnormal reason); planned recycles (age,
//! tasks) do not, since they cannot loop. On virtual time.

mod common;

use std::time::Duration;

use candado::{
    ChildSpec, EventKind, ExitReason, FixedSampler, HealLimit, Liveness, LivenessConfig,
    MemoryConfig, MemoryGuard, MemorySample, ShutdownPolicy, SupervisorSpec,
};
use common::*;

const GIB: u64 = 1024 * 1024 * 1024;

/// Recycles every child after `age`, on a machine with plenty of memory.
fn recycle_after(age: Duration) -> MemoryGuard {
    MemoryGuard::new(MemoryConfig {
        max_age: Some(age),
        ..Default::default()
    })
    .unwrap()
    .with_sampler(FixedSampler::new(MemorySample {
        process_rss: GIB,
        system_total: 100 * GIB,
        system_available: 90 * GIB,
        cgroup: None,
    }))
}

#[test]
fn strategy_restarts_beyond_the_intensity_make_the_supervisor_give_up() {
    run_paused(|| async {
        // Three children starve at once: three liveness restarts, one more
        // than the intensity allows. The heal limit (per child) would allow
        // each of them.
        let spec = SupervisorSpec::new("root")
            .intensity(2, Duration::from_secs(3600))
            .health(
                Liveness::new(LivenessConfig {
                    ping_interval: None,
                    ..Default::default()
                })
                .unwrap(),
            );
        let spec = ["a", "b", "c"].into_iter().fold(spec, |spec, id| {
            spec.child(
                ChildSpec::worker(id, Echo::new).shutdown(ShutdownPolicy::Timeout(Duration::ZERO)),
            )
        });
        let (_rt, mut events, root) = start_local(spec).await;
        for id in ["a", "b", "c"] {
            root.worker::<Echo>(id)
                .await
                .unwrap()
                .do_send(Starve(Duration::from_secs(7200)));
        }
        let gave_up = events
            .wait_for(|e| matches!(e.kind, EventKind::GaveUp { .. }))
            .await
            .unwrap();
        assert!(
            matches!(&gave_up.kind, EventKind::GaveUp { restarts: 3, .. }),
            "{gave_up:?}"
        );
        assert!(
            matches!(root.join().await, ExitReason::Escalated { restarts: 3, .. }),
            "the root escalates exactly as for crashes"
        );
    });
}

#[test]
fn planned_recycles_do_not_count_against_the_intensity() {
    run_paused(|| async {
        // Ten children reach their age on the same tick: ten recycles
        // against an intensity of 2. Recycling cannot loop (a fresh child
        // is young), so it does not spend the budget kept for failures.
        let spec = SupervisorSpec::new("root")
            .intensity(2, Duration::from_secs(3600))
            .health(recycle_after(Duration::from_secs(10)));
        let spec = (0..10).fold(spec, |spec, n| {
            spec.child(ChildSpec::worker(format!("w{n}"), Echo::new))
        });
        let (_rt, events, root) = start_local(spec).await;
        let mut events = events;
        advance(Duration::from_secs(15)).await;
        let seen = drain(&mut events);
        let restarts = seen
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
            .count();
        assert_eq!(restarts, 10, "every child was recycled");
        assert!(root.is_running(), "and the supervisor did not give up");
        assert_eq!(root.info().await.unwrap().restarts_in_period, 0);
        root.shutdown().await;
    });
}

#[test]
fn a_strategy_restart_is_counted_in_the_intensity_period() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root")
            .health(
                Liveness::new(LivenessConfig {
                    ping_interval: None,
                    ..Default::default()
                })
                .unwrap(),
            )
            .intensity(5, Duration::from_secs(3600))
            .child(
                ChildSpec::worker("w", Echo::new).shutdown(ShutdownPolicy::Timeout(Duration::ZERO)),
            );
        let (_rt, mut events, root) = start_local(spec).await;
        root.worker::<Echo>("w")
            .await
            .unwrap()
            .do_send(Starve(Duration::from_secs(7200)));
        events
            .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
            .await
            .unwrap();
        assert_eq!(root.info().await.unwrap().restarts_in_period, 1);
        root.shutdown().await;
    });
}

#[test]
fn the_heal_limit_still_bounds_each_child_within_the_intensity() {
    run_paused(|| async {
        // A generous intensity: the per-child heal limit (one per hour) is
        // what holds the second recycle back.
        let spec = SupervisorSpec::new("root")
            .intensity(100, Duration::from_secs(60))
            .heal_limit(HealLimit {
                max: 1,
                ..Default::default()
            })
            .health(recycle_after(Duration::from_secs(10)))
            .child(ChildSpec::worker("a", Echo::new));
        let (_rt, events, root) = start_local(spec).await;
        let mut events = events;
        advance(Duration::from_secs(120)).await;
        let seen = drain(&mut events);
        let restarts = seen
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
            .count();
        assert_eq!(restarts, 1, "one recycle, then the heal limit refuses");
        assert!(root.is_running());
        root.shutdown().await;
    });
}
