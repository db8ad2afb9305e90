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
        // One thread too many: the empty one is folded back, the configured one serves.
        step_until(&mut events, 5, |e| {
            matches!(
                e.kind,
                EventKind::ThreadStopped {
                    placement: Placement::Worker(0)
                }
            )
        })
        .await;
        assert_eq!(runtime.worker_threads(), 1);
        assert_eq!(runtime.worker_arbiters().len(), 1);
        assert_eq!(busy(root.children()).await.unwrap()[0].incarnation, 2);
        drop(root);
        runtime.shutdown().await;
    });
}

/// Spins its thread in a handler until the flag it carries is set.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct Block(Arc<AtomicBool>);

impl actix::Handler<Block> for Hog {
    type Result = ();
    fn handle(&mut self, msg: Block, _: &mut Context<Self>) {
        while !msg.0.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
    }
}

impl actix::Handler<Ping> for Hog {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        0
    }
}

/// The next event matching `pred`, waited for on the real clock (a cap that
/// only turns a hang into a failure).
async fn real_wait(stream: &mut EventStream, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    tokio::time::timeout(Duration::from_secs(30), stream.wait_for(pred))
        .await
        .unwrap_or_else(|_| panic!("no {what} within 30 s"))
        .unwrap()
}

#[test]
fn a_recovered_thread_is_folded_back_and_the_count_returns_to_the_configured_size() {
    // Real time throughout: heartbeats, probes and the supervisor's ticks
    // all run on real clocks, so a blocked thread is what it seems.
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(2).build().unwrap();
        let mut events = runtime.subscribe();
        let never = Arc::new(AtomicBool::new(false));
        let spec = SupervisorSpec::new("root")
            .tick_interval(Duration::from_millis(100))
            .intensity(100, Duration::from_secs(60))
            .health(
                Liveness::new(LivenessConfig {
                    heartbeat_interval: Some(Duration::from_millis(100)),
                    heartbeat_timeout: Duration::from_secs(1),
                    ping_interval: None,
                    ..Default::default()
                })
                .unwrap(),
            )
            .heal_limit(candado::HealLimit {
                min_gap: Duration::ZERO,
                max: 100,
                ..Default::default()
            })
            .child(
                ChildSpec::worker("hog", move |_| Hog {
                    spin: false,
                    release: never.clone(),
                })
                .shutdown(ShutdownPolicy::Timeout(Duration::ZERO)),
            );
        let root = runtime.start(spec).await.unwrap();
        assert_eq!(runtime.worker_threads(), 2);
        // Block, retire, recover: three times over, the count comes back.
        for round in 0..3 {
            let release = Arc::new(AtomicBool::new(false));
            let hog = root.worker::<Hog>("hog").await.unwrap();
            hog.do_send(Block(release.clone()));
            // Retired and restarted elsewhere, in either order.
            let (mut stuck, mut restarted) = (false, false);
            while !(stuck && restarted) {
                let e = real_wait(&mut events, "thread_stuck and hog restart", |e| {
                    matches!(&e.kind, EventKind::ThreadStuck { .. })
                        || matches!(&e.kind, EventKind::ChildRestarted { child, .. } if child == "hog")
                })
                .await;
                stuck |= matches!(e.kind, EventKind::ThreadStuck { .. });
                restarted |= matches!(e.kind, EventKind::ChildRestarted { .. });
            }
            assert_eq!(runtime.worker_threads(), 3, "round {round}: replaced");
            release.store(true, Ordering::SeqCst);
            real_wait(&mut events, "thread_recovered", |e| {
                matches!(e.kind, EventKind::ThreadRecovered { .. })
            })
            .await;
            // One thread too many in service: an empty one (the recovered
            // thread's child was restarted elsewhere) is stopped at once.
            let stopped = real_wait(&mut events, "thread_stopped", |e| {
                matches!(e.kind, EventKind::ThreadStopped { .. })
            })
            .await;
            let EventKind::ThreadStopped { placement } = stopped.kind else {
                unreachable!()
            };
            assert_eq!(runtime.worker_threads(), 2, "round {round}: folded back");
            assert_eq!(runtime.worker_arbiters().len(), 2);
            assert!(runtime.stuck_threads().is_empty());
            // The restarted hog is supervised, not on the stopped thread.
            let hog = root.worker::<Hog>("hog").await.unwrap();
            assert_eq!(hog.send(Ping).await.unwrap(), 0);
            let info = root.children().await.unwrap();
            assert_ne!(info[0].placement, Some(placement));
        }
        drop(root);
        runtime.shutdown().await;
    });
}
