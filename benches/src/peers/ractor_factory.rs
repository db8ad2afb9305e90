//! ractor's factory: N workers behind `routing::QueuerRouting` with a
//! `queues::DefaultQueue`; each request is a job carrying an `RpcReplyPort`
//! the worker answers on, sent with `FactoryRef::call_job`.

use std::time::Duration;

use ractor::factory::{
    queues::DefaultQueue, routing::QueuerRouting, worker_builder, Factory, FactoryArguments,
    FactoryRef, Job, Worker, WorkerId,
};
use ractor::{Actor, ActorProcessingErr, RpcReplyPort};

use super::{fan_out, spawned_latency, tokio_runtime};
use crate::Shape;

/// The job payload: the value to echo and the port to answer on.
struct Echo(u64, RpcReplyPort<u64>);

/// The factory's worker: answers every job with its value.
struct Echoer;

impl Worker for Echoer {
    type Key = ();
    type Message = Echo;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _wid: WorkerId,
        _factory: &FactoryRef<(), Echo>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &FactoryRef<(), Echo>,
        Job { msg, key, .. }: Job<(), Echo>,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let Echo(value, reply) = msg;
        crate::work::spin();
        let _ = reply.send(value);
        Ok(key)
    }
}

/// The factory type: unit keys, queuer routing, default (FIFO) queue.
type EchoFactory = Factory<(), Echo, (), Echoer, QueuerRouting<(), Echo>, DefaultQueue<(), Echo>>;

/// Spawns a factory with `workers` workers on the current runtime.
async fn spawn_factory(
    workers: usize,
) -> (FactoryRef<(), Echo>, ractor::concurrency::JoinHandle<()>) {
    let args = FactoryArguments::builder()
        .worker_builder(Box::new(worker_builder(|_wid| (Echoer, ()))))
        .queue(DefaultQueue::default())
        .router(QueuerRouting::default())
        .num_initial_workers(workers.max(1))
        .build();
    Actor::spawn(None, EchoFactory::default(), args)
        .await
        .expect("factory started")
}

/// Sends `value` as a job through `factory` and awaits the worker's reply.
async fn call(factory: &FactoryRef<(), Echo>, value: u64) -> u64 {
    factory
        .call_job((), |reply| Echo(value, reply), None)
        .await
        .expect("factory is running")
        .expect("worker replied")
}

/// Stops the factory (and with it its workers) and waits for it to end.
async fn shut_down(factory: FactoryRef<(), Echo>, handle: ractor::concurrency::JoinHandle<()>) {
    factory
        .stop_and_wait(None, None)
        .await
        .expect("factory stopped");
    handle.await.expect("factory task ended cleanly");
}

/// Runs `shape.total()` no-op request/replies (u64 in, same u64 out) through `shape.workers`
/// actors from `shape.submitters` concurrent submitters, each awaiting its reply before the next
/// request; returns the wall time of the request phase only (not setup/teardown).
///
/// The actors are the workers of one ractor factory (the factory routes, so
/// there is no round-robin on the caller side); multi-thread tokio runtime
/// with 2 worker threads.
pub fn throughput(shape: Shape) -> Duration {
    let rt = tokio_runtime();
    let elapsed = rt.block_on(async {
        let (factory, handle) = spawn_factory(shape.workers).await;
        let caller = factory.clone();
        let elapsed = fan_out(
            shape,
            move |_, _, value| {
                let factory = caller.clone();
                async move { call(&factory, value).await }
            },
            tokio::spawn,
        )
        .await;
        shut_down(factory, handle).await;
        elapsed
    });
    drop(rt);
    elapsed
}

/// [`throughput`] with the submitters on a thread of their own, apart from
/// the factory's runtime: a current-thread runtime of their own, as actix
/// and Candado run their callers on the System arbiter.
pub fn throughput_apart(shape: Shape) -> Duration {
    let rt = tokio_runtime();
    let (factory, handle) = rt.block_on(spawn_factory(shape.workers));
    let caller = factory.clone();
    let elapsed = super::fan_out_apart(shape, move |_, _, value| {
        let factory = caller.clone();
        async move { call(&factory, value).await }
    });
    rt.block_on(shut_down(factory, handle));
    drop(rt);
    elapsed
}

/// Submit-to-reply latency of `samples` single requests sent one at a time to an idle set of
/// `workers` (after a short warm-up); returns every sample.
///
/// Each request is one `call_job` through a factory of `workers` workers.
pub fn latency(workers: usize, samples: usize) -> Vec<Duration> {
    let rt = tokio_runtime();
    let out = rt.block_on(async {
        let (factory, handle) = spawn_factory(workers).await;
        let caller = factory.clone();
        let out = spawned_latency(samples, move |value| {
            let factory = caller.clone();
            async move { call(&factory, value).await }
        })
        .await;
        shut_down(factory, handle).await;
        out
    });
    drop(rt);
    out
}
