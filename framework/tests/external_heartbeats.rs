//! Children whose heartbeats come from outside their actor
//! (`ChildSpec::external_heartbeats`, `ChildLink::heartbeat`), on virtual time.

mod common;

use std::time::Duration;

use candado::{
    ChildLink, ChildSpec, EventKind, HealthCause, HealthStatus, Liveness, LivenessCause,
    LivenessConfig, RestartCause, ShutdownPolicy, SupervisorSpec, VerdictKind,
};
use common::*;

/// Liveness with its defaults: heartbeats every 2 s, 10 s of silence restarts.
fn liveness() -> Liveness {
    Liveness::new(LivenessConfig::default()).unwrap()
}

/// Waits for the first event matching `pred`, for at most a minute of
/// virtual time (the supervisor's tick keeps virtual time moving for ever).
async fn first(
    events: &mut candado::EventStream,
    pred: impl Fn(&EventKind) -> bool,
) -> candado::Event {
    tokio::time::timeout(Duration::from_secs(60), events.wait_for(|e| pred(&e.kind)))
        .await
        .expect("the event within a minute")
        .expect("an open stream")
}

/// An `Echo` whose heartbeats come from a task of its own, every `every`:
/// what a process child does with the heartbeats its process sends.
fn beating(every: Duration) -> impl Fn(ChildLink) -> Echo + Send + Sync + 'static {
    move |link: ChildLink| {
        let beats = link.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                beats.heartbeat();
            }
        });
        Echo::new(link)
    }
}

#[test]
fn an_external_heartbeat_child_that_never_beats_is_restarted_as_silent() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root")
            .health(liveness())
            .child(
                ChildSpec::worker("frozen", Echo::new)
                    .external_heartbeats()
                    .shutdown(ShutdownPolicy::Timeout(Duration::from_secs(1))),
            )
            .child(ChildSpec::worker("calm", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        // Its context runs and answers pings: only the missing heartbeats
        // can condemn it.
        assert_eq!(
            root.worker::<Echo>("frozen")
                .await
                .unwrap()
                .send(Ping)
                .await
                .unwrap(),
            1
        );
        let verdict = first(&mut events, |k| {
            matches!(k, EventKind::VerdictChanged { child, verdict: VerdictKind::Restart, .. }
                if child == "frozen")
        })
        .await;
        // Started at 0, never a heartbeat: found on the first tick at or
        // after the 10 s timeout.
        assert!(
            (10_000..=11_000).contains(&verdict.at_ms),
            "detected at {} ms",
            verdict.at_ms
        );
        let restarted = first(
            &mut events,
            |k| matches!(k, EventKind::ChildRestarted { child, .. } if child == "frozen"),
        )
        .await;
        let EventKind::ChildRestarted { cause, .. } = restarted.kind else {
            unreachable!()
        };
        assert_eq!(
            cause,
            RestartCause::Health(HealthCause::Liveness(LivenessCause::Silent))
        );
        // The framework's timer still beats for its ordinary sibling.
        let info = root.children().await.unwrap();
        let calm = info.iter().find(|c| c.id == "calm").unwrap();
        assert_eq!((calm.incarnation, calm.restarts), (1, 0));
        assert_eq!(calm.health, HealthStatus::Healthy);
        root.shutdown().await;
    });
}

#[test]
fn an_external_heartbeat_child_that_beats_in_time_stays_up() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root").health(liveness()).child(
            ChildSpec::worker("beating", beating(Duration::from_secs(3))).external_heartbeats(),
        );
        let (_rt, mut events, root) = start_local(spec).await;
        // Six heartbeat timeouts.
        advance(Duration::from_secs(60)).await;
        let seen = drain(&mut events);
        assert!(
            find(&seen, |k| matches!(k, EventKind::ChildExited { .. })).is_none(),
            "{seen:#?}"
        );
        let info = root.children().await.unwrap();
        assert_eq!((info[0].incarnation, info[0].restarts), (1, 0));
        assert_eq!(info[0].health, HealthStatus::Healthy);
        root.shutdown().await;
    });
}

#[test]
fn an_external_heartbeat_child_that_stops_beating_is_silent_a_timeout_later() {
    run_paused(|| async {
        // Beats from a task until 25 s, as a process would until it is frozen.
        let spec = SupervisorSpec::new("root").health(liveness()).child(
            ChildSpec::worker("freezes", |link: ChildLink| {
                let beats = link.clone();
                if link.incarnation() == 1 {
                    tokio::spawn(async move {
                        for _ in 0..5 {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            beats.heartbeat();
                        }
                    });
                }
                Echo::new(link)
            })
            .external_heartbeats(),
        );
        let (_rt, mut events, root) = start_local(spec).await;
        let verdict = first(&mut events, |k| {
            matches!(k, EventKind::VerdictChanged { child, verdict: VerdictKind::Restart, .. }
                if child == "freezes")
        })
        .await;
        // Last heartbeat at 25 s.
        assert!(
            (35_000..=36_000).contains(&verdict.at_ms),
            "detected at {} ms",
            verdict.at_ms
        );
        root.shutdown().await;
    });
}

#[test]
fn a_heartbeat_on_an_ordinary_child_is_one_more_beat() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root")
            .health(liveness())
            .child(ChildSpec::worker("w", beating(Duration::from_millis(700))));
        let (_rt, mut events, root) = start_local(spec).await;
        advance(Duration::from_secs(30)).await;
        let seen = drain(&mut events);
        assert!(
            find(&seen, |k| matches!(k, EventKind::ChildExited { .. })).is_none(),
            "{seen:#?}"
        );
        let info = root.children().await.unwrap();
        assert_eq!(info[0].health, HealthStatus::Healthy);
        root.shutdown().await;
    });
}

#[test]
fn the_external_heartbeat_knob_is_off_by_default_and_shown_in_the_spec() {
    let plain = ChildSpec::worker("w", Echo::new);
    assert!(!plain.has_external_heartbeats());
    let external = plain.external_heartbeats();
    assert!(external.has_external_heartbeats());
    assert!(format!("{external:?}").contains("external_heartbeats: true"));
}
