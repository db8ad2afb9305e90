//! A pool under faults: tasks that succeed, fail until cured, hold until
//! let go, or crash their worker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candado::Runtime;
use candado_pool::{Pool, PoolBuilder, PoolConfig, RetryConfig, TaskContext, TaskHandler, TaskId};
use tokio::sync::Notify;

use super::BOUND;

/// What a task does.
#[derive(Debug, Clone)]
pub enum Chore {
    Work,
    /// Fails until the pool's `cured` flag is set.
    Poison,
    /// Says it started, then waits until let go.
    Hold {
        started: Arc<Notify>,
        gate: Arc<Notify>,
    },
    /// Panics its worker on the first attempt (the worker restarts).
    Crash,
}

pub struct Chores {
    cured: Arc<AtomicBool>,
}

impl TaskHandler for Chores {
    type Task = Chore;
    type Output = ();
    type Error = String;

    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        chore: Chore,
        ctx: TaskContext,
    ) -> impl std::future::Future<Output = Result<(), String>> + 'static {
        if matches!(chore, Chore::Crash) && ctx.attempt() == 1 {
            panic!("the worker crashes");
        }
        let cured = self.cured.load(Ordering::SeqCst);
        async move {
            match chore {
                Chore::Poison if !cured => Err("poisoned".into()),
                Chore::Hold { started, gate } => {
                    started.notify_one();
                    gate.notified().await;
                    Ok(())
                }
                _ => Ok(()),
            }
        }
    }
}

/// Starts pool `name` of `size` workers: one retry after 1 ms, so a
/// poisoned task is dead-lettered after two attempts.
pub async fn start_pool(
    runtime: &Runtime,
    name: &str,
    size: usize,
    cured: &Arc<AtomicBool>,
) -> Pool<Chores> {
    let cured = cured.clone();
    PoolBuilder::new(move || Chores {
        cured: cured.clone(),
    })
    .config(PoolConfig {
        name: name.into(),
        size,
        retry: RetryConfig {
            max_retries: 1,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(1),
            jitter: 0.0,
            ..Default::default()
        },
        ..PoolConfig::default()
    })
    .start(runtime)
    .await
    .expect("the pool starts")
}

/// Submits a poisoned task and waits until it is dead-lettered; its id.
pub async fn dead_letter(pool: &Pool<Chores>) -> TaskId {
    let handle = pool.submit(Chore::Poison).expect("submitted");
    let id = handle.id();
    let outcome = tokio::time::timeout(BOUND, handle)
        .await
        .expect("the poisoned task ends in time");
    assert!(outcome.is_err(), "a poisoned task is dead-lettered");
    id
}

/// Waits (bounded) until `check` holds of the pool, polling its API.
pub async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    super::within(what, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}
