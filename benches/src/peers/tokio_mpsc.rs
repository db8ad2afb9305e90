//! The practical floor: plain tokio tasks, each owning an `mpsc` receiver,
//! answering requests that carry a `oneshot::Sender` for the reply.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{fan_out, spawned_latency, tokio_runtime, worker_for};
use crate::Shape;

/// Capacity of each worker's channel (bounded, like an actor mailbox).
const MAILBOX: usize = 1024;

/// A request: the value to echo and where to send it back.
type Request = (u64, oneshot::Sender<u64>);

/// Spawns `workers` echo tasks on the current runtime; returns their senders
/// and join handles.
fn spawn_workers(workers: usize) -> (Vec<mpsc::Sender<Request>>, Vec<tokio::task::JoinHandle<()>>) {
    (0..workers.max(1))
        .map(|_| {
            let (tx, mut rx) = mpsc::channel::<Request>(MAILBOX);
            let handle = tokio::spawn(async move {
                while let Some((value, reply)) = rx.recv().await {
                    crate::work::spin();
                    let _ = reply.send(value);
                }
            });
            (tx, handle)
        })
        .unzip()
}

/// Sends `value` to `worker` and awaits the reply.
async fn call(worker: &mpsc::Sender<Request>, value: u64) -> u64 {
    let (tx, rx) = oneshot::channel();
    worker
        .send((value, tx))
        .await
        .expect("worker task is running");
    rx.await.expect("worker replied")
}

/// Drops the senders so the worker tasks end, and waits for them.
async fn shut_down(senders: Vec<mpsc::Sender<Request>>, handles: Vec<tokio::task::JoinHandle<()>>) {
    drop(senders);
    for handle in handles {
        handle.await.expect("worker task ended cleanly");
    }
}

/// Runs `shape.total()` no-op request/replies (u64 in, same u64 out) through `shape.workers`
/// actors from `shape.submitters` concurrent submitters, each awaiting its reply before the next
/// request; returns the wall time of the request phase only (not setup/teardown).
///
/// Here the "actors" are tokio tasks each owning an `mpsc` receiver, on a
/// multi-thread tokio runtime with 2 worker threads.
pub fn throughput(shape: Shape) -> Duration {
    let rt = tokio_runtime();
    let elapsed = rt.block_on(async {
        let (senders, handles) = spawn_workers(shape.workers);
        let workers = std::sync::Arc::new(senders);
        let shared = workers.clone();
        let elapsed = fan_out(
            shape,
            move |s, n, value| {
                let worker = shared[worker_for(s, n, shared.len())].clone();
                async move { call(&worker, value).await }
            },
            tokio::spawn,
        )
        .await;
        let senders = std::sync::Arc::try_unwrap(workers).expect("submitters are done");
        shut_down(senders, handles).await;
        elapsed
    });
    drop(rt);
    elapsed
}

/// Submit-to-reply latency of `samples` single requests sent one at a time to an idle set of
/// `workers` (after a short warm-up); returns every sample.
///
/// Requests go round-robin over `workers` tokio tasks; the caller is itself
/// a task on the same 2-thread runtime.
pub fn latency(workers: usize, samples: usize) -> Vec<Duration> {
    let rt = tokio_runtime();
    let out = rt.block_on(async {
        let (senders, handles) = spawn_workers(workers);
        // Run the caller as a spawned task, like the throughput submitters.
        let callers = senders.clone();
        let mut next = 0usize;
        let out = spawned_latency(samples, move |value| {
            let worker = callers[next % callers.len()].clone();
            next += 1;
            async move { call(&worker, value).await }
        })
        .await;
        shut_down(senders, handles).await;
        out
    });
    drop(rt);
    out
}
