//! An application's own tree, with its own tests on the test kit.
//!
//! A `Poller` asks an upstream service for news every 10 s and gives up
//! (panics) after three failures in a row; its supervisor restarts it after
//! 1 s, 5 s, then 30 s (the worker-lifecycle audit's schedule; the
//! schedule starts over once an incarnation ran 10 minutes), and gives up
//! itself after five restarts within the hour. The program runs the tree on
//! real time for a moment; the tests at the bottom check the schedule on
//! virtual time, an hour of supervision in milliseconds:
//!
//! Run: `cargo run -p candado-examples --bin tested_tree`
//! Test: `cargo test -p candado-examples --bin tested_tree`

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context};
use candado::{BackoffConfig, BackoffSteps, ChildLink, ChildSpec, Runtime, SupervisorSpec};

/// How often the poller asks the upstream.
const POLL_EVERY: Duration = Duration::from_secs(10);

/// Failures in a row after which a poller gives up.
const GIVE_UP_AFTER: u32 = 3;

/// The upstream, as the poller sees it: `true` when a poll succeeds.
/// Shared, so a test can break and mend it.
#[derive(Debug, Clone, Default)]
struct Upstream {
    broken: Arc<AtomicU32>,
    polls: Arc<AtomicU32>,
}

impl Upstream {
    fn poll(&self) -> bool {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.broken.load(Ordering::SeqCst) == 0
    }
}

/// The application's worker.
struct Poller {
    link: ChildLink,
    upstream: Upstream,
    failures: u32,
}

impl Actor for Poller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(POLL_EVERY, |poller, _| {
            if poller.upstream.poll() {
                poller.failures = 0;
                poller.link.progress(); // a sign of life for liveness
            } else {
                poller.failures += 1;
                assert!(
                    poller.failures < GIVE_UP_AFTER,
                    "upstream failed {GIVE_UP_AFTER} times in a row"
                );
            }
        });
    }
}

/// The application's tree: what `main` runs and what the tests check.
fn tree(upstream: Upstream) -> SupervisorSpec {
    let secs = Duration::from_secs;
    let steps = BackoffSteps::new(&[secs(1), secs(5), secs(30)]).expect("a valid schedule");
    SupervisorSpec::new("news")
        .intensity(5, secs(3_600))
        .backoff(BackoffConfig {
            jitter: 0.0,
            // An incarnation counts as stable (and the schedule starts
            // over) only after 10 minutes: a poller that fails within
            // 30 s of each start is still the same outage.
            stability_window: secs(600),
            ..BackoffConfig::with_steps(steps)
        })
        .child(ChildSpec::worker("poller", move |link| Poller {
            link,
            upstream: upstream.clone(),
            failures: 0,
        }))
}

fn main() -> anyhow::Result<()> {
    Runtime::builder().worker_threads(1).run(async |runtime| {
        let upstream = Upstream::default();
        let root = runtime.start(tree(upstream.clone())).await?;
        let children = root.children().await?;
        println!(
            "started {} with {} child: {}",
            root.path(),
            children.len(),
            children[0].id
        );
        println!("its schedule is tested on virtual time: cargo test -p candado-examples --bin tested_tree");
        root.shutdown().await;
        println!("stopped");
        anyhow::Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candado::testkit::{self, EventRecorder};
    use candado::{EventKind, ExitReason};

    /// Three failed polls (30 s) end an incarnation; it comes back after
    /// 1 s, then 5 s, then 30 s; the sixth failure in the hour ends the
    /// tree.
    #[test]
    fn a_broken_upstream_restarts_the_poller_on_the_audit_schedule_then_gives_up() {
        testkit::run_paused(|| async {
            let upstream = Upstream::default();
            upstream.broken.store(1, Ordering::SeqCst);
            let (runtime, events, root) = testkit::start_local(tree(upstream.clone())).await;
            let mut events = EventRecorder::new(events);
            let mut gaps = Vec::new();
            loop {
                let exit = events
                    .wait_for(Duration::from_secs(600), |e| {
                        matches!(e.kind, EventKind::ChildExited { .. })
                    })
                    .await
                    .expect("the poller gives up within 10 minutes");
                let exited_at = tokio::time::Instant::now();
                let restarted = events
                    .wait_for(Duration::from_secs(600), |e| {
                        matches!(e.kind, EventKind::ChildRestarted { .. })
                    })
                    .await;
                if restarted.is_err() {
                    assert!(matches!(
                        exit.kind,
                        EventKind::ChildExited {
                            reason: ExitReason::Panic(_),
                            ..
                        }
                    ));
                    break;
                }
                gaps.push(exited_at.elapsed().as_secs());
            }
            assert_eq!(gaps, [1, 5, 30, 30, 30]);
            assert!(matches!(root.join().await, ExitReason::Escalated { .. }));
            // Each incarnation polled three times before giving up.
            assert_eq!(upstream.polls.load(Ordering::SeqCst), 6 * GIVE_UP_AFTER);
            runtime.shutdown().await;
        });
    }

    /// A mended upstream keeps the poller's count of failures at zero: two
    /// failures, then a success, then two more do not end it.
    #[test]
    fn failures_that_are_not_in_a_row_do_not_end_the_poller() {
        testkit::run_paused(|| async {
            let upstream = Upstream::default();
            let (runtime, events, _root) = testkit::start_local(tree(upstream.clone())).await;
            let mut events = EventRecorder::new(events);
            for broken in [1, 1, 0, 1, 1, 0] {
                upstream.broken.store(broken, Ordering::SeqCst);
                testkit::advance(POLL_EVERY).await;
            }
            assert_eq!(upstream.polls.load(Ordering::SeqCst), 6);
            assert!(events
                .drain()
                .iter()
                .all(|e| !matches!(e.kind, EventKind::ChildExited { .. })));
            runtime.shutdown().await;
        });
    }
}
