//! A durable pool (`candado-postgres`): tasks enqueued in PostgreSQL are
//! claimed, run and completed by a node, a Candado pool fed from the store.
//! A failing task is retried by the store and ends as a dead letter with its
//! history.
//!
//! It needs a PostgreSQL server (a scratch database: the example creates its
//! own queue and deletes its rows at the end):
//!
//! `cargo run -p candado-examples --bin durable_pool -- postgres://user:pass@localhost/db`
//!
//! or with the URL in `CANDADO_EXAMPLE_PG_URL`. Without one it says so and
//! exits with status 2.

use std::time::Duration;

use candado::Runtime;
use candado_pool::{PoolBuilder, PoolConfig, RetryConfig, TaskContext, TaskHandler};
use candado_postgres::{DurableNode, NewTask, NodeConfig, PgStore, StoreConfig};

/// Doubles a number; 13 always fails.
struct Doubler;

impl TaskHandler for Doubler {
    type Task = u64;
    type Output = u64;
    type Error = String;

    // The future must be 'static (it outlives the borrow of `self`), which
    // an `async fn` taking `&mut self` is not.
    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        n: u64,
        _ctx: TaskContext,
    ) -> impl std::future::Future<Output = Result<u64, String>> + 'static {
        async move {
            if n == 13 {
                Err("13 is unlucky".to_owned())
            } else {
                Ok(n * 2)
            }
        }
    }
}

const TASKS: u64 = 20;

fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CANDADO_EXAMPLE_PG_URL").ok());
    let Some(url) = url else {
        eprintln!(
            "durable_pool needs a PostgreSQL server: pass its URL as the first argument \
             (cargo run -p candado-examples --bin durable_pool -- postgres://user:pass@localhost/db) \
             or set CANDADO_EXAMPLE_PG_URL. Nothing was run."
        );
        std::process::exit(2);
    };
    Runtime::builder()
        .worker_threads(2)
        .run(async move |runtime| run(url, runtime).await)?
}

async fn run(url: String, runtime: &Runtime) -> anyhow::Result<()> {
    let queue = format!("candado-example-{}", std::process::id());
    let store = PgStore::connect(StoreConfig::new(url, queue.as_str())).await?;
    println!("connected; queue `{queue}` (schema migrated if needed)");
    for n in 1..=TASKS {
        store.enqueue(NewTask::new(n)).await?;
    }
    println!("enqueued {TASKS} tasks: {:?}", store.counts().await?);

    // The store retries (on any node); the pool's own retries are off.
    let pool = PoolBuilder::new(|| Doubler)
        .config(PoolConfig {
            name: "doublers".into(),
            retry: RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            },
            ..PoolConfig::default()
        })
        .start(runtime)
        .await?;
    let node = DurableNode::new(store.clone(), pool, NodeConfig::default())?;

    // Stop once every task is done or dead (or after 20 s).
    let watcher = store.clone();
    let stop = async move {
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Ok(c) = watcher.counts().await {
                if c.ready == 0 && c.running == 0 {
                    return;
                }
            }
        }
        eprintln!("stopping after 20 s with tasks left");
    };
    let report = node.run(stop, Duration::from_secs(5)).await;
    println!("node report: {report:?}");
    let counts = store.counts().await?;
    println!("queue: {counts:?}");
    anyhow::ensure!(counts.done + counts.dead == TASKS, "tasks left: {counts:?}");
    Ok(())
}
