//! Restart strategies and restart types, on virtual time.

mod common;

use std::time::Duration;

use candado::{
    BackoffConfig, ChildSpec, ChildStatus, EventKind, ExitReason, Restart, Runtime, ShutdownPolicy,
    Strategy, SupervisorRef, SupervisorSpec,
};
use common::*;

fn no_jitter() -> BackoffConfig {
    BackoffConfig {
        jitter: 0.0,
        ..Default::default()
    }
}

fn spec(strategy: Strategy, ids: &[&str]) -> SupervisorSpec {
    ids.iter().fold(
        SupervisorSpec::new("root")
            .strategy(strategy)
            .backoff(no_jitter()),
        |spec, id| spec.child(ChildSpec::worker(*id, Echo::new)),
    )
}

async fn incarnations(root: &SupervisorRef) -> Vec<(String, u64)> {
    root.children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.incarnation))
        .collect()
}

fn owned(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(id, n)| (id.to_string(), *n)).collect()
}

/// Crashes `victim`, waits until the restart plan is done, returns the events.
async fn crash_and_settle(
    root: &SupervisorRef,
    events: &mut candado::EventStream,
    victim: &str,
    last_restarted: &str,
) -> Vec<candado::Event> {
    drain(events);
    root.worker::<Echo>(victim)
        .await
        .unwrap()
        .do_send(Crash("boom"));
    let mut seen = Vec::new();
    loop {
        let e = events.recv().await.unwrap();
        let done =
            matches!(&e.kind, EventKind::ChildRestarted { child, .. } if child == last_restarted);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

fn pairs(list: Vec<(String, String)>) -> Vec<String> {
    list.into_iter().map(|(_, child)| child).collect()
}

#[test]
fn one_for_one_restarts_only_the_failed_child() {
    run_paused(|| async {
        let (_runtime, mut events, root) =
            start_local(spec(Strategy::OneForOne, &["a", "b", "c"])).await;
        let seen = crash_and_settle(&root, &mut events, "b", "b").await;
        assert_eq!(pairs(exits(&seen)), ["b"]);
        assert_eq!(pairs(starts(&seen)), ["b"]);
        assert_eq!(
            incarnations(&root).await,
            owned(&[("a", 1), ("b", 2), ("c", 1)])
        );
        root.shutdown().await;
    });
}

#[test]
fn one_for_all_stops_all_in_reverse_then_starts_all_in_order() {
    run_paused(|| async {
        let (_runtime, mut events, root) =
            start_local(spec(Strategy::OneForAll, &["a", "b", "c"])).await;
        let seen = crash_and_settle(&root, &mut events, "b", "c").await;
        assert_eq!(pairs(exits(&seen)), ["b", "c", "a"]);
        assert_eq!(pairs(starts(&seen)), ["a", "b", "c"]);
        let scheduled = seen
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::RestartScheduled { members, .. } => Some(members.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(scheduled, ["a", "b", "c"]);
        assert_eq!(
            incarnations(&root).await,
            owned(&[("a", 2), ("b", 2), ("c", 2)])
        );
        let info = root.children().await.unwrap();
        assert_eq!(info[0].last_exit, Some(ExitReason::Shutdown));
        assert!(matches!(info[1].last_exit, Some(ExitReason::Panic(_))));
        root.shutdown().await;
    });
}

#[test]
fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    run_paused(|| async {
        let (_runtime, mut events, root) =
            start_local(spec(Strategy::RestForOne, &["a", "b", "c", "d"])).await;
        let seen = crash_and_settle(&root, &mut events, "b", "d").await;
        assert_eq!(pairs(exits(&seen)), ["b", "d", "c"]);
        assert_eq!(pairs(starts(&seen)), ["b", "c", "d"]);
        assert_eq!(
            incarnations(&root).await,
            owned(&[("a", 1), ("b", 2), ("c", 2), ("d", 2)])
        );
        root.shutdown().await;
    });
}

#[test]
fn transient_child_is_restarted_only_after_an_abnormal_exit() {
    run_paused(|| async {
        let (_runtime, mut events, root) = start_local(
            SupervisorSpec::new("root")
                .backoff(no_jitter())
                .child(ChildSpec::worker("t", Echo::new).restart(Restart::Transient)),
        )
        .await;
        // Abnormal (failed with a reason, no panic): restarted.
        root.worker::<Echo>("t")
            .await
            .unwrap()
            .do_send(Fail("no config"));
        let e = events
            .wait_for(|e| matches!(e.kind, EventKind::ChildExited { .. }))
            .await
            .unwrap();
        assert!(
            matches!(e.kind, EventKind::ChildExited { reason: ExitReason::Failed(ref m), .. } if m == "no config")
        );
        events
            .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
            .await
            .unwrap();
        // Normal: left stopped.
        root.worker::<Echo>("t").await.unwrap().do_send(Quit);
        events
            .wait_for(|e| {
                matches!(
                    e.kind,
                    EventKind::ChildExited {
                        reason: ExitReason::Normal,
                        ..
                    }
                )
            })
            .await
            .unwrap();
        advance(Duration::from_secs(60)).await;
        let child = &root.children().await.unwrap()[0];
        assert_eq!(child.status, ChildStatus::Stopped);
        assert_eq!((child.incarnation, child.restarts), (2, 1));
        assert!(matches!(
            root.worker::<Echo>("t").await,
            Err(candado::SupervisorError::NotRunning { .. })
        ));
        root.shutdown().await;
    });
}

#[test]
fn temporary_children_are_never_restarted_and_are_removed() {
    run_paused(|| async {
        let (_runtime, mut events, root) = start_local(
            SupervisorSpec::new("root")
                .strategy(Strategy::OneForAll)
                .backoff(no_jitter())
                .child(ChildSpec::worker("a", Echo::new))
                .child(ChildSpec::worker("tmp", Echo::new).restart(Restart::Temporary))
                .child(ChildSpec::worker("c", Echo::new)),
        )
        .await;
        // A sibling's failure stops the temporary child; it is not restarted.
        let seen = crash_and_settle(&root, &mut events, "a", "c").await;
        assert_eq!(pairs(exits(&seen)), ["a", "c", "tmp"]);
        assert_eq!(pairs(starts(&seen)), ["a", "c"]);
        assert_eq!(incarnations(&root).await, owned(&[("a", 2), ("c", 2)]));

        // Its own crash does not restart it either.
        root.add_child(ChildSpec::worker("tmp2", Echo::new).restart(Restart::Temporary))
            .await
            .unwrap();
        root.worker::<Echo>("tmp2")
            .await
            .unwrap()
            .do_send(Crash("bye"));
        events
            .wait_for(
                |e| matches!(&e.kind, EventKind::ChildExited { child, .. } if child == "tmp2"),
            )
            .await
            .unwrap();
        advance(Duration::from_secs(60)).await;
        assert_eq!(incarnations(&root).await, owned(&[("a", 2), ("c", 2)]));
        root.shutdown().await;
    });
}

#[test]
fn a_new_incarnation_starts_only_after_the_old_one_stopped() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let mut events = runtime.subscribe();
        let stops = candado::testkit::MockHandle::default();
        let counted = stops.clone();
        let root = runtime
            .start(
                SupervisorSpec::new("root")
                    .strategy(Strategy::OneForAll)
                    .backoff(no_jitter())
                    .child(
                        ChildSpec::worker("stubborn", move |link| counted.child(link).stubborn())
                            .shutdown(ShutdownPolicy::Timeout(Duration::from_secs(2))),
                    )
                    .child(ChildSpec::worker("b", Echo::new)),
            )
            .await
            .unwrap();
        let seen = crash_and_settle(&root, &mut events, "b", "b").await;
        let at =
            |pred: &dyn Fn(&EventKind) -> bool| seen.iter().find(|e| pred(&e.kind)).unwrap().at_ms;
        let crashed = at(&|k| matches!(k, EventKind::ChildExited { child, .. } if child == "b"));
        let killed = at(
            &|k| matches!(k, EventKind::ChildExited { child, reason: ExitReason::Killed, .. } if child == "stubborn"),
        );
        let restarted = at(
            &|k| matches!(k, EventKind::ChildStarted { child, incarnation: 2, .. } if child == "stubborn"),
        );
        assert_eq!(
            killed - crashed,
            2_000,
            "stubborn child gets its full shutdown timeout"
        );
        assert_eq!(
            restarted - killed,
            100,
            "then the backoff delay, then the new incarnation"
        );
        // The old incarnation really ended (killed: `stopped` ran once).
        assert_eq!(stops.stops(), 1);
        root.shutdown().await;
    });
}

#[test]
fn a_failure_during_a_pending_restart_merges_the_plans() {
    run_paused(|| async {
        let (_runtime, mut events, root) =
            start_local(spec(Strategy::RestForOne, &["a", "b", "c"])).await;
        drain(&mut events);
        // c fails: its restart waits 100 ms of backoff...
        root.worker::<Echo>("c")
            .await
            .unwrap()
            .do_send(Crash("c first"));
        events
            .wait_for(|e| matches!(e.kind, EventKind::RestartScheduled { .. }))
            .await
            .unwrap();
        // ...and meanwhile a fails: one plan restarts a, b and c, each once.
        root.worker::<Echo>("a")
            .await
            .unwrap()
            .do_send(Crash("a next"));
        let scheduled = events
            .wait_for(|e| matches!(e.kind, EventKind::RestartScheduled { .. }))
            .await
            .unwrap();
        assert!(
            matches!(&scheduled.kind, EventKind::RestartScheduled { members, .. } if members == &["a", "b", "c"])
        );
        advance(Duration::from_secs(1)).await;
        let seen = drain(&mut events);
        assert_eq!(pairs(starts(&seen)), ["a", "b", "c"]);
        assert_eq!(
            incarnations(&root).await,
            owned(&[("a", 2), ("b", 2), ("c", 2)])
        );
        root.shutdown().await;
    });
}

#[test]
fn removing_a_child_during_its_backoff_cancels_its_restart() {
    run_paused(|| async {
        let (_runtime, mut events, root) =
            start_local(spec(Strategy::OneForOne, &["a", "b"])).await;
        root.worker::<Echo>("a")
            .await
            .unwrap()
            .do_send(Crash("bye"));
        events
            .wait_for(|e| matches!(e.kind, EventKind::RestartScheduled { .. }))
            .await
            .unwrap();
        assert_eq!(
            root.children().await.unwrap()[0].status,
            ChildStatus::Restarting
        );
        root.remove_child("a").await.unwrap();
        advance(Duration::from_secs(5)).await;
        assert_eq!(incarnations(&root).await, owned(&[("b", 1)]));
        assert!(!drain(&mut events)
            .iter()
            .any(|e| matches!(e.kind, EventKind::ChildStarted { .. })));
        root.shutdown().await;
    });
}

#[test]
fn a_start_failure_inside_a_group_restart_restarts_the_group_again() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let root = runtime
            .start(
                SupervisorSpec::new("root")
                    .strategy(Strategy::OneForAll)
                    .backoff(no_jitter())
                    .child(ChildSpec::worker("a", Echo::new))
                    .child(ChildSpec::worker("b", |link: candado::ChildLink| {
                        assert_ne!(link.incarnation(), 2, "b cannot start a second time");
                        Echo::new(link)
                    }))
                    .child(ChildSpec::worker("c", Echo::new)),
            )
            .await
            .unwrap();
        root.worker::<Echo>("c").await.unwrap().do_send(Crash("c"));
        advance(Duration::from_secs(5)).await;
        // a: restarted, then stopped again when b failed to start; b: its second
        // incarnation failed; c: never started by the first plan, once by the second.
        assert_eq!(
            incarnations(&root).await,
            owned(&[("a", 3), ("b", 3), ("c", 2)])
        );
        let info = root.info().await.unwrap();
        assert_eq!(info.restarts_in_period, 2);
        assert!(info
            .children
            .iter()
            .all(|c| c.status == ChildStatus::Running));
        root.shutdown().await;
    });
}
