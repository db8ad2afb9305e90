mod common;

use candado::{ChildSpec, EventKind, ExitReason, Runtime, SupervisorSpec};
use common::*;

#[test]
fn panicking_child_is_restarted_with_its_message() {
    run_paused(|| async {
        let runtime = Runtime::builder()
            .current_thread()
            .rng_seed(1)
            .build()
            .unwrap();
        let mut events = runtime.subscribe();
        let root = runtime
            .start(
                SupervisorSpec::new("root")
                    .child(ChildSpec::worker("a", Echo::new))
                    .child(ChildSpec::worker("b", Echo::new)),
            )
            .await
            .unwrap();
        let a = root.worker::<Echo>("a").await.unwrap();
        assert_eq!(a.send(Ping).await.unwrap(), 1);
        a.do_send(Crash("boom"));
        let exit = events
            .wait_for(|e| matches!(e.kind, EventKind::ChildExited { .. }))
            .await
            .unwrap();
        match exit.kind {
            EventKind::ChildExited {
                reason: ExitReason::Panic(msg),
                ..
            } => assert!(msg.contains("boom"), "{msg}"),
            other => panic!("unexpected {other:?}"),
        }
        events
            .wait_for(|e| matches!(e.kind, EventKind::ChildRestarted { .. }))
            .await
            .unwrap();
        let a = root.worker::<Echo>("a").await.unwrap();
        assert_eq!(a.send(Ping).await.unwrap(), 2);
        let b = root.worker::<Echo>("b").await.unwrap();
        assert_eq!(b.send(Ping).await.unwrap(), 1);
        assert_eq!(root.shutdown().await, ExitReason::Shutdown);
        println!("{:#?}", drain(&mut events));
    });
}
