//! Crashes that must stay a child's own: a panicking `Drop` on the crashed
//! actor, and a panic payload whose own `Drop` panics.
//!
//! A double panic aborts the process, which would take the test harness with
//! it, so each scenario runs in a child process: this binary re-executed with
//! `CANDADO_CRASH_SCENARIO` set. The parent checks the child's exit status.

mod common;

use std::process::Command;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use candado::{ChildLink, ChildSpec, EventKind, ExitReason, Runtime, SupervisorSpec};
use common::*;

const SCENARIO: &str = "CANDADO_CRASH_SCENARIO";

/// A panic payload whose own `Drop` panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's drop panics");
    }
}

/// A worker whose first incarnation panics when dropped, and that panics on
/// `Crash` (with a plain message) or on `Explode` (with a [`Bomb`]).
struct Fragile {
    link: ChildLink,
}

impl Actor for Fragile {
    type Context = Context<Self>;
}

impl Drop for Fragile {
    fn drop(&mut self) {
        if self.link.incarnation() == 1 {
            panic!("the actor's drop panics");
        }
    }
}

impl Handler<Ping> for Fragile {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.link.incarnation()
    }
}

impl Handler<Crash> for Fragile {
    type Result = ();
    fn handle(&mut self, msg: Crash, _: &mut Context<Self>) {
        panic!("{}", msg.0);
    }
}

#[derive(actix::Message)]
#[rtype(result = "()")]
struct Explode;

impl Handler<Explode> for Echo {
    type Result = ();
    fn handle(&mut self, _: Explode, _: &mut Context<Self>) {
        std::panic::panic_any(Bomb);
    }
}

/// Runs `scenario` in a child process and asserts it exited successfully.
fn in_child_process(test: &str, scenario: &str) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, scenario)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "scenario `{scenario}` ended with {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // The child ran the scenario (not the parent's branch again).
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
}

/// Builds a runtime with real worker threads (one, so siblings share it).
async fn start(spec: SupervisorSpec) -> (Runtime, candado::EventStream, candado::SupervisorRef) {
    let runtime = Runtime::builder()
        .control_on_current_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let events = runtime.subscribe();
    let root = runtime.start(spec).await.unwrap();
    (runtime, events, root)
}

async fn restarted(events: &mut candado::EventStream, id: &str) -> ExitReason {
    let wait = async {
        let exit = events
            .wait_for(|e| matches!(&e.kind, EventKind::ChildExited { child, .. } if child == id))
            .await
            .unwrap();
        events
            .wait_for(|e| matches!(&e.kind, EventKind::ChildRestarted { child, .. } if child == id))
            .await
            .unwrap();
        match exit.kind {
            EventKind::ChildExited { reason, .. } => reason,
            _ => unreachable!(),
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("the crashed child is restarted")
}

#[test]
fn a_crashing_actor_whose_drop_panics_is_restarted_without_aborting_the_process() {
    if std::env::var(SCENARIO).as_deref() != Ok("drop") {
        return in_child_process(
            "a_crashing_actor_whose_drop_panics_is_restarted_without_aborting_the_process",
            "drop",
        );
    }
    actix::System::new().block_on(async {
        let spec = SupervisorSpec::new("root")
            .child(ChildSpec::worker("fragile", |link| Fragile { link }))
            .child(ChildSpec::worker("sibling", Echo::new));
        let (_runtime, mut events, root) = start(spec).await;
        let fragile = root.worker::<Fragile>("fragile").await.unwrap();
        fragile.do_send(Crash("boom"));
        let reason = restarted(&mut events, "fragile").await;
        assert!(
            matches!(&reason, ExitReason::Panic(m) if m.starts_with("boom")),
            "{reason:?}"
        );
        let fragile = root.worker::<Fragile>("fragile").await.unwrap();
        assert_eq!(fragile.send(Ping).await.unwrap(), 2);
        let sibling = root.worker::<Echo>("sibling").await.unwrap();
        assert_eq!(sibling.send(Ping).await.unwrap(), 1);
        root.shutdown().await;
    });
}

#[test]
fn a_panic_payload_whose_drop_panics_is_a_crash_like_any_other() {
    if std::env::var(SCENARIO).as_deref() != Ok("payload") {
        return in_child_process(
            "a_panic_payload_whose_drop_panics_is_a_crash_like_any_other",
            "payload",
        );
    }
    actix::System::new().block_on(async {
        let spec = SupervisorSpec::new("root")
            .child(ChildSpec::worker("w", Echo::new))
            .child(ChildSpec::worker("sibling", Echo::new));
        let (_runtime, mut events, root) = start(spec).await;
        root.worker::<Echo>("w").await.unwrap().do_send(Explode);
        let reason = restarted(&mut events, "w").await;
        assert!(matches!(reason, ExitReason::Panic(_)), "{reason:?}");
        // The new incarnation and the sibling on the same thread answer.
        let w = root.worker::<Echo>("w").await.unwrap();
        assert_eq!(w.send(Ping).await.unwrap(), 2);
        let sibling = root.worker::<Echo>("sibling").await.unwrap();
        assert_eq!(sibling.send(Ping).await.unwrap(), 1);
        root.shutdown().await;
    });
}

#[test]
fn a_factory_panic_whose_payload_drop_panics_is_a_failed_start_not_a_wedge() {
    if std::env::var(SCENARIO).as_deref() != Ok("factory") {
        return in_child_process(
            "a_factory_panic_whose_payload_drop_panics_is_a_failed_start_not_a_wedge",
            "factory",
        );
    }
    actix::System::new().block_on(async {
        // The second incarnation's factory panics with a bomb.
        let factory = |link: ChildLink| {
            if link.incarnation() == 2 {
                std::panic::panic_any(Bomb);
            }
            Echo::new(link)
        };
        let spec = SupervisorSpec::new("root").child(ChildSpec::worker("w", factory));
        let (_runtime, mut events, root) = start(spec).await;
        root.worker::<Echo>("w")
            .await
            .unwrap()
            .do_send(Crash("first"));
        let wait = events.wait_for(|e| {
            matches!(
                &e.kind,
                EventKind::ChildExited {
                    reason: ExitReason::StartFailed(_),
                    ..
                }
            )
        });
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("the failed start is reported")
            .unwrap();
        let wait =
            events.wait_for(|e| matches!(&e.kind, EventKind::ChildStarted { incarnation: 3, .. }));
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("and the child is started again")
            .unwrap();
        let w = root.worker::<Echo>("w").await.unwrap();
        assert_eq!(w.send(Ping).await.unwrap(), 3);
        root.shutdown().await;
    });
}
