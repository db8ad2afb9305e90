//! Panic isolation and control-plane isolation, with children on real worker threads.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candado::{ChildSpec, ChildStatus, EventKind, ExitReason, Placement, Runtime, SupervisorSpec};
use common::*;

#[test]
fn a_panicking_child_leaves_its_siblings_answering() {
    run_paused(|| async {
        let runtime = Runtime::builder()
            .control_on_current_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let mut events = runtime.subscribe();
        let root = runtime
            .start(
                SupervisorSpec::new("root")
                    .child(ChildSpec::worker("crasher", Echo::new))
                    .child(ChildSpec::worker("s1", Echo::new))
                    .child(ChildSpec::worker("s2", Echo::new)),
            )
            .await
            .unwrap();
        let s1 = root.worker::<Echo>("s1").await.unwrap();
        let s2 = root.worker::<Echo>("s2").await.unwrap();
        for round in 1..=3u64 {
            drain(&mut events);
            root.worker::<Echo>("crasher")
                .await
                .unwrap()
                .do_send(Crash("kaboom"));
            // Siblings, on both threads, keep answering while it crashes and restarts.
            for _ in 0..20 {
                assert_eq!(s1.send(Ping).await.unwrap(), 1);
                assert_eq!(s2.send(Ping).await.unwrap(), 1);
            }
            let exit = events
                .wait_for(|e| matches!(e.kind, EventKind::ChildExited { .. }))
                .await
                .unwrap();
            assert!(
                matches!(&exit.kind, EventKind::ChildExited { child, reason: ExitReason::Panic(m), .. }
                    if child == "crasher" && m.contains("kaboom")),
                "{exit:?}"
            );
            events
                .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
                .await
                .unwrap();
            let crasher = root.worker::<Echo>("crasher").await.unwrap();
            assert_eq!(crasher.send(Ping).await.unwrap(), round + 1);
        }
        let info = root.children().await.unwrap();
        assert_eq!(info[0].restarts, 3);
        assert!(matches!(info[0].last_exit, Some(ExitReason::Panic(_))));
        assert_eq!(info[1].restarts + info[2].restarts, 0);
        runtime.shutdown().await;
    });
}

#[test]
fn a_worker_thread_survives_panics_unlike_a_sync_arbiter_thread() {
    run_paused(|| async {
        // One worker thread: every incarnation lands on it. If a panic killed
        // the thread (as on actix's SyncArbiter) the restarts could not start.
        let runtime = Runtime::builder()
            .control_on_current_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let mut events = runtime.subscribe();
        let root = runtime
            .start(
                SupervisorSpec::new("root")
                    .intensity(20, Duration::from_secs(60))
                    .child(ChildSpec::worker("w", Echo::new)),
            )
            .await
            .unwrap();
        for _ in 0..10 {
            root.worker::<Echo>("w")
                .await
                .unwrap()
                .do_send(Crash("again"));
            events
                .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
                .await
                .unwrap();
        }
        let w = root.worker::<Echo>("w").await.unwrap();
        assert_eq!(w.send(Ping).await.unwrap(), 11);
        assert_eq!(
            root.children().await.unwrap()[0].placement,
            Some(Placement::Worker(0))
        );
        runtime.shutdown().await;
    });
}

#[test]
fn a_factory_panic_is_a_failed_start_not_a_lost_thread() {
    run_paused(|| async {
        let runtime = Runtime::builder()
            .control_on_current_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let err = runtime
            .start(
                SupervisorSpec::new("root").child(ChildSpec::worker("bad", |_| -> Echo {
                    panic!("cannot build")
                })),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot build"), "{err}");
        // The same thread still builds children.
        let root = runtime
            .start(SupervisorSpec::new("root2").child(ChildSpec::worker("ok", Echo::new)))
            .await
            .unwrap();
        let err = root
            .add_child(ChildSpec::worker("bad", |_| -> Echo {
                panic!("still cannot")
            }))
            .await
            .unwrap_err();
        assert!(
            matches!(err, candado::SupervisorError::StartFailed { ref id, .. } if id == "bad"),
            "{err}"
        );
        assert_eq!(root.children().await.unwrap().len(), 1);
        assert_eq!(
            root.worker::<Echo>("ok")
                .await
                .unwrap()
                .send(Ping)
                .await
                .unwrap(),
            1
        );
        runtime.shutdown().await;
    });
}

#[test]
fn a_cpu_blocked_child_does_not_delay_its_supervisor() {
    run_paused(|| async {
        let runtime = Runtime::builder()
            .control_on_current_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let release = Arc::new(AtomicBool::new(false));
        let entered = Arc::new(AtomicBool::new(false));
        let (r, e) = (release.clone(), entered.clone());
        let root = runtime
            .start(
                SupervisorSpec::new("root").child(ChildSpec::worker("spinner", move |_| Spinner {
                    release: r.clone(),
                    entered: e.clone(),
                })),
            )
            .await
            .unwrap();
        while !entered.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        // The only worker thread is now stuck in a CPU loop. (Virtual time ran
        // ahead while the test waited for the real thread: step off the tick
        // grid before counting.)
        advance(Duration::from_millis(500)).await;
        let before = root.info().await.unwrap();
        advance(Duration::from_secs(10)).await;
        let after = root.info().await.unwrap();
        assert_eq!(
            after.ticks - before.ticks,
            10,
            "the supervisor ticked on schedule (before {before:?})"
        );
        assert_eq!(after.children[0].status, ChildStatus::Running);
        // Its messages are handled too: a child supervisor starts on the control thread.
        root.add_child(ChildSpec::supervisor(SupervisorSpec::new("side")))
            .await
            .unwrap();
        assert_eq!(root.children().await.unwrap().len(), 2);
        release.store(true, Ordering::SeqCst);
        root.shutdown().await;
    });
}
