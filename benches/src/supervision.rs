//! The cost of supervision: memory per idle supervised worker, spawn time,
//! and the CPU their heartbeats take. Each measurement is meant to run in a
//! fresh process (the `compare` binary re-runs itself), so freed memory of
//! one measurement never hides the growth of the next.

use std::time::{Duration, Instant};

use actix::{Actor, Addr, Arbiter, Context, Handler, Message};
use candado::{
    ChildLink, ChildSpec, DynamicSpec, Liveness, LivenessConfig, Runtime, SupervisorSpec,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::process;

/// What is spawned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Plain actix actors spread over two arbiters: the actor itself.
    Actix,
    /// Candado workers under one supervisor with liveness heartbeats.
    Supervised,
    /// Children of a dynamic supervisor, each started with `start_child`
    /// ([`DYNAMIC_IN_FLIGHT`] calls in flight), no health strategy.
    Dynamic,
}

/// `start_child` calls in flight while spawning dynamic children: each call
/// waits for its child's start, so one at a time would measure the
/// round trip to a worker thread, not the supervisor.
pub const DYNAMIC_IN_FLIGHT: usize = 1024;

/// One spawn measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpawnReport {
    /// Actors spawned.
    pub count: usize,
    /// Time from the first spawn until every actor is running.
    pub spawn_ms: f64,
    /// Resident memory growth divided by `count`.
    pub bytes_per_actor: f64,
    /// CPU time over the idle window, as a percentage of one core.
    pub idle_cpu_percent: f64,
}

/// An idle worker.
#[derive(Debug)]
pub struct Idle {
    _link: Option<ChildLink>,
}

impl Actor for Idle {
    type Context = Context<Self>;
}

/// Asks an actor to answer once it is running.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Ready;

impl Handler<Ready> for Idle {
    type Result = ();
    fn handle(&mut self, _: Ready, _: &mut Context<Self>) {}
}

/// Spawns `count` actors of `kind` (supervised ones with heartbeats every
/// `heartbeat`), measures the spawn and the memory, then the CPU used while
/// they idle for `idle`.
pub fn spawn(kind: Kind, count: usize, heartbeat: Duration, idle: Duration) -> SpawnReport {
    let system = actix::System::new();
    let report = system.block_on(async move {
        let rss0 = process::rss_bytes();
        let start = Instant::now();
        // Holds what keeps the actors alive until the idle window is over.
        let keep: Box<dyn std::any::Any> = match kind {
            Kind::Actix => {
                let arbiters = [Arbiter::new(), Arbiter::new()];
                let mut last: Vec<Addr<Idle>> = Vec::new();
                let mut all = Vec::with_capacity(count);
                for i in 0..count {
                    let addr =
                        Idle::start_in_arbiter(&arbiters[i % 2].handle(), |_| Idle { _link: None });
                    all.push(addr);
                }
                // Arbiters run their spawns in order: the last ones answering
                // means every actor runs.
                last.extend(all.iter().rev().take(2).cloned());
                for addr in last {
                    addr.send(Ready).await.expect("actor runs");
                }
                Box::new((arbiters, all))
            }
            Kind::Supervised => {
                let runtime = Runtime::builder()
                    .worker_threads(2)
                    .build()
                    .expect("runtime");
                let liveness = Liveness::new(LivenessConfig {
                    heartbeat_interval: Some(heartbeat),
                    heartbeat_timeout: heartbeat * 5,
                    ..LivenessConfig::default()
                })
                .expect("liveness");
                let mut spec = SupervisorSpec::new("workers")
                    .concurrent_start(true)
                    .health(liveness);
                for i in 0..count {
                    spec = spec.child(ChildSpec::worker(format!("w{i}"), |link| Idle {
                        _link: Some(link),
                    }));
                }
                let root = runtime.start(spec).await.expect("tree starts");
                Box::new((runtime, root))
            }
            Kind::Dynamic => {
                let runtime = Runtime::builder()
                    .worker_threads(2)
                    .build()
                    .expect("runtime");
                let dynamic =
                    DynamicSpec::new("dynamic", |link, (): ()| Idle { _link: Some(link) })
                        .start(&runtime)
                        .await
                        .expect("dynamic supervisor starts");
                let started = futures_util::stream::iter(0..count)
                    .map(|_| dynamic.start_child(()))
                    .buffer_unordered(DYNAMIC_IN_FLIGHT)
                    .filter(|r| std::future::ready(r.is_ok()))
                    .count()
                    .await;
                assert_eq!(started, count, "every dynamic child starts");
                assert_eq!(dynamic.count_children(), count);
                Box::new((runtime, dynamic))
            }
        };
        let spawn_ms = start.elapsed().as_secs_f64() * 1e3;
        // Let allocations settle (first heartbeats, timers) before reading.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let bytes_per_actor = process::rss_bytes().saturating_sub(rss0) as f64 / count as f64;
        let cpu0 = process::cpu_time();
        let t0 = Instant::now();
        tokio::time::sleep(idle).await;
        let idle_cpu_percent = process::cpu_time().saturating_sub(cpu0).as_secs_f64()
            / t0.elapsed().as_secs_f64()
            * 100.0;
        drop(keep);
        SpawnReport {
            count,
            spawn_ms,
            bytes_per_actor,
            idle_cpu_percent,
        }
    });
    actix::System::current().stop();
    report
}
