//! Child administration as in OTP: `terminate_child`, `restart_child`,
//! `delete_child`, `count_children`, duplicate children, and what
//! `ChildInfo` shows. Ports `child_adm`, `extra_return`, `count_children`,
//! `count_children_supervisor`, `count_restarting_children`,
//! `do_not_save_child_specs_for_temporary_children` and `sup_start_map` of
//! OTP's supervisor_SUITE, on virtual time.

mod common;
mod otp_support;

use std::time::Duration;

use candado::{
    BackoffConfig, ChildSpec, ChildStatus, EventKind, ExitReason, Restart, ShutdownPolicy,
    SupervisorError, SupervisorSpec, DEFAULT_WORKER_SHUTDOWN,
};
use common::*;
use otp_support::*;

fn unknown(id: &str) -> SupervisorError {
    SupervisorError::UnknownChild {
        supervisor: "sup".into(),
        id: id.into(),
    }
}

fn running(id: &str) -> SupervisorError {
    SupervisorError::Running {
        supervisor: "sup".into(),
        id: id.into(),
    }
}

// Ports child_adm and extra_return: not_found for an unknown id, running for
// a running child, and terminate / restart / delete in turn, with the counts.
#[test]
fn terminate_restart_and_delete_a_child_as_in_otp() {
    let spec = SupervisorSpec::new("sup").child(ChildSpec::worker("child1", Echo::new));
    with_local_tree(spec, async |sup, events| {
        assert_eq!(sup.terminate_child("hej").await, Err(unknown("hej")));
        assert_eq!(sup.delete_child("hej").await, Err(unknown("hej")));
        assert_eq!(sup.restart_child("hej").await, Err(unknown("hej")));
        assert_eq!(sup.delete_child("child1").await, Err(running("child1")));
        assert_eq!(sup.restart_child("child1").await, Err(running("child1")));
        assert_eq!(counts(sup).await, [1, 1, 0, 1]);

        sup.terminate_child("child1").await.unwrap();
        let info = child(sup, "child1").await.unwrap();
        assert_eq!(info.status, ChildStatus::Stopped);
        assert_eq!(info.last_exit, Some(ExitReason::Shutdown));
        assert_eq!(counts(sup).await, [1, 0, 0, 1]);
        assert!(sup.worker::<Echo>("child1").await.is_err(), "no address");

        sup.restart_child("child1").await.unwrap();
        let worker = sup.worker::<Echo>("child1").await.unwrap();
        assert_eq!(worker.send(Ping).await.unwrap(), 2, "a new incarnation");
        assert_eq!(counts(sup).await, [1, 1, 0, 1]);

        sup.terminate_child("child1").await.unwrap();
        // A second termination finds nothing to stop: ok, as in OTP.
        sup.terminate_child("child1").await.unwrap();
        sup.delete_child("child1").await.unwrap();
        assert_eq!(sup.restart_child("child1").await, Err(unknown("child1")));
        assert_eq!(sup.delete_child("child1").await, Err(unknown("child1")));
        assert!(sup.children().await.unwrap().is_empty());
        assert_eq!(counts(sup).await, [0, 0, 0, 0]);

        // Orders, not failures: nothing was restarted by the supervisor.
        let events = drain(events);
        assert!(!events
            .iter()
            .any(|e| matches!(e.kind, EventKind::RestartScheduled { .. })));
        assert_eq!(sup.info().await.unwrap().restarts_in_period, 0);
    });
}

// Ports child_adm's duplicate start_child: `{error, {already_started, Pid}}`
// while the child runs, `{error, already_present}` once only its spec is kept.
#[test]
fn a_duplicate_add_says_whether_the_child_runs_or_only_its_spec_is_kept() {
    let spec = SupervisorSpec::new("sup").child(ChildSpec::worker("child1", Echo::new));
    with_local_tree(spec, async |sup, _| {
        // Adds `child1` again: refused, with `expected`.
        let refused = async |expected: SupervisorError| {
            let err = sup
                .add_child(ChildSpec::worker("child1", Echo::new))
                .await
                .unwrap_err();
            assert_eq!(err, expected);
            err
        };
        let err = refused(SupervisorError::AlreadyStarted {
            supervisor: "sup".into(),
            id: "child1".into(),
        })
        .await;
        assert_eq!(
            err.to_string(),
            "supervisor `sup` already runs a child `child1`"
        );
        sup.terminate_child("child1").await.unwrap();
        let err = refused(SupervisorError::AlreadyPresent {
            supervisor: "sup".into(),
            id: "child1".into(),
        })
        .await;
        assert!(err.to_string().contains("not running, its spec kept"));
        // Deleted, the id is free again.
        sup.delete_child("child1").await.unwrap();
        sup.add_child(ChildSpec::worker("child1", Echo::new))
            .await
            .unwrap();
        assert_eq!(counts(sup).await, [1, 1, 0, 1]);
    });
}

// Ports count_children and count_children_supervisor: specs, active,
// supervisors and workers, running or not.
#[test]
fn count_children_counts_specs_active_supervisors_and_workers() {
    let spec = SupervisorSpec::new("sup")
        .child(ChildSpec::worker("w1", Echo::new))
        .child(ChildSpec::supervisor(
            SupervisorSpec::new("inner").child(ChildSpec::worker("x", Echo::new)),
        ))
        .child(ChildSpec::worker("w2", Echo::new));
    with_local_tree(spec, async |sup, _| {
        assert_eq!(counts(sup).await, [3, 3, 1, 2]);
        sup.terminate_child("w2").await.unwrap();
        assert_eq!(counts(sup).await, [3, 2, 1, 2]);
        sup.terminate_child("inner").await.unwrap();
        assert_eq!(counts(sup).await, [3, 1, 1, 2]);
        sup.restart_child("inner").await.unwrap();
        assert_eq!(counts(sup).await, [3, 2, 1, 2]);
    });
}

// Ports count_restarting_children and OTP's `{error, restarting}`: a child
// waiting for its restart is neither active, nor restartable, nor
// deletable; terminating it takes it over, so its restart never happens.
#[test]
fn a_restarting_child_can_be_neither_restarted_nor_deleted_but_can_be_terminated() {
    let spec = SupervisorSpec::new("sup")
        .backoff(BackoffConfig {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(1),
            jitter: 0.0,
            ..BackoffConfig::default()
        })
        .child(ChildSpec::worker("child1", Echo::new));
    with_local_tree(spec, async |sup, _| {
        sup.worker::<Echo>("child1")
            .await
            .unwrap()
            .do_send(Exit(How::Panic));
        settle().await;
        assert_eq!(
            child(sup, "child1").await.unwrap().status,
            ChildStatus::Restarting
        );
        assert_eq!(counts(sup).await, [1, 0, 0, 1]);
        let restarting = SupervisorError::Restarting {
            supervisor: "sup".into(),
            id: "child1".into(),
        };
        assert_eq!(sup.restart_child("child1").await, Err(restarting.clone()));
        assert_eq!(sup.delete_child("child1").await, Err(restarting));

        sup.terminate_child("child1").await.unwrap();
        advance(Duration::from_secs(5)).await;
        let info = child(sup, "child1").await.unwrap();
        assert_eq!((info.status, info.incarnation), (ChildStatus::Stopped, 1));
        sup.delete_child("child1").await.unwrap();
    });
}

// Ports do_not_save_child_specs_for_temporary_children: a terminated
// temporary child is gone.
#[test]
fn a_terminated_temporary_child_is_forgotten() {
    let spec = SupervisorSpec::new("sup")
        .child(ChildSpec::worker("temp", Echo::new).restart(Restart::Temporary));
    with_local_tree(spec, async |sup, _| {
        sup.terminate_child("temp").await.unwrap();
        assert!(child(sup, "temp").await.is_none());
        assert_eq!(sup.restart_child("temp").await, Err(unknown("temp")));
        assert_eq!(counts(sup).await, [0, 0, 0, 0]);
    });
}

// Terminations and restarts asked for are orders, not failures: even a
// supervisor that allows no restart at all survives any number of them.
#[test]
fn terminations_and_restarts_asked_for_do_not_count_toward_the_intensity() {
    let spec = SupervisorSpec::new("sup")
        .intensity(0, Duration::from_secs(60))
        .child(ChildSpec::worker("child1", Echo::new));
    with_local_tree(spec, async |sup, _| {
        for _ in 0..10 {
            sup.terminate_child("child1").await.unwrap();
            sup.restart_child("child1").await.unwrap();
        }
        assert!(sup.is_running());
        let info = child(sup, "child1").await.unwrap();
        assert_eq!((info.status, info.incarnation), (ChildStatus::Running, 11));
        assert_eq!(info.restarts, 0, "no restart of the supervisor's own");
    });
}

// Ports sup_start_map's defaults (get_childspec): the restart type and the
// shutdown policy are part of what a child shows.
#[test]
fn child_info_shows_the_restart_type_and_shutdown_policy() {
    let spec = SupervisorSpec::new("sup")
        .child(ChildSpec::worker("child1", Echo::new))
        .child(
            ChildSpec::worker("child2", Echo::new)
                .restart(Restart::Transient)
                .shutdown(ShutdownPolicy::Timeout(Duration::ZERO)),
        )
        .child(ChildSpec::supervisor(SupervisorSpec::new("child3")));
    with_local_tree(spec, async |sup, _| {
        let shown: Vec<_> = sup
            .children()
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.restart, c.shutdown, c.significant, c.ignored))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "child1".to_owned(),
                    Restart::Permanent,
                    ShutdownPolicy::Timeout(DEFAULT_WORKER_SHUTDOWN),
                    false,
                    false
                ),
                (
                    "child2".to_owned(),
                    Restart::Transient,
                    ShutdownPolicy::Timeout(Duration::ZERO),
                    false,
                    false
                ),
                (
                    "child3".to_owned(),
                    Restart::Permanent,
                    ShutdownPolicy::Infinity,
                    false,
                    false
                ),
            ]
        );
    });
}

// No OTP case (OTP's calls block the supervisor, so none can meet another):
// a request that meets a child another request is still acting on is told
// so, typed, and the first request completes as usual.
#[test]
fn a_request_that_meets_an_operation_in_progress_is_told_it_is_busy() {
    let stubborn = |link| Echo::new(link).stubborn();
    let spec = SupervisorSpec::new("sup").child(
        ChildSpec::worker("child1", stubborn)
            .shutdown(ShutdownPolicy::Timeout(Duration::from_secs(5))),
    );
    with_local_tree(spec, async |sup, _| {
        let first = {
            let sup = sup.clone();
            tokio::spawn(async move { sup.terminate_child("child1").await })
        };
        settle().await;
        assert_eq!(
            child(sup, "child1").await.unwrap().status,
            ChildStatus::Stopping
        );
        let busy = SupervisorError::Busy {
            supervisor: "sup".into(),
            id: "child1".into(),
            operation: "termination",
        };
        assert_eq!(sup.terminate_child("child1").await, Err(busy.clone()));
        assert_eq!(
            busy.to_string(),
            "child `child1` of supervisor `sup` is busy (termination in progress)"
        );
        assert_eq!(sup.restart_child("child1").await, Err(running("child1")));
        // The stubborn child is killed at its shutdown timeout.
        advance(Duration::from_secs(5)).await;
        assert_eq!(first.await.unwrap(), Ok(()));
        let info = child(sup, "child1").await.unwrap();
        assert_eq!(
            (info.status, info.last_exit),
            (ChildStatus::Stopped, Some(ExitReason::Killed))
        );
    });
}
