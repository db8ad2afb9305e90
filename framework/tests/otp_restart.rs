//! OTP's restart types against each kind of exit, immediate restarts
//! (`BackoffConfig::none`) and the end of a group restart. Ports the
//! `normal_termination`, `shutdown_termination` and `abnormal_termination`
//! groups of OTP's supervisor_SUITE, and its `one_for_all`, `rest_for_one`
//! and `temporary_bystander` cases, on virtual time.

mod common;
mod otp_support;

use std::time::Duration;

use candado::{
    BackoffConfig, ChildSpec, ChildStatus, EventKind, ExitReason, Restart, Strategy, SupervisorSpec,
};
use common::*;
use otp_support::*;

/// Starts a child of `restart` type, makes it exit as `how`, and reports
/// what became of it: `Some(incarnation, status)`, or `None` once its spec
/// is gone.
async fn after_exit(restart: Restart, how: How) -> (Option<(u64, ChildStatus)>, ExitReason) {
    let spec = SupervisorSpec::new("sup")
        .backoff(BackoffConfig::none())
        .child(ChildSpec::worker("child", Echo::new).restart(restart));
    let (runtime, mut events, sup) = start_local(spec).await;
    let worker = sup.worker::<Echo>("child").await.unwrap();
    worker.do_send(Exit(how));
    settle().await;
    let reason = drain(&mut events)
        .into_iter()
        .find_map(|e| match e.kind {
            EventKind::ChildExited { reason, .. } => Some(reason),
            _ => None,
        })
        .expect("the exit is reported");
    let state = child(&sup, "child")
        .await
        .map(|c| (c.incarnation, c.status));
    assert!(sup.is_running(), "{restart:?} after {how:?}");
    runtime.shutdown().await;
    (state, reason)
}

// Ports permanent_normal, transient_normal and temporary_normal.
#[test]
fn a_normal_exit_restarts_only_a_permanent_child() {
    run_paused(|| async {
        let (state, reason) = after_exit(Restart::Permanent, How::Normal).await;
        assert_eq!(reason, ExitReason::Normal);
        assert_eq!(state, Some((2, ChildStatus::Running)));
        let (state, _) = after_exit(Restart::Transient, How::Normal).await;
        assert_eq!(
            state,
            Some((1, ChildStatus::Stopped)),
            "kept, not restarted"
        );
        let (state, _) = after_exit(Restart::Temporary, How::Normal).await;
        assert_eq!(state, None, "a temporary child's spec is dropped");
    });
}

// Ports permanent_shutdown, transient_shutdown and temporary_shutdown, with
// both `shutdown` and `{shutdown, Term}`.
#[test]
fn a_shutdown_exit_with_or_without_a_detail_restarts_only_a_permanent_child() {
    run_paused(|| async {
        for (how, expected) in [
            (How::Shutdown, ExitReason::Shutdown),
            (
                How::ShutdownWith,
                ExitReason::ShutdownWith("drained".into()),
            ),
        ] {
            let (state, reason) = after_exit(Restart::Permanent, how).await;
            assert_eq!(reason, expected);
            assert!(!reason.is_abnormal());
            assert_eq!(state, Some((2, ChildStatus::Running)), "{how:?}");
            let (state, _) = after_exit(Restart::Transient, how).await;
            assert_eq!(state, Some((1, ChildStatus::Stopped)), "{how:?}");
            let (state, _) = after_exit(Restart::Temporary, how).await;
            assert_eq!(state, None, "{how:?}");
        }
    });
}

// Ports permanent_abnormal, transient_abnormal and temporary_abnormal, with
// a reason of the child's own and with a panic.
#[test]
fn an_abnormal_exit_restarts_permanent_and_transient_children_never_temporary_ones() {
    run_paused(|| async {
        for how in [How::Failed, How::Panic] {
            let (state, reason) = after_exit(Restart::Permanent, how).await;
            assert!(reason.is_abnormal(), "{reason}");
            assert_eq!(state, Some((2, ChildStatus::Running)), "{how:?}");
            let (state, _) = after_exit(Restart::Transient, how).await;
            assert_eq!(state, Some((2, ChildStatus::Running)), "{how:?}");
            let (state, _) = after_exit(Restart::Temporary, how).await;
            assert_eq!(state, None, "{how:?}");
        }
        // The same rule, as a table over every kind of exit.
        for how in How::ALL {
            let (state, _) = after_exit(Restart::Transient, how).await;
            let restarted = state.is_some_and(|(n, _)| n == 2);
            assert_eq!(restarted, how.is_abnormal(), "{how:?}");
        }
    });
}

// Ports the intensity rule of OTP's one_for_one_escalation, with OTP's
// immediate restarts: no timer, no virtual time passes, and a child that
// stops at once cannot spin past the intensity.
#[test]
fn no_backoff_restarts_at_once_and_a_crash_loop_ends_at_the_intensity() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("sup")
            .backoff(BackoffConfig::none())
            .intensity(3, Duration::from_secs(10))
            .child(ChildSpec::worker("loop", |link| Done { link }));
        let runtime = candado::Runtime::builder()
            .current_thread()
            .build()
            .unwrap();
        let mut events = runtime.subscribe();
        let before = tokio::time::Instant::now();
        let sup = runtime.start(spec).await.unwrap();
        let reason = joined(&sup).await;
        assert_eq!(
            reason,
            // The failure that crossed the limit is counted too.
            ExitReason::Escalated {
                child: "loop".into(),
                restarts: 4
            }
        );
        assert_eq!(tokio::time::Instant::now(), before, "no delay was waited");
        let events = drain(&mut events);
        let delays = restart_delays_ms(&events);
        assert_eq!(delays, [0, 0, 0]);
        assert_eq!(starts(&events).len(), 4, "the first start and 3 restarts");
        runtime.shutdown().await;
    });
}

/// The `group_restarted` events of `events`: `(cause, members)`.
fn group_restarts(events: &[candado::Event]) -> Vec<(String, Vec<String>)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::GroupRestarted { child, members } => Some((child.clone(), members.clone())),
            _ => None,
        })
        .collect()
}

// Ports one_for_all, rest_for_one and temporary_bystander: a group restart
// brings every member back (a temporary bystander stays down), then says
// so once.
#[test]
fn a_group_restart_ends_with_one_group_restarted_event_after_every_member_is_up() {
    run_paused(|| async {
        for (strategy, expected) in [
            (Strategy::OneForAll, vec!["a", "b", "c"]),
            (Strategy::RestForOne, vec!["b", "c"]),
        ] {
            let spec = SupervisorSpec::new("sup")
                .strategy(strategy)
                .backoff(BackoffConfig::none())
                .child(ChildSpec::worker("a", Echo::new))
                .child(ChildSpec::worker("b", Echo::new))
                .child(ChildSpec::worker("c", Echo::new))
                .child(ChildSpec::worker("bystander", Echo::new).restart(Restart::Temporary));
            let (runtime, mut events, sup) = start_local(spec).await;
            drain(&mut events);
            sup.worker::<Echo>("b")
                .await
                .unwrap()
                .do_send(Exit(How::Panic));
            settle().await;
            let events = drain(&mut events);
            let expected: Vec<String> = expected.into_iter().map(String::from).collect();
            assert_eq!(
                group_restarts(&events),
                [("b".to_owned(), expected.clone())]
            );
            // It comes after the last member's restart.
            let last = events
                .iter()
                .rposition(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
                .unwrap();
            assert!(matches!(
                events[last + 1].kind,
                EventKind::GroupRestarted { .. }
            ));
            for id in &expected {
                assert_eq!(child(&sup, id).await.unwrap().status, ChildStatus::Running);
            }
            assert!(child(&sup, "bystander").await.is_none(), "{strategy:?}");
            runtime.shutdown().await;
        }

        // One-for-one restarts are not group restarts.
        let spec = SupervisorSpec::new("sup")
            .backoff(BackoffConfig::none())
            .child(ChildSpec::worker("a", Echo::new));
        let (runtime, mut events, sup) = start_local(spec).await;
        sup.worker::<Echo>("a")
            .await
            .unwrap()
            .do_send(Exit(How::Panic));
        settle().await;
        let events = drain(&mut events);
        assert_eq!(starts(&events).len(), 2);
        assert!(group_restarts(&events).is_empty());
        runtime.shutdown().await;
    });
}
