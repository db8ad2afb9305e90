//! The same no-op request/reply shapes on Candado's peers. Every function
//! builds its own runtime, runs, and tears it down before returning.
//!
//! Each peer module exposes the same two functions, `throughput(shape)` and
//! `latency(workers, samples)`, so the `compare` binary can drive them alike
//! (except `apalis_pg`, the durable queue's peer: see [`crate::durable`]).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::Shape;

pub mod actix_rr;
pub mod apalis_pg;
pub mod kameo_pool;
pub mod procspawn_pool;
pub mod ractor_factory;
pub mod tokio_mpsc;

/// Untimed request/replies sent before the latency samples are taken.
pub(crate) const WARMUP: usize = 200;

/// Worker threads of the multi-thread tokio runtimes the peers run on.
pub(crate) const RUNTIME_THREADS: usize = 2;

/// Builds the multi-thread tokio runtime (2 worker threads) the tokio-based
/// peers run on.
pub(crate) fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .enable_all()
        .build()
        .expect("build the tokio runtime")
}

/// The worker request `n` of submitter `submitter` goes to: each submitter
/// walks the workers round-robin, starting at its own offset so the
/// submitters spread evenly without sharing a counter.
pub(crate) fn worker_for(submitter: usize, n: usize, workers: usize) -> usize {
    (submitter + n) % workers
}

/// Sends [`WARMUP`] untimed requests, then `samples` timed ones, one at a
/// time through `call` (which routes request `i` round-robin itself), and
/// returns the submit-to-reply time of each timed one. Every reply is
/// checked against its request.
pub(crate) async fn sample_latency<F, Fut>(samples: usize, mut call: F) -> Vec<Duration>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    for i in 0..WARMUP as u64 {
        assert_eq!(call(i).await, i);
    }
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let value = (WARMUP + i) as u64;
        let start = Instant::now();
        let reply = call(value).await;
        out.push(start.elapsed());
        assert_eq!(reply, value);
    }
    out
}

/// [`sample_latency`] from a task spawned on the current tokio runtime, like
/// the throughput submitters.
pub(crate) async fn spawned_latency<F, Fut>(samples: usize, call: F) -> Vec<Duration>
where
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    tokio::spawn(sample_latency(samples, call))
        .await
        .expect("latency caller ended cleanly")
}

/// [`fan_out`] with the submitters on a thread of their own (a
/// current-thread tokio runtime built here), apart from the runtime the
/// actors run on: the arrangement actix and Candado are measured in (callers
/// on the System arbiter, actors on worker threads), for the tokio-based
/// peers.
pub(crate) fn fan_out_apart<C, Fut>(shape: Shape, call: C) -> Duration
where
    C: Fn(usize, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let callers = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build the callers' runtime");
    callers.block_on(fan_out(shape, call, tokio::spawn))
}

/// A submitter's work, boxed so every peer can spawn it its own way.
pub(crate) type Share = Pin<Box<dyn Future<Output = usize> + Send>>;

/// Runs `shape`'s submitters, each spawned with `spawn` and sending its
/// share of requests one at a time through `call(submitter, n, value)`.
/// Checks every reply and that all `shape.total()` were answered; returns
/// the wall time of the request phase only.
pub(crate) async fn fan_out<C, Fut, S, J, E>(shape: Shape, call: C, spawn: S) -> Duration
where
    C: Fn(usize, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = u64> + Send,
    S: Fn(Share) -> J,
    J: Future<Output = Result<usize, E>>,
    E: std::fmt::Debug,
{
    let per_submitter = shape.per_submitter();
    let start = Instant::now();
    let submitters: Vec<J> = (0..shape.submitters.max(1))
        .map(|s| {
            let call = call.clone();
            spawn(Box::pin(async move {
                for n in 0..per_submitter {
                    let value = (s * per_submitter + n) as u64;
                    assert_eq!(call(s, n, value).await, value);
                }
                per_submitter
            }))
        })
        .collect();
    let mut answered = 0;
    for submitter in submitters {
        answered += submitter.await.expect("submitter ended cleanly");
    }
    let elapsed = start.elapsed();
    assert_eq!(answered, shape.total());
    elapsed
}
