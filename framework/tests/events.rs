//! The runtime's event stream is bounded and says what it drops.

mod common;

use candado::{ChildSpec, EventKind, EventStreamError, Runtime, SupervisorSpec};
use common::*;

#[test]
fn a_subscriber_that_falls_behind_is_told_how_many_events_it_missed() {
    run_paused(|| async {
        let runtime = Runtime::builder()
            .current_thread()
            .event_capacity(4)
            .build()
            .unwrap();
        let mut slow = runtime.subscribe();
        let mut spec = SupervisorSpec::new("root");
        for n in 0..10 {
            spec = spec.child(ChildSpec::worker(format!("w{n}"), Echo::new));
        }
        let root = runtime.start(spec).await.unwrap();
        // Ten starts on a bus of four: the slow subscriber lost six.
        match slow.try_recv() {
            Err(EventStreamError::Lagged(missed)) => assert_eq!(missed, 6),
            other => panic!("{other:?}"),
        }
        // Then it reads on from the oldest event still kept.
        let next = slow.try_recv().unwrap().expect("an event is kept");
        assert!(
            matches!(next.kind, EventKind::ChildStarted { .. }),
            "{next:?}"
        );
        root.shutdown().await;
    });
}
