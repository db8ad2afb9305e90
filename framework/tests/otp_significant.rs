//! Significant children and `auto_shutdown` with OTP's rules (OTP 24's
//! significant-children cases of supervisor_SUITE and the rules of
//! supervisor's docs): which restart types may be significant, what each
//! `auto_shutdown` value does when significant children exit for good, and
//! that an explicit termination never triggers it. On virtual time.

mod common;
mod otp_support;

use candado::{
    AutoShutdown, BackoffConfig, ChildSpec, ChildStatus, EventKind, ExitReason, Restart, SpecError,
    SupervisorError, SupervisorSpec,
};
use common::*;
use otp_support::*;

fn job(id: &str, restart: Restart) -> ChildSpec {
    ChildSpec::worker(id, Echo::new)
        .restart(restart)
        .significant(true)
}

fn sup(auto_shutdown: AutoShutdown) -> SupervisorSpec {
    SupervisorSpec::new("sup")
        .auto_shutdown(auto_shutdown)
        .backoff(BackoffConfig::none())
        .child(ChildSpec::worker("helper", Echo::new))
}

fn triggered(events: &[candado::Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AutoShutdownTriggered { child } => Some(child.clone()),
            _ => None,
        })
        .collect()
}

// OTP's checks on child specs: a permanent child cannot be significant, and
// a supervisor that never shuts down automatically takes no significant
// child, neither in its spec nor added later.
#[test]
fn significant_children_are_checked_as_in_otp() {
    run_paused(|| async {
        let runtime = candado::Runtime::builder()
            .current_thread()
            .build()
            .unwrap();
        let err = runtime
            .start(sup(AutoShutdown::AnySignificant).child(job("job", Restart::Permanent)))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            SupervisorError::InvalidSpec(SpecError::SignificantPermanent("job".into()))
        );
        let never = SupervisorError::InvalidSpec(SpecError::SignificantWithoutAutoShutdown {
            supervisor: "sup".into(),
            id: "job".into(),
        });
        let err = runtime
            .start(sup(AutoShutdown::Never).child(job("job", Restart::Transient)))
            .await
            .unwrap_err();
        assert_eq!(err, never);
        assert!(err.to_string().contains("cannot be significant"));

        let root = runtime.start(sup(AutoShutdown::Never)).await.unwrap();
        assert_eq!(
            root.add_child(job("job", Restart::Temporary)).await,
            Err(never)
        );
        runtime.shutdown().await;

        let runtime = candado::Runtime::builder()
            .current_thread()
            .build()
            .unwrap();
        let root = runtime
            .start(sup(AutoShutdown::AllSignificant))
            .await
            .unwrap();
        assert!(matches!(
            root.add_child(job("job", Restart::Permanent)).await,
            Err(SupervisorError::InvalidSpec(
                SpecError::SignificantPermanent(_)
            ))
        ));
        root.add_child(job("job", Restart::Transient))
            .await
            .unwrap();
        assert!(child(&root, "job").await.unwrap().significant);
        runtime.shutdown().await;
    });
}

// any_significant: the first significant child to exit for good (a
// transient one's normal exit, any exit of a temporary one) stops the
// supervisor, which exits with `shutdown`.
#[test]
fn any_significant_shuts_the_supervisor_down_when_one_significant_child_exits_for_good() {
    run_paused(|| async {
        for (restart, how) in [
            (Restart::Transient, How::Normal),
            (Restart::Transient, How::Shutdown),
            (Restart::Transient, How::ShutdownWith),
            (Restart::Temporary, How::Normal),
            (Restart::Temporary, How::Failed),
            (Restart::Temporary, How::Panic),
        ] {
            let spec = sup(AutoShutdown::AnySignificant)
                .child(job("job1", restart))
                .child(job("job2", restart));
            let (runtime, mut events, root) = start_local(spec).await;
            root.worker::<Echo>("job1")
                .await
                .unwrap()
                .do_send(Exit(how));
            let reason = joined(&root).await;
            assert_eq!(reason, ExitReason::Shutdown, "{restart:?} {how:?}");
            let events = drain(&mut events);
            assert_eq!(triggered(&events), ["job1"]);
            // Its other children were stopped, newest first.
            let stopped: Vec<_> = exits(&events).into_iter().map(|(_, c)| c).collect();
            assert_eq!(stopped, ["job1", "job2", "helper"], "{restart:?} {how:?}");
            runtime.shutdown().await;
        }
    });
}

// A significant transient child that fails is restarted: only an exit for
// good counts.
#[test]
fn a_significant_transient_child_that_fails_is_restarted_and_shuts_nothing_down() {
    run_paused(|| async {
        let spec = sup(AutoShutdown::AnySignificant).child(job("job", Restart::Transient));
        let (runtime, mut events, root) = start_local(spec).await;
        for how in [How::Failed, How::Panic] {
            root.worker::<Echo>("job").await.unwrap().do_send(Exit(how));
            settle().await;
        }
        assert!(root.is_running());
        let info = child(&root, "job").await.unwrap();
        assert_eq!((info.status, info.incarnation), (ChildStatus::Running, 3));
        assert!(triggered(&drain(&mut events)).is_empty());
        runtime.shutdown().await;
    });
}

// all_significant: the supervisor stops only when the last significant
// child has exited for good.
#[test]
fn all_significant_shuts_the_supervisor_down_when_the_last_significant_child_exits() {
    run_paused(|| async {
        let spec = sup(AutoShutdown::AllSignificant)
            .child(job("job1", Restart::Temporary))
            .child(job("job2", Restart::Transient));
        let (runtime, mut events, root) = start_local(spec).await;
        root.worker::<Echo>("job1")
            .await
            .unwrap()
            .do_send(Exit(How::Failed));
        settle().await;
        assert!(root.is_running(), "job2 still runs");
        // job2 fails and is restarted: still not the end.
        root.worker::<Echo>("job2")
            .await
            .unwrap()
            .do_send(Exit(How::Panic));
        settle().await;
        assert!(root.is_running());
        root.worker::<Echo>("job2")
            .await
            .unwrap()
            .do_send(Exit(How::Normal));
        assert_eq!(joined(&root).await, ExitReason::Shutdown);
        assert_eq!(triggered(&drain(&mut events)), ["job2"]);
        runtime.shutdown().await;
    });
}

// OTP: "the automatic shutdown is not triggered when a significant child is
// terminated by the supervisor" (terminate_child), nor by its removal.
#[test]
fn terminating_or_removing_a_significant_child_does_not_shut_the_supervisor_down() {
    run_paused(|| async {
        for auto in [AutoShutdown::AnySignificant, AutoShutdown::AllSignificant] {
            let spec = sup(auto)
                .child(job("job1", Restart::Transient))
                .child(job("job2", Restart::Temporary));
            let (runtime, mut events, root) = start_local(spec).await;
            root.terminate_child("job1").await.unwrap();
            root.remove_child("job2").await.unwrap();
            settle().await;
            assert!(root.is_running(), "{auto:?}");
            assert!(triggered(&drain(&mut events)).is_empty());
            // A terminated significant child restarted and then done for
            // good does trigger it.
            root.restart_child("job1").await.unwrap();
            root.worker::<Echo>("job1")
                .await
                .unwrap()
                .do_send(Exit(How::Normal));
            assert_eq!(joined(&root).await, ExitReason::Shutdown, "{auto:?}");
            runtime.shutdown().await;
        }
    });
}

// The supervisor's own exit is `shutdown`, a normal exit: a transient parent
// leaves it stopped, so auto shutdowns chain up a tree.
#[test]
fn an_auto_shutdown_is_a_normal_exit_that_a_transient_parent_does_not_restart() {
    run_paused(|| async {
        let inner = sup(AutoShutdown::AnySignificant)
            .child(job("job", Restart::Transient))
            .backoff(BackoffConfig::none());
        let outer = SupervisorSpec::new("outer")
            .backoff(BackoffConfig::none())
            .child(
                ChildSpec::supervisor(inner)
                    .restart(Restart::Transient)
                    .significant(true),
            )
            .auto_shutdown(AutoShutdown::AnySignificant);
        let (runtime, _events, outer) = start_local(outer).await;
        let inner = outer.supervisor("sup").await.unwrap();
        inner
            .worker::<Echo>("job")
            .await
            .unwrap()
            .do_send(Exit(How::Normal));
        assert_eq!(joined(&inner).await, ExitReason::Shutdown);
        assert_eq!(joined(&outer).await, ExitReason::Shutdown, "chained");
        runtime.shutdown().await;
    });
}
