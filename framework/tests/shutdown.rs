//! Ordered shutdown, on virtual time.

mod common;

use std::time::Duration;

use candado::{ChildSpec, EventKind, ExitReason, Runtime, ShutdownPolicy, SupervisorSpec};
use common::*;

#[test]
fn shutdown_stops_children_in_reverse_order_and_kills_one_that_ignores_its_stop() {
    run_paused(|| async {
        let (_runtime, mut events, root) = start_local(
            SupervisorSpec::new("root")
                .child(ChildSpec::worker("a", Echo::new))
                .child(
                    ChildSpec::worker("stubborn", |link| Echo::new(link).stubborn())
                        .shutdown(ShutdownPolicy::Timeout(Duration::from_secs(3))),
                )
                .child(ChildSpec::supervisor(
                    SupervisorSpec::new("sub")
                        .child(ChildSpec::worker("x", Echo::new))
                        .child(ChildSpec::worker("y", Echo::new)),
                )),
        )
        .await;
        drain(&mut events);
        let started = tokio::time::Instant::now();
        assert_eq!(root.shutdown().await, ExitReason::Shutdown);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(3),
            "only the stubborn child's timeout is waited"
        );
        let seen = drain(&mut events);
        let order: Vec<_> = exits(&seen)
            .into_iter()
            .map(|(s, c)| format!("{s}/{c}"))
            .collect();
        assert_eq!(
            order,
            [
                "root/sub/y",
                "root/sub/x",
                "root/sub",
                "root/stubborn",
                "root/a"
            ]
        );
        let killed = seen
            .iter()
            .find(
                |e| matches!(&e.kind, EventKind::ChildExited { child, .. } if child == "stubborn"),
            )
            .unwrap();
        assert!(matches!(
            &killed.kind,
            EventKind::ChildExited {
                reason: ExitReason::Killed,
                ..
            }
        ));
        let stopped: Vec<_> = seen
            .iter()
            .filter(|e| matches!(e.kind, EventKind::SupervisorStopped { .. }))
            .map(|e| e.supervisor.as_str())
            .collect();
        assert_eq!(stopped, ["root/sub", "root"]);
        assert!(!root.is_running());
        // A stopped supervisor answers requests with a typed error.
        assert!(matches!(
            root.children().await,
            Err(candado::SupervisorError::Stopped(_))
        ));
    });
}

#[test]
fn runtime_shutdown_stops_every_root_newest_first() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let mut events = runtime.subscribe();
        let first = runtime.start(SupervisorSpec::new("first")).await.unwrap();
        let second = runtime.start(SupervisorSpec::new("second")).await.unwrap();
        runtime.shutdown().await;
        let stopped: Vec<_> = drain(&mut events)
            .into_iter()
            .filter(|e| matches!(e.kind, EventKind::SupervisorStopped { .. }))
            .map(|e| e.supervisor)
            .collect();
        assert_eq!(stopped, ["second", "first"]);
        assert!(!first.is_running() && !second.is_running());
    });
}
