//! Fallible starts: a factory that declines to start (OTP's `ignore`) or
//! fails with a reason of its own, at the tree's first start, in
//! `add_child`, in `restart_child` and on a restart after a failure. Ports
//! the `sup_start` group of OTP's supervisor_SUITE (`sup_start_ignore_child`,
//! `sup_start_ignore_temporary_child`,
//! `sup_start_ignore_temporary_child_start_child`,
//! `sup_start_child_returns_error`, `sup_start_restart_child_returns_error`)
//! and the failed start of a `start_link`, on virtual time.

mod common;
mod otp_support;

use std::time::Duration;

use candado::{
    BackoffConfig, ChildSpec, ChildStatus, EventKind, ExitReason, Restart, SupervisorError,
    SupervisorSpec,
};
use common::*;
use otp_support::*;

fn ignored(events: &[candado::Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ChildIgnored { child, .. } => Some(child.clone()),
            _ => None,
        })
        .collect()
}

// Ports sup_start_ignore_child: an ignored child is kept, not running, and
// restart_child tries it again.
#[test]
fn an_ignored_child_is_kept_not_running_and_can_be_restarted() {
    run_paused(|| async {
        let (runtime, mut events, sup) = start_local(SupervisorSpec::new("sup")).await;
        let switch = Switch::new(IGNORE);
        sup.add_child(switch.worker("child1")).await.unwrap();
        sup.add_child(ChildSpec::worker("child2", Echo::new))
            .await
            .unwrap();
        let info = child(&sup, "child1").await.unwrap();
        assert_eq!((info.status, info.ignored), (ChildStatus::Stopped, true));
        assert_eq!(info.last_exit, None, "an ignore is not an exit");
        assert_eq!(counts(&sup).await, [2, 1, 0, 2]);
        assert_eq!(ignored(&drain(&mut events)), ["child1"]);
        assert!(matches!(
            sup.add_child(switch.worker("child1")).await,
            Err(SupervisorError::AlreadyPresent { .. })
        ));

        switch.set(RUN);
        sup.restart_child("child1").await.unwrap();
        let info = child(&sup, "child1").await.unwrap();
        assert_eq!((info.status, info.ignored), (ChildStatus::Running, false));
        assert_eq!(counts(&sup).await, [2, 2, 0, 2]);
        runtime.shutdown().await;
    });
}

// Ports sup_start_ignore_temporary_child and
// sup_start_ignore_temporary_child_start_child: a temporary child that
// declines is not kept, whether from the supervisor's spec or added later.
#[test]
fn an_ignored_temporary_child_is_not_kept() {
    run_paused(|| async {
        let switch = Switch::new(IGNORE);
        let spec = SupervisorSpec::new("sup")
            .child(switch.worker("child1").restart(Restart::Temporary))
            .child(ChildSpec::worker("child2", Echo::new).restart(Restart::Temporary));
        let (runtime, _events, sup) = start_local(spec).await;
        assert!(child(&sup, "child1").await.is_none());
        assert_eq!(counts(&sup).await, [1, 1, 0, 1]);
        sup.add_child(switch.worker("child3").restart(Restart::Temporary))
            .await
            .unwrap();
        assert!(child(&sup, "child3").await.is_none());
        assert_eq!(counts(&sup).await, [1, 1, 0, 1]);
        runtime.shutdown().await;
    });
}

// A failed start during the tree's first start fails that start, as OTP's
// start_link returns `{error, Reason}`: the error names the child and its
// reason, and the children already started are stopped.
#[test]
fn a_failed_start_fails_the_first_start_of_the_tree_with_its_reason() {
    run_paused(|| async {
        let runtime = candado::Runtime::builder()
            .current_thread()
            .build()
            .unwrap();
        let mut events = runtime.subscribe();
        let spec = SupervisorSpec::new("sup")
            .child(ChildSpec::worker("first", Echo::new))
            .child(Switch::new(FAIL).worker("db"));
        let err = runtime.start(spec).await.unwrap_err();
        match &err {
            SupervisorError::StartFailed { id, reason } => {
                assert_eq!(id, "sup");
                assert!(reason.contains("`db`"), "{reason}");
                assert!(reason.contains("database unreachable"), "{reason}");
                assert!(!reason.contains("panic"), "no panic: {reason}");
            }
            other => panic!("{other:?}"),
        }
        settle().await;
        let events = drain(&mut events);
        let db_exit = events.iter().find_map(|e| match &e.kind {
            EventKind::ChildExited { child, reason, .. } if child == "db" => Some(reason.clone()),
            _ => None,
        });
        assert_eq!(
            db_exit,
            Some(ExitReason::StartFailed("database unreachable".into()))
        );
        assert!(exits(&events).iter().any(|(_, c)| c == "first"));
        // Nothing left running: the same id starts again.
        let again = SupervisorSpec::new("sup").child(ChildSpec::worker("first", Echo::new));
        runtime.start(again).await.unwrap();
        runtime.shutdown().await;
    });
}

// Ports sup_start_child_returns_error: add_child returns the error and
// keeps no spec.
#[test]
fn a_failed_add_returns_the_reason_and_keeps_no_spec() {
    run_paused(|| async {
        let (runtime, _events, sup) = start_local(SupervisorSpec::new("sup")).await;
        assert_eq!(
            sup.add_child(Switch::new(FAIL).worker("child1")).await,
            Err(SupervisorError::StartFailed {
                id: "child1".into(),
                reason: "database unreachable".into()
            })
        );
        assert!(sup.children().await.unwrap().is_empty());
        assert!(sup.is_running());
        runtime.shutdown().await;
    });
}

// Ports sup_start_restart_child_returns_error: restart_child returns the
// error and the child stays, stopped.
#[test]
fn a_failed_restart_child_returns_the_reason_and_keeps_the_child_stopped() {
    run_paused(|| async {
        let switch = Switch::new(RUN);
        let spec = SupervisorSpec::new("sup").child(switch.worker("child1"));
        let (runtime, _events, sup) = start_local(spec).await;
        sup.terminate_child("child1").await.unwrap();
        switch.set(FAIL);
        assert_eq!(
            sup.restart_child("child1").await,
            Err(SupervisorError::StartFailed {
                id: "child1".into(),
                reason: "database unreachable".into()
            })
        );
        let info = child(&sup, "child1").await.unwrap();
        assert_eq!(info.status, ChildStatus::Stopped);
        assert_eq!(
            info.last_exit,
            Some(ExitReason::StartFailed("database unreachable".into()))
        );
        switch.set(RUN);
        sup.restart_child("child1").await.unwrap();
        assert_eq!(counts(&sup).await, [1, 1, 0, 1]);
        runtime.shutdown().await;
    });
}

// On a restart after a failure, a failed start is one more failure: it
// counts toward the intensity and is retried after the backoff delay (OTP
// retries at once; with `BackoffConfig::none()` so does Candado). Once the
// intensity is spent, the supervisor gives up.
#[test]
fn a_failed_restart_counts_toward_the_intensity_and_is_retried_after_the_backoff() {
    run_paused(|| async {
        let switch = Switch::new(RUN);
        let spec = SupervisorSpec::new("sup")
            .intensity(3, Duration::from_secs(3600))
            .backoff(BackoffConfig {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(60),
                jitter: 0.0,
                ..BackoffConfig::default()
            })
            .child(switch.worker("child1"));
        let (runtime, mut events, sup) = start_local(spec).await;
        switch.set(FAIL);
        sup.worker::<Echo>("child1")
            .await
            .unwrap()
            .do_send(Exit(How::Panic));
        settle().await;
        // Restarts at 1 s, then +2 s, then +4 s: each fails, the third
        // failure of the restarts is one too many.
        let reason = joined(&sup).await;
        assert!(matches!(reason, ExitReason::Escalated { .. }), "{reason}");
        let events = drain(&mut events);
        let delays = restart_delays_ms(&events);
        assert_eq!(delays, [1_000, 2_000, 4_000]);
        let failed_starts = events
            .iter()
            .filter(|e| {
                matches!(&e.kind, EventKind::ChildExited { reason: ExitReason::StartFailed(r), .. } if r == "database unreachable")
            })
            .count();
        assert_eq!(failed_starts, 3);
        runtime.shutdown().await;
    });
}
