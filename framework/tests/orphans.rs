//! A child supervisor killed after its shutdown timeout takes its children
//! with it, and nothing restarts beside a previous incarnation still alive.
//! On virtual time.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candado::testkit::MockHandle;
use candado::{BackoffConfig, ChildSpec, EventKind, ShutdownPolicy, Strategy, SupervisorSpec};
use common::*;

/// Starts of the stubborn worker, the most incarnations alive at once (as
/// seen when one starts), and `stopped()` calls.
#[derive(Default)]
struct Census {
    alive: AtomicI64,
    most: AtomicI64,
    /// Counts `stopped()` calls of the incarnations it made.
    stops: MockHandle,
}

#[test]
fn a_killed_child_supervisor_takes_its_stubborn_workers_with_it_and_no_copy_overlaps() {
    run_paused(|| async {
        let census = Arc::new(Census::default());
        let counted = census.clone();
        let worker = ChildSpec::worker("w", move |link| {
            let started = counted.alive.fetch_add(1, Ordering::SeqCst) + 1;
            let alive = started - counted.stops.stops() as i64;
            counted.most.fetch_max(alive, Ordering::SeqCst);
            counted.stops.child(link).stubborn()
        })
        // Longer than its supervisor gets: the kill deadline lives in `sub`.
        .shutdown(ShutdownPolicy::Timeout(Duration::from_secs(10)));
        let sub = ChildSpec::supervisor(SupervisorSpec::new("sub").child(worker))
            .shutdown(ShutdownPolicy::Timeout(Duration::from_secs(1)));
        let spec = SupervisorSpec::new("root")
            .strategy(Strategy::OneForAll)
            .backoff(BackoffConfig {
                base: Duration::ZERO,
                jitter: 0.0,
                ..Default::default()
            })
            .child(sub)
            .child(ChildSpec::worker("x", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        let stopped = census.stops.clone();
        // Each incarnation's `stopped()` runs once it is gone: one alive per start.
        let alive = |c: &Census| c.alive.load(Ordering::SeqCst) - c.stops.stops() as i64;
        assert_eq!(alive(&census), 1);

        // `x` fails: one-for-all stops `sub` (1 s), which asks `w` to stop (10 s).
        root.worker::<Echo>("x")
            .await
            .unwrap()
            .do_send(Crash("x fails"));
        events
            .wait_for(
                |e| matches!(&e.kind, EventKind::ChildRestarted { child, .. } if child == "x"),
            )
            .await
            .unwrap();
        settle().await;
        assert_eq!(stopped.stops(), 1, "the old `w` is gone");
        assert_eq!(alive(&census), 1, "one `w` runs, the new one");
        assert_eq!(census.most.load(Ordering::SeqCst), 1, "never two at once");

        // Long after: still one, and it is the new incarnation of `sub`'s `w`.
        advance(Duration::from_secs(60)).await;
        assert_eq!(alive(&census), 1);
        let sub = root.supervisor("sub").await.unwrap();
        assert_eq!(sub.children().await.unwrap()[0].incarnation, 1);
        assert_eq!(root.children().await.unwrap()[0].incarnation, 2);
        root.shutdown().await;
    });
}
