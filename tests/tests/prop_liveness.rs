//! Property 5: a child that stops heartbeating is restarted no later than
//! timeout + one tick after its last heartbeat, and a healthy child is never
//! restarted by liveness. Random heartbeat intervals, timeouts, ticks and
//! starvation schedules, on virtual time.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message};
use candado::{
    ChildLink, ChildSpec, EventKind, Liveness, LivenessConfig, Runtime, ShutdownPolicy,
    SupervisorSpec, VerdictKind,
};
use common::{config, run_paused, settle};
use proptest::prelude::*;

struct Child {
    _link: ChildLink,
}

impl Actor for Child {
    type Context = Context<Self>;
}

/// Blocks the child's context (its mailbox and Candado's heartbeat item).
#[derive(Message)]
#[rtype(result = "()")]
struct Starve;

impl Handler<Starve> for Child {
    type Result = ();
    fn handle(&mut self, _: Starve, ctx: &mut Context<Self>) {
        ctx.wait(actix::fut::wrap_future(tokio::time::sleep(
            Duration::from_secs(100_000),
        )));
    }
}

#[derive(Debug, Clone)]
struct Case {
    interval_ms: u64,
    timeout_ms: u64,
    tick_ms: u64,
    children: usize,
    /// (child, starved at ms); each child at most once.
    starves: BTreeMap<usize, u64>,
}

fn case() -> impl Strategy<Value = Case> {
    (100u64..2_000, 2u64..6, 100u64..1_500, 1usize..6)
        .prop_flat_map(|(interval_ms, factor, tick_ms, children)| {
            (
                Just(interval_ms),
                Just(interval_ms * factor + 1),
                Just(tick_ms),
                Just(children),
                prop::collection::btree_map(0..children, 0u64..20_000, 0..=children),
            )
        })
        .prop_map(
            |(interval_ms, timeout_ms, tick_ms, children, starves)| Case {
                interval_ms,
                timeout_ms,
                tick_ms,
                children,
                starves,
            },
        )
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn starved_children_are_restarted_within_the_bound_and_healthy_ones_never(case in case()) {
        let shown = case.clone();
        let problems = run_paused(|| async move {
            let liveness = Liveness::new(LivenessConfig {
                heartbeat_interval: Some(Duration::from_millis(case.interval_ms)),
                heartbeat_timeout: Duration::from_millis(case.timeout_ms),
                ping_interval: None,
                progress_timeout: None,
                ..LivenessConfig::default()
            })
            .unwrap();
            let mut spec = SupervisorSpec::new("r")
                .tick_interval(Duration::from_millis(case.tick_ms))
                .health(liveness);
            for i in 0..case.children {
                spec = spec.child(
                    ChildSpec::worker(format!("c{i}"), |link| Child { _link: link })
                        .shutdown(ShutdownPolicy::Timeout(Duration::ZERO)),
                );
            }
            let runtime = Runtime::builder().current_thread().build().unwrap();
            let mut events = runtime.subscribe();
            let root = runtime.start(spec).await.unwrap();
            let t0 = tokio::time::Instant::now();
            let mut schedule: Vec<(u64, usize)> = case.starves.iter().map(|(c, at)| (*at, *c)).collect();
            schedule.sort();
            let mut starved_at = BTreeMap::new();
            for (at, child) in schedule {
                let now = t0.elapsed().as_millis() as u64;
                tokio::time::sleep(Duration::from_millis(at.saturating_sub(now))).await;
                let addr = root.worker::<Child>(&format!("c{child}")).await.unwrap();
                addr.do_send(Starve);
                settle().await;
                starved_at.insert(format!("c{child}"), t0.elapsed().as_millis() as u64);
            }
            tokio::time::sleep(Duration::from_millis(case.timeout_ms + 5 * case.tick_ms + 1_000)).await;
            settle().await;
            // Event times count from the runtime's creation, the same virtual
            // instant as `t0` (starting the tree takes no virtual time).
            let mut verdicts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            while let Ok(Some(e)) = events.try_recv() {
                if let EventKind::VerdictChanged { strategy, child, verdict: VerdictKind::Restart, .. } = &e.kind {
                    if strategy == "liveness" {
                        verdicts.entry(child.clone()).or_default().push(e.at_ms);
                    }
                }
            }
            let mut problems = Vec::new();
            for i in 0..case.children {
                let child = format!("c{i}");
                let restarts = verdicts.get(&child).cloned().unwrap_or_default();
                match (starved_at.get(&child), restarts.as_slice()) {
                    (None, []) => {}
                    (None, _) => problems.push(format!("healthy {child} was restarted by liveness at {restarts:?}")),
                    (Some(s), []) => problems.push(format!("{child} starved at {s} ms was never restarted")),
                    (Some(&s), [v]) => {
                        // Its last heartbeat was at or before the starvation.
                        let bound = s + case.timeout_ms + case.tick_ms;
                        if *v > bound {
                            problems.push(format!("{child} starved at {s} ms, restart verdict at {v} ms > {bound} ms"));
                        }
                    }
                    (Some(_), many) => problems.push(format!("{child}: liveness restart verdicts at {many:?}")),
                }
            }
            root.shutdown().await;
            problems
        });
        prop_assert!(problems.is_empty(), "{:#?}\n{:#?}", problems, shown);
    }
}
