//! A scripted pool on a current-thread runtime.

use std::sync::{Arc, Mutex};

use candado::Runtime;

use super::ScriptedHandler;
use crate::{Pool, PoolBuilder, PoolConfig, PoolEvent, PoolEvents, RetryConfig, TaskId};

/// A [`ScriptedHandler`] pool on a single-threaded runtime (deterministic
/// on virtual time).
#[derive(Debug)]
pub struct PoolHarness {
    /// The runtime the pool runs on (the current thread).
    pub runtime: Runtime,
    /// The pool.
    pub pool: Pool<ScriptedHandler>,
    /// Tags of the `Work` jobs, in start order.
    pub log: Arc<Mutex<Vec<u64>>>,
    /// Events subscribed before the first task.
    pub events: PoolEvents,
}

/// Starts a scripted pool with `config`.
///
/// # Panics
/// If the pool does not start (a bad `config`): the test's failure.
pub async fn start(config: PoolConfig) -> PoolHarness {
    start_with(config, None).await
}

/// Like [`start`], with per-worker capabilities.
///
/// # Panics
/// If the pool does not start (a bad `config`): the test's failure.
pub async fn start_with(
    config: PoolConfig,
    capabilities: Option<fn(usize) -> Vec<String>>,
) -> PoolHarness {
    let runtime = candado::testkit::local_runtime();
    let handler = ScriptedHandler::default();
    let log = handler.log.clone();
    let mut builder = PoolBuilder::new(move || handler.clone()).config(config);
    if let Some(f) = capabilities {
        builder = builder.capabilities_for(f);
    }
    let pool = builder.start(&runtime).await.expect("the test pool starts");
    let events = pool.subscribe();
    PoolHarness {
        runtime,
        pool,
        log,
        events,
    }
}

/// A config of `size` workers with quick retries and no jitter.
pub fn config(size: usize) -> PoolConfig {
    PoolConfig {
        name: "pool".into(),
        size,
        retry: RetryConfig {
            jitter: 0.0,
            ..RetryConfig::default()
        },
        ..PoolConfig::default()
    }
}

/// Every event queued on `events`.
///
/// # Panics
/// If the subscriber lagged or the pool is gone: a test that overruns the
/// event buffer cannot trust what it sees.
pub fn drain(events: &mut PoolEvents) -> Vec<PoolEvent> {
    let mut out = Vec::new();
    loop {
        match events.try_recv() {
            Ok(Some(e)) => out.push(e),
            Ok(None) => return out,
            Err(e) => panic!("the test's subscriber: {e}"),
        }
    }
}

/// `(task, worker)` of every completion, in order.
pub fn completions(events: &[PoolEvent]) -> Vec<(TaskId, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            PoolEvent::TaskCompleted { id, worker, .. } => Some((*id, worker.clone())),
            _ => None,
        })
        .collect()
}
