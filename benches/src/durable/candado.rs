//! Candado's durable store in the end-to-end measurement: per node a
//! [`PgStore`], a [`DurableNode`] and a Candado pool of
//! [`WORKERS`] workers, all nodes on one runtime of two
//! worker threads (the machine's cores), each with its own connections.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use candado::Runtime;
use candado_pool::{Pool, PoolBuilder, RetryConfig, TaskContext, TaskHandler};
use candado_postgres::{DurableNode, NewTask, NodeConfig, NodeReport, PgStore, StoreConfig};

use super::{Rescue, BATCH, CHECK_EVERY, DEAD_AFTER, HELD, IN_FLIGHT, QUEUE, RAN, WORKERS};

/// Whether jobs of the queue are still to be completed (through the
/// partial indexes of ready and running tasks, not a count of all rows).
const PENDING: &str =
    "SELECT EXISTS (SELECT 1 FROM candado_tasks WHERE queue = $1 AND state = 'ready')
        OR EXISTS (SELECT 1 FROM candado_tasks WHERE queue = $1 AND state = 'running')";

/// A handler that counts its run and answers its task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counted;

impl TaskHandler for Counted {
    type Task = u64;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        n: u64,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        RAN.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Ok(n))
    }
}

/// A handler that never finishes (within the hour): the killed node's.
#[derive(Debug, Clone, Copy, Default)]
struct Hangs;

impl TaskHandler for Hangs {
    type Task = u64;
    type Output = u64;
    type Error = String;

    // The future must be `'static`: an `async fn` would borrow `self`.
    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        n: u64,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(n)
        }
    }
}

async fn store(url: &str) -> anyhow::Result<PgStore> {
    PgStore::connect(StoreConfig::new(url, QUEUE))
        .await
        .context("connecting Candado's store")
}

async fn pool<H: TaskHandler + Clone + Send + Sync>(
    runtime: &Runtime,
    name: String,
    handler: H,
) -> anyhow::Result<Pool<H>> {
    let mut config = crate::pool::config(WORKERS, 1);
    config.name = name;
    // Each local attempt is one durable attempt: the store retries.
    config.retry = RetryConfig {
        max_retries: 0,
        ..RetryConfig::default()
    };
    PoolBuilder::new(move || handler.clone())
        .config(config)
        .start(runtime)
        .await
        .context("starting a pool")
}

/// A node's settings: defaults, [`IN_FLIGHT`] tasks held, no breakers
/// (the jobs name no dependency); `fast` liveness for the rescue runs.
fn node_config(name: String, fast: bool) -> NodeConfig {
    let mut config = NodeConfig {
        node: name,
        max_in_flight: IN_FLIGHT,
        breaker: None,
        ..NodeConfig::default()
    };
    if fast {
        config.lease = DEAD_AFTER;
        config.renew_every = CHECK_EVERY;
        config.rescue_every = CHECK_EVERY;
        config.max_in_flight = HELD;
    }
    config
}

/// Deletes the queue's rows and vacuums the table.
async fn clear(client: &tokio_postgres::Client) -> anyhow::Result<()> {
    client
        .execute("DELETE FROM candado_tasks WHERE queue = $1", &[&QUEUE])
        .await?;
    client.batch_execute("VACUUM candado_tasks").await?;
    Ok(())
}

/// Starts a node on `runtime`; it runs until `stop` fires.
async fn start_node<H>(
    url: &str,
    runtime: &Runtime,
    name: String,
    handler: H,
    fast: bool,
) -> anyhow::Result<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<NodeReport>,
)>
where
    H: TaskHandler<Task = u64, Output = u64> + Clone + Send + Sync,
{
    let store = store(url).await?;
    let pool = pool(runtime, name.clone(), handler).await?;
    let node = DurableNode::new(store, pool, node_config(name, fast))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = actix::spawn(node.run(
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    Ok((stop, running))
}

/// Runs `body` in a fresh actix system with a runtime of two worker threads.
fn on_system<T>(body: impl AsyncFnOnce(&Runtime) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let system = actix::System::new();
    let out = system.block_on(async {
        let runtime = Runtime::builder().worker_threads(2).build()?;
        let out = body(&runtime).await;
        runtime.shutdown().await;
        out
    });
    actix::System::current().stop();
    drop(system);
    out
}

/// Wall time for `jobs` jobs through `nodes` nodes, from the first
/// enqueue until the database records the last completion.
pub fn throughput(url: &str, nodes: usize, jobs: usize) -> anyhow::Result<Duration> {
    on_system(async |runtime| {
        let producer = store(url).await?;
        let client = super::admin(url).await?;
        clear(&client).await?;
        let mut running = Vec::new();
        for i in 0..nodes {
            running.push(start_node(url, runtime, format!("node-{i}"), Counted, false).await?);
        }
        // Let the nodes find the empty queue and listen.
        tokio::time::sleep(Duration::from_millis(200)).await;
        RAN.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let produce = actix::spawn(async move {
            let mut n = 0_u64;
            while n < jobs as u64 {
                let batch: Vec<NewTask<u64>> = (n..(n + BATCH as u64).min(jobs as u64))
                    .map(NewTask::new)
                    .collect();
                n += batch.len() as u64;
                producer.enqueue_many(batch).await?;
            }
            anyhow::Ok(())
        });
        super::wait_completed(&client, PENDING, jobs, Duration::from_secs(120)).await?;
        let elapsed = started.elapsed();
        produce.await??;
        for (stop, node) in running {
            let _ = stop.send(());
            node.await?;
        }
        Ok(elapsed)
    })
}

/// The victim process's node: holds [`HELD`] tasks that never finish,
/// renewing their leases, until killed.
pub(crate) fn serve_victim(url: &str) {
    let _ = on_system(async |runtime| {
        let (_stop, node) = start_node(url, runtime, "victim".into(), Hangs, true).await?;
        node.await?;
        Ok(())
    });
}

/// Kills a node holding [`HELD`] tasks with `SIGKILL`, and times a
/// survivor's rescue of them.
pub fn rescue(url: &str) -> anyhow::Result<Rescue> {
    on_system(async |runtime| {
        let client = super::admin(url).await?;
        let producer = store(url).await?;
        clear(&client).await?;
        producer
            .enqueue_many((0..HELD as u64).map(NewTask::new).collect())
            .await?;
        let mut victim = super::spawn_victim("candado", url)?;
        let held = super::wait_held(
            &client,
            "SELECT count(*) FROM candado_tasks
             WHERE queue = $1 AND state = 'running' AND lease_holder = 'victim'",
        )
        .await;
        if let Err(e) = held {
            let _ = victim.kill();
            let _ = victim.wait();
            return Err(e);
        }
        let (stop, survivor) = start_node(url, runtime, "survivor".into(), Counted, true).await?;
        // The survivor settles in (listening, its first ticks).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rescue = super::time_rescue(
            &client,
            &mut victim,
            "SELECT count(*) FILTER (WHERE attempt >= 2),
                    count(*) FILTER (WHERE state = 'done')
             FROM candado_tasks WHERE queue = $1",
        )
        .await?;
        let _ = stop.send(());
        survivor.await?;
        Ok(rescue)
    })
}
