//! Backoff schedule, its stability reset, and intensity escalation, on virtual time.

mod common;

use std::time::Duration;

use candado::{
    BackoffConfig, ChildSpec, Event, EventKind, EventStream, ExitReason, Runtime, SupervisorRef,
    SupervisorSpec,
};
use common::*;

/// Crashes worker `id` of `sup` and returns the events up to its restart.
async fn crash_until_restarted(
    sup: &SupervisorRef,
    events: &mut EventStream,
    id: &str,
) -> Vec<Event> {
    drain(events);
    sup.worker::<Echo>(id).await.unwrap().do_send(Crash("loop"));
    let mut seen = Vec::new();
    loop {
        let e = events.recv().await.unwrap();
        let done = matches!(&e.kind, EventKind::ChildRestarted { child, .. } if child == id);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

fn scheduled_delay(events: &[Event]) -> u64 {
    events
        .iter()
        .find_map(|e| match e.kind {
            EventKind::RestartScheduled { delay_ms, .. } => Some(delay_ms),
            _ => None,
        })
        .expect("a restart was scheduled")
}

#[test]
fn backoff_doubles_to_its_cap_and_resets_after_the_stability_window() {
    run_paused(|| async {
        let (_runtime, mut events, root) = start_local(
            SupervisorSpec::new("root")
                .intensity(100, Duration::from_secs(60))
                .backoff(BackoffConfig {
                    base: Duration::from_millis(100),
                    cap: Duration::from_secs(1),
                    jitter: 0.0,
                    stability_window: Duration::from_secs(5),
                    ..BackoffConfig::default()
                })
                .child(ChildSpec::worker("w", Echo::new)),
        )
        .await;
        let mut delays = Vec::new();
        for _ in 0..6 {
            let seen = crash_until_restarted(&root, &mut events, "w").await;
            let delay = scheduled_delay(&seen);
            let exited = seen[0].at_ms;
            let restarted = seen.last().unwrap().at_ms;
            assert_eq!(
                restarted - exited,
                delay,
                "restart happens exactly after the delay"
            );
            delays.push(delay);
        }
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(root.children().await.unwrap()[0].backoff_attempt, 6);

        // Stable for the window: the supervisor tick resets the streak.
        advance(Duration::from_secs(6)).await;
        assert_eq!(root.children().await.unwrap()[0].backoff_attempt, 0);
        let seen = crash_until_restarted(&root, &mut events, "w").await;
        assert_eq!(scheduled_delay(&seen), 100);
        root.shutdown().await;
    });
}

#[test]
fn jittered_delays_stay_within_bounds_and_never_shrink() {
    run_paused(|| async {
        let runtime = Runtime::builder()
            .current_thread()
            .rng_seed(42)
            .build()
            .unwrap();
        let mut events = runtime.subscribe();
        let backoff = BackoffConfig {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(800),
            jitter: 0.5,
            stability_window: Duration::from_secs(60),
            ..BackoffConfig::default()
        };
        let root = runtime
            .start(
                SupervisorSpec::new("root")
                    .intensity(100, Duration::from_secs(60))
                    .backoff(backoff)
                    .child(ChildSpec::worker("w", Echo::new)),
            )
            .await
            .unwrap();
        let mut previous = 0;
        for attempt in 0..8 {
            let delay = scheduled_delay(&crash_until_restarted(&root, &mut events, "w").await);
            let raw = backoff.raw_delay(attempt).as_millis() as u64;
            assert!(
                delay <= raw && delay >= raw / 2 && delay >= previous,
                "{attempt}: {delay}"
            );
            previous = delay;
        }
        root.shutdown().await;
    });
}

fn gave_up(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::GaveUp { .. }))
        .map(|e| e.supervisor.clone())
        .collect()
}

fn escalated(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Escalated { .. }))
        .map(|e| e.supervisor.clone())
        .collect()
}

/// Crashes `root/mid/leaf/w` until `leaf` has given up, and returns the events
/// until the tree has settled again (or the root is down).
async fn exhaust_leaf(root: &SupervisorRef, events: &mut EventStream) -> Vec<Event> {
    let leaf = root
        .supervisor("mid")
        .await
        .unwrap()
        .supervisor("leaf")
        .await
        .unwrap();
    // Budget of one restart: the first crash is absorbed...
    crash_until_restarted(&leaf, events, "w").await;
    // ...the second one exceeds it.
    leaf.worker::<Echo>("w")
        .await
        .unwrap()
        .do_send(Crash("again"));
    let mut seen = Vec::new();
    loop {
        let Ok(e) = events.recv().await else {
            return seen;
        };
        let done = match &e.kind {
            EventKind::ChildRestarted { child, .. } => child == "leaf" || child == "mid",
            EventKind::Fatal { .. } => true,
            _ => false,
        };
        seen.push(e);
        if done {
            // Let the rest of the tree come up (or go down) completely.
            advance(Duration::from_secs(1)).await;
            seen.extend(drain(events));
            return seen;
        }
    }
}

#[test]
fn intensity_escalates_through_a_three_level_tree_until_the_root_gives_up() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let mut events = runtime.subscribe();
        let one_in_a_minute = |spec: SupervisorSpec| spec.intensity(1, Duration::from_secs(60));
        let tree = one_in_a_minute(SupervisorSpec::new("root")).child(ChildSpec::supervisor(
            one_in_a_minute(SupervisorSpec::new("mid"))
                .child(ChildSpec::worker("sibling", Echo::new))
                .child(ChildSpec::supervisor(
                    one_in_a_minute(SupervisorSpec::new("leaf"))
                        .child(ChildSpec::worker("w", Echo::new))
                        .child(ChildSpec::worker("w2", Echo::new)),
                )),
        ));
        let root = runtime.start(tree).await.unwrap();

        // Round 1: leaf gives up; mid (budget 1) restarts it.
        let seen = exhaust_leaf(&root, &mut events).await;
        assert_eq!(gave_up(&seen), ["root/mid/leaf"]);
        assert_eq!(escalated(&seen), ["root/mid/leaf"]);
        // leaf stopped its children in reverse start order before escalating.
        let leaf_exits: Vec<_> = exits(&seen)
            .into_iter()
            .filter(|(sup, _)| sup == "root/mid/leaf")
            .map(|(_, c)| c)
            .collect();
        assert_eq!(leaf_exits, ["w", "w2"]);
        let escalation = seen
            .iter()
            .find(|e| e.supervisor == "root/mid" && matches!(e.kind, EventKind::ChildExited { .. }))
            .unwrap();
        assert!(matches!(
            &escalation.kind,
            EventKind::ChildExited { child, reason: ExitReason::Escalated { child: cause, restarts: 2 }, .. }
                if child == "leaf" && cause == "w"
        ));
        let mid = root.supervisor("mid").await.unwrap();
        assert_eq!(mid.children().await.unwrap()[1].restarts, 1);

        // Round 2: leaf gives up again; mid's budget is spent, so mid gives up
        // and root restarts mid (and with it a fresh leaf).
        let seen = exhaust_leaf(&root, &mut events).await;
        assert_eq!(gave_up(&seen), ["root/mid/leaf", "root/mid"]);
        assert_eq!(escalated(&seen), ["root/mid/leaf", "root/mid"]);
        assert_eq!(root.children().await.unwrap()[0].restarts, 1);
        assert!(root.is_running());

        // Rounds 3 and 4: the fresh mid absorbs one, then escalates to root,
        // whose budget is spent: the root gives up and the tree is down.
        exhaust_leaf(&root, &mut events).await;
        let seen = exhaust_leaf(&root, &mut events).await;
        assert_eq!(gave_up(&seen), ["root/mid/leaf", "root/mid", "root"]);
        assert!(seen
            .iter()
            .any(|e| e.supervisor == "root" && matches!(e.kind, EventKind::Fatal { .. })));
        assert_eq!(
            root.join().await,
            ExitReason::Escalated {
                child: "mid".into(),
                restarts: 2
            }
        );
        assert!(!root.is_running());
    });
}
