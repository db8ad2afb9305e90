//! `SupervisorSpec::concurrent_start`: every member of a start is asked to
//! start at once, and the start completes when all have acknowledged.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context};
use candado::{ChildLink, ChildSpec, ChildStatus, EventKind, Strategy, SupervisorSpec};
use common::*;

/// Records, when it starts, how many children had been built by then.
struct Counted {
    _link: ChildLink,
    built: Arc<AtomicU64>,
    seen_at_start: Arc<AtomicU64>,
}

impl actix::Handler<Crash> for Counted {
    type Result = ();
    fn handle(&mut self, msg: Crash, _: &mut Context<Self>) {
        panic!("{}", msg.0);
    }
}

impl Actor for Counted {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.seen_at_start
            .fetch_max(self.built.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

const N: usize = 50;

/// A tree of `N` counted children; returns the spec and, for child 0, how
/// many children were built when it started.
fn spec(concurrent: bool) -> (SupervisorSpec, Arc<AtomicU64>) {
    let built = Arc::new(AtomicU64::new(0));
    let first = Arc::new(AtomicU64::new(0));
    let mut spec = SupervisorSpec::new("root")
        .strategy(Strategy::OneForAll)
        .concurrent_start(concurrent);
    for i in 0..N {
        let (built, first) = (built.clone(), first.clone());
        let unused = Arc::new(AtomicU64::new(0));
        spec = spec.child(ChildSpec::worker(format!("c{i}"), move |link| {
            built.fetch_add(1, Ordering::SeqCst);
            Counted {
                _link: link,
                built: built.clone(),
                seen_at_start: if i == 0 {
                    first.clone()
                } else {
                    unused.clone()
                },
            }
        }));
    }
    (spec, first)
}

#[test]
fn sequential_start_builds_each_child_after_the_previous_one_started() {
    run_paused(|| async {
        let (spec, first) = spec(false);
        let (_rt, _events, root) = start_local(spec).await;
        assert_eq!(first.load(Ordering::SeqCst), 1);
        assert_eq!(root.children().await.unwrap().len(), N);
        root.shutdown().await;
    });
}

#[test]
fn concurrent_start_asks_every_child_at_once_and_waits_for_all() {
    run_paused(|| async {
        let (spec, first) = spec(true);
        let (_rt, mut events, root) = start_local(spec).await;
        // Child 0 ran only after every start had been asked for.
        assert_eq!(first.load(Ordering::SeqCst), N as u64);
        let children = root.children().await.unwrap();
        assert!(children
            .iter()
            .all(|c| c.status == ChildStatus::Running && c.incarnation == 1));
        // A one-for-all restart starts all members concurrently too, and completes.
        drain(&mut events);
        root.worker::<Counted>("c7")
            .await
            .unwrap()
            .do_send(Crash("boom"));
        advance(Duration::from_secs(1)).await;
        let after = root.children().await.unwrap();
        assert!(after
            .iter()
            .all(|c| c.status == ChildStatus::Running && c.incarnation == 2));
        let started = drain(&mut events)
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ChildStarted { .. }))
            .count();
        assert_eq!(started, N);
        root.shutdown().await;
    });
}
