//! A node's reports of its attempts' ends to the store: the completions
//! that finished meanwhile in one statement, failures and hand-backs one
//! by one, each fenced on its attempt; then the shared breakers.

use candado_pool::{Pool, TaskFailure, TaskHandler};
use serde::Serialize;

use crate::node::{survive, Finished};
use crate::{Claimed, Completion, NodeConfig, NodeReport, PgStore, StoreError};

/// Reports the ends of `finished` attempts, fenced on each attempt: the
/// completions in one statement, the rest one by one. A failed report is
/// logged and counted; its task's lease expires and it is rescued.
pub(crate) async fn settle_all<H>(
    store: &PgStore,
    pool: &Pool<H>,
    config: &NodeConfig,
    finished: Vec<Finished<H>>,
    report: &mut NodeReport,
) where
    H: TaskHandler,
    H::Output: Serialize,
{
    let mut completions = Vec::new();
    let mut dependencies = Vec::new();
    for (task, result) in finished {
        match result {
            Ok(output) => {
                dependencies.extend(task.dependency.clone());
                completions.push(Completion {
                    id: task.id,
                    attempt: task.attempt,
                    output,
                });
            }
            failed => {
                let settled = settle(store, pool, config, &task, failed, report).await;
                survive(settled, "report an attempt", report);
            }
        }
    }
    let counted = survive(
        store.complete_many(&config.node, &completions).await,
        "report completions",
        report,
    );
    for &counts in counted.iter().flatten() {
        if counts {
            report.completed += 1;
        } else {
            report.fenced += 1;
        }
    }
    if let (Some(breaker), true) = (config.breaker, counted.is_some()) {
        for dependency in dependencies {
            let recorded = store.record_dependency(&dependency, true, breaker).await;
            survive(recorded, "record a dependency's success", report);
        }
    }
}

/// Reports an attempt's end to the store, fenced on the attempt.
async fn settle<H>(
    store: &PgStore,
    pool: &Pool<H>,
    config: &NodeConfig,
    task: &Claimed<()>,
    result: Result<H::Output, TaskFailure<H::Task>>,
    report: &mut NodeReport,
) -> Result<(), StoreError>
where
    H: TaskHandler,
    H::Output: Serialize,
{
    let node = &config.node;
    let success = result.is_ok();
    match result {
        Ok(output) => {
            if store.complete(node, task.id, task.attempt, &output).await? {
                report.completed += 1;
            } else {
                report.fenced += 1;
            }
        }
        Err(TaskFailure::DeadLettered { id, attempts }) => {
            let error = attempts
                .last()
                .map_or_else(|| "failed".to_owned(), |a| a.error.to_string());
            // The store keeps the history; the pool's copy can go.
            let _ = pool.purge_dead(Some(id)).await;
            let permanent = attempts.last().is_some_and(|a| !a.error.retryable());
            if permanent {
                // The handler marked it permanent: dead now, whatever
                // retries the store's policy has left.
                let attempt = i32::try_from(task.attempt).unwrap_or(i32::MAX);
                store.bury(node, task.id, attempt, &error).await?;
                report.failed += 1;
                return Ok(());
            }
            match store.fail(node, task.id, task.attempt, &error).await? {
                crate::FailOutcome::Fenced => report.fenced += 1,
                _ => report.failed += 1,
            }
        }
        Err(TaskFailure::Returned { .. }) => {
            if store.release(node, task.id, task.attempt).await? {
                report.released += 1;
            }
            return Ok(());
        }
        Err(other) => {
            let error = other.to_string();
            if store.fail(node, task.id, task.attempt, &error).await? == crate::FailOutcome::Fenced
            {
                report.fenced += 1;
            } else {
                report.failed += 1;
            }
        }
    }
    if let (Some(dependency), Some(breaker)) = (&task.dependency, config.breaker) {
        store
            .record_dependency(dependency, success, breaker)
            .await?;
    }
    Ok(())
}
