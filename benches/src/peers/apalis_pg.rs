//! apalis-postgres 1.0 in the durable queue's end-to-end measurement (see
//! [`crate::durable`]): per node a `PgPool` of 8 connections (as Candado's
//! store) and [`WORKERS`] apalis workers, each fetching batches of
//! [`IN_FLIGHT`] / [`WORKERS`] jobs, so a node holds as many jobs as a
//! Candado node; all on a tokio runtime of two worker threads. Everything
//! else is apalis's default: tasks are locked as they start and results
//! persisted, acknowledgements batched by its persistence layer. Each
//! worker listens for apalis's insert notifications (`with_pubsub`), as
//! Candado's nodes listen for theirs; without it, a worker that found the
//! queue empty sleeps until its next heartbeat (30 s by default).
//!
//! Its liveness is per worker, not per task: each worker's heartbeat
//! refreshes `workers.last_seen` and then re-enqueues the jobs of any
//! worker of the queue unseen for `heartbeat_interval × missed_heartbeats`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use apalis::prelude::*;
use apalis_postgres::{Config, PgPool, PostgresStorage};
use sqlx::postgres::PgPoolOptions;

use crate::durable::{
    Rescue, BATCH, CHECK_EVERY, DEAD_AFTER, HELD, IN_FLIGHT, QUEUE, RAN, WORKERS,
};

/// Whether jobs of the queue are still to be completed.
const PENDING: &str = "SELECT EXISTS (SELECT 1 FROM apalis.jobs
        WHERE job_type = $1 AND status IN ('Pending', 'Queued', 'Running'))";

/// Worker names are unique in `apalis.workers`: each run's get a new number.
static RUN: AtomicU64 = AtomicU64::new(0);

async fn noop(n: u64) -> Result<u64, BoxDynError> {
    RAN.fetch_add(1, Ordering::Relaxed);
    Ok(n)
}

async fn hang(n: u64) -> Result<u64, BoxDynError> {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Ok(n)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

async fn connect(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(8)
        .connect(url)
        .await
        .context("connecting apalis's pool")
}

/// apalis's config: the queue, batches so that a node holds
/// [`IN_FLIGHT`] jobs (or `held` in all, for the rescue runs), and, for
/// the rescue runs, the same liveness bounds as Candado's.
fn config(held: usize, fast: bool) -> Config {
    let config = Config::default()
        .queue(QUEUE)
        .batch_size((held / WORKERS).max(1));
    if fast {
        config
            .heartbeat_interval(CHECK_EVERY)
            .missed_heartbeats((DEAD_AFTER.as_millis() / CHECK_EVERY.as_millis()) as usize)
    } else {
        config
    }
}

/// Deletes the queue's jobs and workers and vacuums the table.
async fn clear(pool: &PgPool) -> anyhow::Result<()> {
    PostgresStorage::setup(pool)
        .await
        .context("apalis migrations")?;
    sqlx::query("DELETE FROM apalis.jobs WHERE job_type = $1")
        .bind(QUEUE)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM apalis.workers WHERE worker_type = $1")
        .bind(QUEUE)
        .execute(pool)
        .await?;
    sqlx::query("VACUUM apalis.jobs").execute(pool).await?;
    Ok(())
}

/// Starts a node of [`WORKERS`] workers running `handler`.
async fn start_node<F, Fut>(
    url: &str,
    name: &str,
    held: usize,
    fast: bool,
    handler: F,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>>
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<u64, BoxDynError>> + Send + 'static,
{
    let pool = connect(url).await?;
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        // Woken by its insert notifications (`LISTEN`), as Candado's nodes.
        let backend = PostgresStorage::<u64>::new(&pool)
            .with_config(config(held, fast))
            .with_pubsub();
        let worker = WorkerBuilder::new(format!("{name}-{}-{run}-{w}", std::process::id()))
            .backend(backend)
            .build(handler.clone());
        workers.push(tokio::spawn(async move {
            if let Err(e) = worker.run().await {
                eprintln!("apalis worker stopped: {e}");
            }
        }));
    }
    Ok(workers)
}

/// Wall time for `jobs` jobs through `nodes` nodes, from the first
/// enqueue until the database records the last completion.
pub fn throughput(url: &str, nodes: usize, jobs: usize) -> anyhow::Result<Duration> {
    let runtime = runtime()?;
    let out = runtime.block_on(async {
        let pool = connect(url).await?;
        clear(&pool).await?;
        let client = crate::durable::admin(url).await?;
        let mut workers = Vec::new();
        for i in 0..nodes {
            workers.extend(start_node(url, &format!("node-{i}"), IN_FLIGHT, false, noop).await?);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        RAN.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let mut sink = PostgresStorage::<u64>::new(&pool).with_config(config(IN_FLIGHT, false));
        let produce = tokio::spawn(async move {
            let mut n = 0_u64;
            while n < jobs as u64 {
                let batch: Vec<u64> = (n..(n + BATCH as u64).min(jobs as u64)).collect();
                n += batch.len() as u64;
                sink.push_bulk(batch)
                    .await
                    .map_err(|e| anyhow::anyhow!("apalis push: {e}"))?;
            }
            anyhow::Ok(())
        });
        let waited =
            crate::durable::wait_completed(&client, PENDING, jobs, Duration::from_secs(120)).await;
        let elapsed = started.elapsed();
        for w in workers {
            w.abort();
        }
        waited?;
        produce.await??;
        anyhow::Ok(elapsed)
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    out
}

/// The victim process's node: holds [`HELD`] jobs that never finish,
/// heartbeating, until killed.
pub(crate) fn serve_victim(url: &str) {
    let Ok(runtime) = runtime() else { return };
    runtime.block_on(async {
        if let Ok(workers) = start_node(url, "victim", HELD, true, hang).await {
            for w in workers {
                let _ = w.await;
            }
        }
    });
}

/// Kills a node holding [`HELD`] jobs with `SIGKILL`, and times a
/// survivor's rescue of them (its heartbeat's re-enqueue of orphans).
pub fn rescue(url: &str) -> anyhow::Result<Rescue> {
    let runtime = runtime()?;
    let out = runtime.block_on(async {
        let pool = connect(url).await?;
        clear(&pool).await?;
        let client = crate::durable::admin(url).await?;
        let mut sink = PostgresStorage::<u64>::new(&pool).with_config(config(HELD, true));
        sink.push_bulk((0..HELD as u64).collect())
            .await
            .map_err(|e| anyhow::anyhow!("apalis push: {e}"))?;
        let mut victim = crate::durable::spawn_victim("apalis", url)?;
        let held = crate::durable::wait_held(
            &client,
            "SELECT count(*) FROM apalis.jobs
             WHERE job_type = $1 AND status IN ('Queued', 'Running') AND lock_by LIKE 'victim-%'",
        )
        .await;
        if let Err(e) = held {
            let _ = victim.kill();
            let _ = victim.wait();
            return Err(e);
        }
        let survivor = start_node(url, "survivor", HELD, true, noop).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rescue = crate::durable::time_rescue(
            &client,
            &mut victim,
            "SELECT count(*) FILTER (WHERE lock_by LIKE 'survivor-%'),
                    count(*) FILTER (WHERE status = 'Done')
             FROM apalis.jobs WHERE job_type = $1",
        )
        .await;
        for w in survivor {
            w.abort();
        }
        rescue
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    out
}
