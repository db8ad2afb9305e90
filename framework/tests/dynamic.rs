//! Dynamic supervisors: children from one template started at run time,
//! `max_children`, restart types, escalation, shutdown, on virtual time.

mod common;

use std::time::Duration;

use candado::testkit::MockHandle;
use candado::{
    BackoffConfig, ChildStatus, DynamicError, DynamicSpec, DynamicSupervisor, EventKind,
    ExitReason, Restart, Runtime, ShutdownPolicy, SupervisorError, SupervisorSpec,
};
use common::*;

type Echoes = DynamicSupervisor<Echo, u64>;

fn echoes(id: &str) -> DynamicSpec<Echo, u64> {
    DynamicSpec::new(id, |link, _n: u64| Echo::new(link)).backoff(BackoffConfig {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(10),
        jitter: 0.0,
        stability_window: Duration::from_secs(5),
        ..BackoffConfig::default()
    })
}

fn local_runtime() -> Runtime {
    Runtime::builder()
        .current_thread()
        .build()
        .expect("runtime")
}

#[test]
fn max_children_is_a_typed_error_and_a_terminated_child_frees_its_slot() {
    run_paused(|| async {
        let runtime = local_runtime();
        let dynamic = echoes("sessions")
            .max_children(3)
            .start(&runtime)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(dynamic.start_child(n).await.unwrap().id().to_owned());
        }
        assert_eq!(dynamic.count_children(), 3);
        let full = dynamic.start_child(3).await.unwrap_err();
        assert_eq!(
            full,
            DynamicError::Full {
                supervisor: "sessions".into(),
                max: 3
            }
        );
        dynamic.terminate_child(&ids[1]).await.unwrap();
        assert_eq!(dynamic.count_children(), 2);
        let again = dynamic.start_child(4).await.unwrap();
        assert_ne!(again.id(), ids[1], "ids are never reused");
        assert_eq!(again.addr().unwrap().send(Ping).await.unwrap(), 1);
        let unknown = dynamic.terminate_child(&ids[1]).await.unwrap_err();
        assert!(matches!(
            unknown,
            DynamicError::Supervisor(SupervisorError::UnknownChild { .. })
        ));
        runtime.shutdown().await;
    });
}

#[test]
fn zero_max_children_refuses_every_start() {
    run_paused(|| async {
        let runtime = local_runtime();
        let dynamic = echoes("none")
            .max_children(0)
            .start(&runtime)
            .await
            .unwrap();
        assert!(matches!(
            dynamic.start_child(1).await,
            Err(DynamicError::Full { max: 0, .. })
        ));
        assert_eq!(dynamic.count_children(), 0);
        runtime.shutdown().await;
    });
}

#[test]
fn two_concurrent_starts_for_the_last_slot_one_wins() {
    run_paused(|| async {
        let runtime = local_runtime();
        let dynamic = echoes("race")
            .max_children(2)
            .start(&runtime)
            .await
            .unwrap();
        dynamic.start_child(0).await.unwrap();
        let (a, b) = tokio::join!(dynamic.start_child(1), dynamic.start_child(2));
        let won = [&a, &b].iter().filter(|r| r.is_ok()).count();
        let full = [&a, &b]
            .iter()
            .filter(|r| matches!(r, Err(DynamicError::Full { .. })))
            .count();
        assert_eq!((won, full), (1, 1), "{a:?} {b:?}");
        assert_eq!(dynamic.count_children(), 2);
        assert_eq!(dynamic.which_children().await.unwrap().len(), 2);
        runtime.shutdown().await;
    });
}

/// Starts one child of `restart` type, makes it exit (a panic or a normal
/// stop), and says whether it came back (and as which incarnation).
async fn exit_and_see(restart: Restart, panic: bool) -> (usize, Option<u64>) {
    let runtime = local_runtime();
    let dynamic: Echoes = echoes("d").restart(restart).start(&runtime).await.unwrap();
    let child = dynamic.start_child(7).await.unwrap();
    let addr = child.addr().unwrap().clone();
    if panic {
        addr.do_send(Crash("boom"));
    } else {
        addr.do_send(Quit);
    }
    advance(Duration::from_millis(50)).await;
    let held = dynamic.count_children();
    let incarnation = match dynamic.worker(child.id()).await {
        Ok(addr) => Some(addr.send(Ping).await.unwrap()),
        Err(_) => None,
    };
    assert_eq!(dynamic.which_children().await.unwrap().len(), held);
    runtime.shutdown().await;
    (held, incarnation)
}

#[test]
fn restart_types_after_a_panic_and_after_a_normal_exit() {
    run_paused(|| async {
        assert_eq!(exit_and_see(Restart::Permanent, true).await, (1, Some(2)));
        assert_eq!(exit_and_see(Restart::Permanent, false).await, (1, Some(2)));
        assert_eq!(exit_and_see(Restart::Transient, true).await, (1, Some(2)));
        // Not restarted: forgotten, so its slot is free again (as in OTP).
        assert_eq!(exit_and_see(Restart::Transient, false).await, (0, None));
        assert_eq!(exit_and_see(Restart::Temporary, true).await, (0, None));
        assert_eq!(exit_and_see(Restart::Temporary, false).await, (0, None));
    });
}

#[test]
fn a_panicking_factory_is_a_failed_start_and_frees_its_slot() {
    run_paused(|| async {
        let runtime = local_runtime();
        let dynamic = DynamicSpec::new("picky", |link, ok: bool| {
            assert!(ok, "bad arguments");
            Echo::new(link)
        })
        .max_children(1)
        .start(&runtime)
        .await
        .unwrap();
        let err = dynamic.start_child(false).await.unwrap_err();
        assert!(
            matches!(&err, DynamicError::Supervisor(SupervisorError::StartFailed { reason, .. }) if reason.contains("bad arguments")),
            "{err:?}"
        );
        assert_eq!(dynamic.count_children(), 0);
        dynamic.start_child(true).await.unwrap();
        runtime.shutdown().await;
    });
}

#[test]
fn exceeding_the_intensity_escalates_to_the_parent_which_restarts_it_empty() {
    run_paused(|| async {
        let runtime = local_runtime();
        let mut events = runtime.subscribe();
        let spec = echoes("workers").intensity(1, Duration::from_secs(60));
        let tree = SupervisorSpec::new("root")
            .intensity(5, Duration::from_secs(60))
            .child(spec.child_spec());
        let root = runtime.start(tree).await.unwrap();
        let dynamic = spec.attach(&root);
        let a = dynamic.start_child(1).await.unwrap();
        let b = dynamic.start_child(2).await.unwrap();
        a.addr().unwrap().do_send(Crash("one"));
        advance(Duration::from_millis(50)).await;
        assert_eq!(dynamic.count_children(), 2, "one restart is within budget");
        b.addr().unwrap().do_send(Crash("two"));
        // Past the parent's backoff (default: well under 2 s for a first restart).
        advance(Duration::from_secs(2)).await;

        let seen = drain(&mut events);
        let gave_up = find(&seen, |k| matches!(k, EventKind::GaveUp { .. })).unwrap();
        assert_eq!(gave_up.supervisor, "root/workers");
        assert!(find(&seen, |k| matches!(k, EventKind::Escalated { .. })).is_some());
        let restarted = find(
            &seen,
            |k| matches!(k, EventKind::ChildRestarted { child, cause, .. } if child == "workers" && cause.key() == "escalated"),
        );
        assert!(restarted.is_some(), "{seen:#?}");
        // The parent restarted it with no children; the handle finds the new one.
        assert_eq!(dynamic.count_children(), 0);
        assert!(dynamic.which_children().await.unwrap().is_empty());
        let c = dynamic.start_child(3).await.unwrap();
        assert_eq!(c.addr().unwrap().send(Ping).await.unwrap(), 1);
        runtime.shutdown().await;
    });
}

#[test]
fn shutting_down_the_parent_stops_every_dynamic_child() {
    run_paused(|| async {
        let runtime = local_runtime();
        let mut events = runtime.subscribe();
        let stops = MockHandle::default();
        let spec = DynamicSpec::new("conns", |link, stops: MockHandle| stops.child(link));
        let tree = SupervisorSpec::new("root").child(spec.child_spec());
        let root = runtime.start(tree).await.unwrap();
        let dynamic = spec.attach(&root);
        for _ in 0..5 {
            dynamic.start_child(stops.clone()).await.unwrap();
        }
        assert_eq!(root.shutdown().await, ExitReason::Shutdown);
        assert_eq!(stops.stops(), 5);
        // The usual events, under the dynamic supervisor's path; the
        // children stop newest first, before their supervisor.
        let seen = drain(&mut events);
        let children = |pairs: Vec<(String, String)>| -> Vec<String> {
            pairs
                .into_iter()
                .filter(|(sup, _)| sup == "root/conns")
                .map(|(_, child)| child)
                .collect()
        };
        assert_eq!(children(starts(&seen)), ["1", "2", "3", "4", "5"]);
        assert_eq!(children(exits(&seen)), ["5", "4", "3", "2", "1"]);
        assert_eq!(
            exits(&seen).last().unwrap(),
            &("root".into(), "conns".into())
        );
        assert_eq!(dynamic.count_children(), 0);
        assert!(matches!(
            dynamic.start_child(stops.clone()).await,
            Err(DynamicError::Stopped(id)) if id == "conns"
        ));
        runtime.shutdown().await;
    });
}

#[test]
fn start_child_after_shutdown_is_a_typed_error() {
    run_paused(|| async {
        let runtime = local_runtime();
        let dynamic = echoes("gone").start(&runtime).await.unwrap();
        dynamic.start_child(1).await.unwrap();
        assert_eq!(dynamic.shutdown().await.unwrap(), ExitReason::Shutdown);
        assert_eq!(dynamic.count_children(), 0);
        assert_eq!(
            dynamic.start_child(2).await.unwrap_err(),
            DynamicError::Stopped("gone".into())
        );
        assert!(matches!(
            dynamic.which_children().await,
            Err(DynamicError::Stopped(_))
        ));
        runtime.shutdown().await;
    });
}

#[test]
fn extreme_knobs_are_refused_or_clamped_never_a_panic() {
    run_paused(|| async {
        let runtime = local_runtime();
        let zero = echoes("zero")
            .intensity(1, Duration::ZERO)
            .start(&runtime)
            .await;
        assert!(
            matches!(zero, Err(DynamicError::InvalidSpec(_))),
            "{zero:?}"
        );

        let dynamic = DynamicSpec::new("huge", |link, _: ()| Echo::new(link))
            .max_children(usize::MAX)
            .intensity(u32::MAX, Duration::MAX)
            .tick_interval(Duration::MAX)
            .backoff(BackoffConfig {
                base: Duration::MAX,
                cap: Duration::MAX,
                jitter: 1.0,
                stability_window: Duration::MAX,
                ..BackoffConfig::default()
            })
            .restart(Restart::Permanent)
            .shutdown(ShutdownPolicy::Timeout(Duration::MAX))
            .start(&runtime)
            .await
            .unwrap();
        assert_eq!(dynamic.max_children(), usize::MAX);
        let child = dynamic.start_child(()).await.unwrap();
        child.addr().unwrap().do_send(Crash("far restart"));
        advance(Duration::from_secs(3600)).await;
        // Waiting for a restart that is (practically) never due: still held.
        assert_eq!(dynamic.count_children(), 1);
        let info = dynamic.which_children().await.unwrap();
        assert_ne!(info[0].status, ChildStatus::Running);
        assert_eq!(dynamic.shutdown().await.unwrap(), ExitReason::Shutdown);
        runtime.shutdown().await;
    });
}

#[test]
fn ten_thousand_children_start_and_are_counted() {
    run_paused(|| async {
        let runtime = local_runtime();
        let dynamic = echoes("many")
            .max_children(10_000)
            .start(&runtime)
            .await
            .unwrap();
        for n in 0..10_000 {
            dynamic.start_child(n).await.unwrap();
        }
        assert_eq!(dynamic.count_children(), 10_000);
        assert!(matches!(
            dynamic.start_child(0).await,
            Err(DynamicError::Full { .. })
        ));
        let children = dynamic.which_children().await.unwrap();
        assert_eq!(children.len(), 10_000);
        assert!(children.iter().all(|c| c.status == ChildStatus::Running));
        assert_eq!(dynamic.shutdown().await.unwrap(), ExitReason::Shutdown);
        assert_eq!(dynamic.count_children(), 0);
        runtime.shutdown().await;
    });
}

/// OTP's `simple_one_for_one` with a factory that may fail or decline: a
/// failure is a typed error with its reason and frees its slot; a declined
/// start adds nothing; a declined restart forgets the child.
#[test]
fn a_fallible_factory_fails_with_its_reason_or_declines_and_holds_no_slot() {
    run_paused(|| async {
        let runtime = local_runtime();
        let (factory, mock) = candado::testkit::MockChild::factory();
        let starts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = starts.clone();
        let spec = DynamicSpec::try_new("conns", move |link, what: &'static str| match what {
            "fail" => candado::StartResult::Fail("no route to host".into()),
            "ignore" => candado::StartResult::Ignore,
            // Runs once, then declines at its restart.
            "once" if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 => {
                candado::StartResult::Ignore
            }
            _ => candado::StartResult::Run(factory(link)),
        })
        .max_children(2)
        .backoff(BackoffConfig::none());
        let dynamic = spec.start(&runtime).await.unwrap();

        let failed = dynamic.start_child("fail").await.unwrap_err();
        match failed {
            DynamicError::Supervisor(SupervisorError::StartFailed { reason, .. }) => {
                assert!(reason.contains("no route to host"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(dynamic.count_children(), 0);

        let ignored = dynamic.start_child("ignore").await.unwrap();
        assert!(ignored.addr().is_none());
        assert_eq!(dynamic.count_children(), 0);
        assert!(dynamic.which_children().await.unwrap().is_empty());

        let once = dynamic.start_child("once").await.unwrap();
        assert_eq!(dynamic.count_children(), 1);
        once.addr().unwrap().do_send(Crash("restart me"));
        for _ in 0..1_000 {
            if dynamic.count_children() == 0 {
                break;
            }
            advance(Duration::from_millis(10)).await;
        }
        assert_eq!(
            dynamic.count_children(),
            0,
            "a declined restart frees the slot"
        );
        assert!(dynamic.which_children().await.unwrap().is_empty());
        assert_eq!(mock.starts(), 1);
        assert_eq!(starts.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Both slots are free again.
        dynamic.start_child("run").await.unwrap();
        dynamic.start_child("run").await.unwrap();
        assert_eq!(dynamic.count_children(), 2);
        runtime.shutdown().await;
    });
}
