//! Restarts that the heal limit defers, on virtual time.

mod common;

use std::time::Duration;

use candado::{
    BackoffConfig, ChildSpec, EventKind, HealLimit, Liveness, LivenessConfig, ShutdownPolicy,
    SupervisorSpec,
};
use common::*;

#[test]
fn a_deferred_liveness_restart_runs_when_the_gap_ends_not_on_the_next_tick() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root")
            .health(
                Liveness::new(LivenessConfig {
                    ping_interval: None,
                    ..Default::default()
                })
                .unwrap(),
            )
            // The gap ends half-way between two ticks.
            .heal_limit(HealLimit {
                min_gap: Duration::from_millis(300_500),
                ..Default::default()
            })
            .backoff(BackoffConfig {
                base: Duration::ZERO,
                jitter: 0.0,
                ..Default::default()
            })
            .child(
                ChildSpec::worker("w", Echo::new).shutdown(ShutdownPolicy::Timeout(Duration::ZERO)),
            );
        let (_rt, mut events, root) = start_local(spec).await;
        let mut restarts_at = Vec::new();
        for _ in 0..2 {
            root.worker::<Echo>("w")
                .await
                .unwrap()
                .do_send(Starve(Duration::from_secs(7200)));
            let e = events
                .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
                .await
                .unwrap();
            restarts_at.push(e.at_ms);
        }
        // Silent from the start: detected on the 10 s tick and healed at once.
        assert_eq!(restarts_at[0], 10_000);
        // Silent again, detected on the 20 s tick, deferred by the gap: the
        // restart runs when the gap ends, at 10 s + 300.5 s.
        assert_eq!(restarts_at[1], 10_000 + 300_500);
        root.shutdown().await;
    });
}
