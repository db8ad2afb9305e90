//! kameo with `kameo_actors`' `ActorPool`: N worker actors behind one pool
//! actor, asked with `Dispatch` (least-connections routing inside the pool;
//! the worker's reply is forwarded straight back to the caller).

use std::time::Duration;

use kameo::prelude::*;
use kameo_actors::pool::{ActorPool, Dispatch};

use super::{fan_out, spawned_latency, tokio_runtime};
use crate::Shape;

/// The answering actor.
#[derive(Actor)]
struct Echoer;

impl Message<u64> for Echoer {
    type Reply = u64;

    async fn handle(&mut self, value: u64, _ctx: &mut Context<Self, Self::Reply>) -> u64 {
        crate::work::spin();
        value
    }
}

/// Spawns a pool of `workers` echo actors on the current runtime.
fn spawn_pool(workers: usize) -> ActorRef<ActorPool<Echoer>> {
    ActorPool::spawn(ActorPool::new(workers.max(1), || Echoer::spawn(Echoer)))
}

/// Asks the pool to have a worker echo `value` and awaits the reply.
async fn call(pool: &ActorRef<ActorPool<Echoer>>, value: u64) -> u64 {
    match pool.ask(Dispatch(value)).await {
        Ok(reply) => reply,
        Err(err) => panic!("pool failed to answer: {err}"),
    }
}

/// Stops the pool gracefully and waits for it to end (its workers stop
/// once the pool drops them).
async fn shut_down(pool: ActorRef<ActorPool<Echoer>>) {
    pool.stop_gracefully().await.expect("pool is running");
    pool.wait_for_shutdown().await;
}

/// Runs `shape.total()` no-op request/replies (u64 in, same u64 out) through `shape.workers`
/// actors from `shape.submitters` concurrent submitters, each awaiting its reply before the next
/// request; returns the wall time of the request phase only (not setup/teardown).
///
/// The actors are the workers of one `ActorPool` (the pool routes, so there
/// is no round-robin on the caller side); multi-thread tokio runtime with 2
/// worker threads.
pub fn throughput(shape: Shape) -> Duration {
    let rt = tokio_runtime();
    let elapsed = rt.block_on(async {
        let pool = spawn_pool(shape.workers);
        let caller = pool.clone();
        let elapsed = fan_out(
            shape,
            move |_, _, value| {
                let pool = caller.clone();
                async move { call(&pool, value).await }
            },
            tokio::spawn,
        )
        .await;
        shut_down(pool).await;
        elapsed
    });
    drop(rt);
    elapsed
}

/// [`throughput`] with the submitters on a thread of their own, apart from
/// the pool's runtime: a current-thread runtime of their own, as actix and
/// Candado run their callers on the System arbiter.
pub fn throughput_apart(shape: Shape) -> Duration {
    let rt = tokio_runtime();
    let pool = rt.block_on(async { spawn_pool(shape.workers) });
    let caller = pool.clone();
    let elapsed = super::fan_out_apart(shape, move |_, _, value| {
        let pool = caller.clone();
        async move { call(&pool, value).await }
    });
    rt.block_on(shut_down(pool));
    drop(rt);
    elapsed
}

/// Submit-to-reply latency of `samples` single requests sent one at a time to an idle set of
/// `workers` (after a short warm-up); returns every sample.
///
/// Each request is one `ask(Dispatch(..))` through a pool of `workers`.
pub fn latency(workers: usize, samples: usize) -> Vec<Duration> {
    let rt = tokio_runtime();
    let out = rt.block_on(async {
        let pool = spawn_pool(workers);
        let caller = pool.clone();
        let out = spawned_latency(samples, move |value| {
            let pool = caller.clone();
            async move { call(&pool, value).await }
        })
        .await;
        shut_down(pool).await;
        out
    });
    drop(rt);
    out
}
