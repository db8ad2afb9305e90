//! Raw actix request/reply (`addr.send(msg).await`) to N actors spread over
//! two extra arbiters, with the submitters on the System arbiter: the same
//! placement Candado uses (workers on worker threads, callers elsewhere).

use std::time::Duration;

use actix::{Actor, Addr, Arbiter, Context, Handler, Message, System};

use super::{fan_out, sample_latency, worker_for};
use crate::Shape;

/// Arbiters (threads) the echo actors are spread over.
const ARBITERS: usize = 2;

/// The no-op request: answered with the same value.
struct Echo(u64);

impl Message for Echo {
    type Result = u64;
}

/// The answering actor.
struct Echoer;

impl Actor for Echoer {
    type Context = Context<Self>;
}

impl Handler<Echo> for Echoer {
    type Result = u64;

    fn handle(&mut self, Echo(value): Echo, _ctx: &mut Context<Self>) -> u64 {
        crate::work::spin();
        value
    }
}

/// Starts `workers` echo actors round-robin over `arbiters`.
fn start_workers(arbiters: &[Arbiter], workers: usize) -> Vec<Addr<Echoer>> {
    (0..workers.max(1))
        .map(|i| Echoer::start_in_arbiter(&arbiters[i % arbiters.len()].handle(), |_| Echoer))
        .collect()
}

/// Sends `value` to `worker` and awaits the reply.
async fn call(worker: &Addr<Echoer>, value: u64) -> u64 {
    worker
        .send(Echo(value))
        .await
        .expect("echo actor is running")
}

/// Builds a System with [`ARBITERS`] extra arbiters, runs `body` on the
/// System arbiter with them, then stops and joins the arbiters and stops the
/// System before returning `body`'s output.
fn with_system<T, F, Fut>(body: F) -> T
where
    F: FnOnce(Vec<Arbiter>) -> Fut,
    Fut: std::future::Future<Output = (T, Vec<Arbiter>)>,
{
    let system = System::new();
    let (out, arbiters) = system.block_on(async {
        let arbiters = (0..ARBITERS).map(|_| Arbiter::new()).collect();
        body(arbiters).await
    });
    for arbiter in arbiters {
        arbiter.stop();
        arbiter.join().expect("arbiter thread ended cleanly");
    }
    System::current().stop();
    system.run().expect("actix System stopped cleanly");
    out
}

/// Runs `shape.total()` no-op request/replies (u64 in, same u64 out) through `shape.workers`
/// actors from `shape.submitters` concurrent submitters, each awaiting its reply before the next
/// request; returns the wall time of the request phase only (not setup/teardown).
///
/// The actors live on 2 extra `actix::Arbiter`s (round-robin), the
/// submitters are local tasks on the System arbiter.
pub fn throughput(shape: Shape) -> Duration {
    with_system(|arbiters| async move {
        let workers = start_workers(&arbiters, shape.workers);
        let shared = std::sync::Arc::new(workers);
        let elapsed = fan_out(
            shape,
            move |s, n, value| {
                let worker = shared[worker_for(s, n, shared.len())].clone();
                async move { call(&worker, value).await }
            },
            actix::spawn,
        )
        .await;
        (elapsed, arbiters)
    })
}

/// Submit-to-reply latency of `samples` single requests sent one at a time to an idle set of
/// `workers` (after a short warm-up); returns every sample.
///
/// The actors live on 2 extra arbiters (round-robin); the caller runs on the
/// System arbiter.
pub fn latency(workers: usize, samples: usize) -> Vec<Duration> {
    with_system(|arbiters| async move {
        let workers = start_workers(&arbiters, workers);
        let mut next = 0usize;
        let out = sample_latency(samples, |value| {
            let worker = workers[next % workers.len()].clone();
            next += 1;
            async move { call(&worker, value).await }
        })
        .await;
        (out, arbiters)
    })
}
