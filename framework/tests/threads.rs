//! A blocked worker thread is retired and its children restarted elsewhere.
//!
//! Supervisors run on the paused test clock, children on real threads. The
//! test never lets the control runtime idle (which would auto-advance virtual
//! time while real threads work): it steps time with `advance` and yields
//! while it waits for real threads. The wall-clock cap only turns a hang into
//! a failure; no assertion depends on wall-clock time.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context};
use candado::{
    ChildLink, ChildSpec, Event, EventKind, EventStream, Liveness, LivenessConfig, Placement,
    Runtime, ShutdownPolicy, SupervisorSpec,
};
use common::*;

/// Spins its thread in `started()` on its first incarnation, until released.
struct Hog {
    spin: bool,
    release: Arc<AtomicBool>,
}

impl Actor for Hog {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        while self.spin && !self.release.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
    }
}

/// Steps virtual time, a second at a time, until `stream` yields an event
/// matching `pred` (at most `steps` seconds).
async fn step_until(stream: &mut EventStream, steps: u32, pred: impl Fn(&Event) -> bool) -> Event {
    for _ in 0..steps {
        step().await;
        while let Ok(Some(e)) = stream.try_recv() {
            if pred(&e) {
                return e;
            }
        }
    }
    panic!("no matching event within {steps} virtual seconds");
}

/// Awaits `fut` without ever letting the runtime idle, so virtual time cannot
/// auto-advance while real threads work.
async fn busy<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let cap = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(value) = polled {
            return value;
        }
        assert!(std::time::Instant::now() < cap, "future never completed");
        tokio::task::yield_now().await;
    }
}

/// Steps virtual time by one second and lets real threads answer.
async fn step() {
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
    std::thread::sleep(Duration::from_millis(5));
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
}

#[test]
fn a_blocked_thread_is_retired_and_its_child_restarts_on_a_healthy_one() {
    run_paused(|| async {
        let runtime = Runtime::builder()
            .control_on_current_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let mut events = runtime.subscribe();
        let release = Arc::new(AtomicBool::new(false));
        let r = release.clone();
        let spec = SupervisorSpec::new("root")
            .health(
                Liveness::new(LivenessConfig {
                    ping_interval: None,
                    ..Default::default()
                })
                .unwrap(),
            )
            .child(
                ChildSpec::worker("hog", move |link: ChildLink| Hog {
                    spin: link.incarnation() == 1,
                    release: r.clone(),
                })
                .shutdown(ShutdownPolicy::Timeout(Duration::ZERO)),
            );
        let root = busy(runtime.start(spec)).await.unwrap();
        // Ten silent seconds: the hog's heartbeats stop and its thread answers no probe.
        let stuck = step_until(&mut events, 12, |e| {
            matches!(e.kind, EventKind::ThreadStuck { .. })
        })
        .await;
        assert!(matches!(
            stuck.kind,
            EventKind::ThreadStuck {
                placement: Placement::Worker(0)
            }
        ));
        assert_eq!(runtime.stuck_threads(), [Placement::Worker(0)]);
        assert_eq!(
            runtime.worker_threads(),
            2,
            "a replacement thread was started"
        );
        assert_eq!(
            runtime.worker_arbiters().len(),
            1,
            "application code is not offered the stuck thread"
        );

        // Liveness restarts the hog; the new incarnation goes to the healthy thread.
        let started = step_until(&mut events, 5, |e| {
            matches!(&e.kind, EventKind::ChildStarted { child, incarnation: 2, .. } if child == "hog")
        })
        .await;
        assert!(matches!(
            started.kind,
            EventKind::ChildStarted {
                placement: Placement::Worker(1),
                ..
            }
        ));

        // When the blocked thread returns, it is back in service.
        release.store(true, Ordering::SeqCst);
        step_until(&mut events, 5, |e| {
            matches!(
                e.kind,
                EventKind::ThreadRecovered {
                    placement: Placement::Worker(0)
                }
            )
        })
        .await;
        assert!(runtime.stuck_threads().is_empty());
        assert_eq!(runtime.worker_arbiters().len(), 2);
        assert_eq!(busy(root.children()).await.unwrap()[0].incarnation, 2);
        drop(root);
        runtime.shutdown().await;
    });
}
