//! Introspection, dynamic children, lookups and typed errors.

mod common;

use std::time::Duration;

use candado::{
    BackoffConfig, ChildKind, ChildSpec, ChildStatus, EventKind, ExitReason, Restart, Runtime,
    RuntimeError, SpecError, SupervisorError, SupervisorSpec,
};
use common::*;

#[test]
fn invalid_specs_are_rejected_with_typed_errors() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let cases: Vec<(SupervisorSpec, SpecError)> = vec![
            (
                SupervisorSpec::new("root")
                    .child(ChildSpec::worker("a", Echo::new))
                    .child(ChildSpec::worker("a", Echo::new)),
                SpecError::DuplicateChildId {
                    supervisor: "root".into(),
                    id: "a".into(),
                },
            ),
            (
                SupervisorSpec::new("root").intensity(1, Duration::ZERO),
                SpecError::ZeroPeriod {
                    supervisor: "root".into(),
                },
            ),
            (
                SupervisorSpec::new("root").backoff(BackoffConfig {
                    base: Duration::from_secs(2),
                    cap: Duration::from_secs(1),
                    ..Default::default()
                }),
                SpecError::BackoffCapBelowBase {
                    base: Duration::from_secs(2),
                    cap: Duration::from_secs(1),
                },
            ),
            (
                SupervisorSpec::new("root").child(ChildSpec::supervisor(SupervisorSpec::new(""))),
                SpecError::EmptyId,
            ),
            (
                SupervisorSpec::new("root")
                    .child(ChildSpec::supervisor(SupervisorSpec::new("db")).external_heartbeats()),
                SpecError::ExternalHeartbeatsOnSupervisor("db".into()),
            ),
        ];
        let _root = runtime.start(SupervisorSpec::new("root")).await.unwrap();
        assert_eq!(
            runtime
                .start(SupervisorSpec::new("root"))
                .await
                .unwrap_err(),
            SupervisorError::DuplicateRoot("root".into())
        );
        for (spec, expected) in cases {
            let err = runtime.start(spec).await.unwrap_err();
            assert_eq!(err, SupervisorError::InvalidSpec(expected.clone()));
            assert!(err.to_string().contains(&expected.to_string()));
        }
    });
}

#[test]
fn runtime_config_errors_are_typed() {
    assert_eq!(
        Runtime::builder().worker_threads(1).build().unwrap_err(),
        RuntimeError::NoSystem,
        "outside a System"
    );
    run_paused(|| async {
        assert_eq!(
            Runtime::builder().worker_threads(0).build().unwrap_err(),
            RuntimeError::ZeroWorkerThreads
        );
        assert_eq!(
            Runtime::builder().event_capacity(0).build().unwrap_err(),
            RuntimeError::ZeroEventCapacity
        );
        let default = Runtime::builder().build().unwrap();
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(default.worker_threads(), cpus);
    });
}

#[test]
fn introspection_reports_state_restarts_last_exit_and_uptime() {
    run_paused(|| async {
        let (_runtime, mut events, root) = start_local(
            SupervisorSpec::new("root")
                .child(ChildSpec::worker("w", Echo::new))
                .child(
                    ChildSpec::supervisor(SupervisorSpec::new("sub")).restart(Restart::Transient),
                ),
        )
        .await;
        advance(Duration::from_millis(1_500)).await;
        let info = root.info().await.unwrap();
        assert_eq!(info.path, "root");
        assert_eq!(info.ticks, 1);
        let w = &info.children[0];
        assert_eq!(
            (w.kind, w.status, w.incarnation, w.restarts),
            (ChildKind::Worker, ChildStatus::Running, 1, 0)
        );
        assert_eq!(w.uptime, Some(Duration::from_millis(1_500)));
        assert_eq!(w.last_exit, None);
        let sub = &info.children[1];
        assert_eq!(
            (sub.kind, sub.restart),
            (ChildKind::Supervisor, Restart::Transient)
        );

        root.worker::<Echo>("w").await.unwrap().do_send(Crash("x"));
        events
            .wait_for(|e| matches!(e.kind, EventKind::RestartScheduled { .. }))
            .await
            .unwrap();
        assert_eq!(
            root.children().await.unwrap()[0].status,
            ChildStatus::Restarting
        );
        events
            .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
            .await
            .unwrap();
        let w = &root.children().await.unwrap()[0];
        assert_eq!(
            (w.incarnation, w.restarts, w.uptime),
            (2, 1, Some(Duration::ZERO))
        );
        assert!(matches!(&w.last_exit, Some(ExitReason::Panic(m)) if m.contains('x')));
        assert_eq!(root.info().await.unwrap().restarts_in_period, 1);
        // A snapshot is serde-serialisable.
        let json = serde_json::to_value(root.info().await.unwrap()).unwrap();
        assert_eq!(json["children"][0]["status"], "running");
        root.shutdown().await;
    });
}

#[test]
fn children_are_added_removed_and_looked_up_at_run_time() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let root = runtime
            .start(SupervisorSpec::new("root").child(ChildSpec::worker("a", Echo::new)))
            .await
            .unwrap();
        root.add_child(ChildSpec::worker("b", Echo::new))
            .await
            .unwrap();
        root.add_child(ChildSpec::supervisor(
            SupervisorSpec::new("sub").child(ChildSpec::worker("deep", Echo::new)),
        ))
        .await
        .unwrap();
        let ids: Vec<_> = root
            .children()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["a", "b", "sub"]);
        let sub = root.supervisor("sub").await.unwrap();
        assert_eq!(sub.path(), "root/sub");
        assert_eq!(
            sub.worker::<Echo>("deep")
                .await
                .unwrap()
                .send(Ping)
                .await
                .unwrap(),
            1
        );

        // Typed errors for bad requests.
        assert_eq!(
            root.add_child(ChildSpec::worker("a", Echo::new)).await,
            Err(SupervisorError::AlreadyStarted {
                supervisor: "root".into(),
                id: "a".into()
            })
        );
        assert!(matches!(
            root.remove_child("nope").await,
            Err(SupervisorError::UnknownChild { ref id, .. }) if id == "nope"
        ));
        assert!(matches!(
            root.worker::<Echo>("nope").await,
            Err(SupervisorError::UnknownChild { .. })
        ));
        assert!(matches!(
            root.worker::<Spinner>("a").await,
            Err(SupervisorError::WrongType { .. })
        ));
        assert!(matches!(
            root.supervisor("a").await,
            Err(SupervisorError::WrongType { .. })
        ));

        root.remove_child("sub").await.unwrap();
        root.remove_child("a").await.unwrap();
        let ids: Vec<_> = root
            .children()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["b"]);
        assert!(!sub.is_running());
        // Its id is free again.
        root.add_child(ChildSpec::worker("a", Echo::new))
            .await
            .unwrap();
        root.shutdown().await;
        assert!(matches!(
            root.add_child(ChildSpec::worker("c", Echo::new)).await,
            Err(SupervisorError::Stopped(_))
        ));
    });
}

#[test]
fn a_nested_start_failure_fails_the_whole_start_and_stops_what_started() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let mut events = runtime.subscribe();
        let err = runtime
            .start(
                SupervisorSpec::new("root")
                    .child(ChildSpec::worker("first", Echo::new))
                    .child(ChildSpec::supervisor(SupervisorSpec::new("sub").child(
                        ChildSpec::worker("bad", |_| -> Echo { panic!("no db") }),
                    )))
                    .child(ChildSpec::worker("never", Echo::new)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SupervisorError::StartFailed { reason, .. } if reason.contains("no db")),
            "{err}"
        );
        let seen = drain(&mut events);
        let started: Vec<_> = starts(&seen).into_iter().map(|(_, c)| c).collect();
        assert_eq!(started, ["first"]);
        let exited: Vec<_> = exits(&seen)
            .into_iter()
            .map(|(s, c)| format!("{s}/{c}"))
            .collect();
        assert_eq!(exited, ["root/sub/bad", "root/sub", "root/first"]);
    });
}
