//! A pool of supervised workers (`candado-pool`): prioritised tasks, a
//! failing task retried and then dead-lettered with its history, a panic
//! that costs one attempt and not the worker thread, and a graceful
//! shutdown whose report balances.
//!
//! Run: `cargo run -p candado-examples --bin pool`

use std::time::Duration;

use candado::Runtime;
use candado_pool::{PoolBuilder, PoolConfig, ShutdownMode, TaskContext, TaskHandler, TaskOptions};

/// Scores a batch of numbers; yields between numbers so its worker keeps
/// heartbeating. A batch holding 13 fails; one holding 666 panics.
struct Scorer;

impl TaskHandler for Scorer {
    type Task = Vec<u64>;
    type Output = u64;
    type Error = String;

    // The future must be 'static (it outlives the borrow of `self`), which
    // an `async fn` taking `&mut self` is not.
    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        batch: Vec<u64>,
        mut ctx: TaskContext,
    ) -> impl std::future::Future<Output = Result<u64, String>> + 'static {
        async move {
            let mut score = 0;
            for n in batch {
                match n {
                    13 => return Err("13 is unlucky".to_owned()),
                    666 => panic!("a bug in the scorer"),
                    n => score += n * n,
                }
                ctx.checkpoint().await;
            }
            Ok(score)
        }
    }
}

fn main() -> anyhow::Result<()> {
    std::panic::set_hook(Box::new(|info| eprintln!("(a task panicked: {info})")));
    Runtime::builder()
        .worker_threads(2)
        .run(async |runtime| -> anyhow::Result<()> {
            let config = PoolConfig::from_toml(
                r#"
            name = "scorers"
            size = 2
            dispatch = "least_loaded"
            task_timeout = "10s"
            [retry]
            max_retries = 2
            base = "50ms"
            cap = "100ms"
            "#,
            )?;
            let pool = PoolBuilder::new(|| Scorer)
                .config(config)
                .start(runtime)
                .await?;

            let urgent = pool.submit_with(vec![1, 2, 3], TaskOptions::priority(0))?;
            println!("urgent batch scored {}", urgent.await?);

            let batches: Vec<Vec<u64>> = (1..=10).map(|n| vec![n, n + 1]).collect();
            let handles: Vec<_> = batches
                .iter()
                .map(|b| pool.submit(b.clone()))
                .collect::<Result<_, _>>()?;
            let mut total = 0;
            for handle in handles {
                total += handle.await?;
            }
            println!("ten batches scored {total} in all");

            let unlucky = pool.submit(vec![12, 13])?;
            match unlucky.await {
                Ok(score) => anyhow::bail!("the unlucky batch scored {score}"),
                Err(failure) => println!("the unlucky batch failed for good: {failure}"),
            }
            let buggy = pool.submit(vec![666])?;
            match buggy.await {
                Ok(score) => anyhow::bail!("the buggy batch scored {score}"),
                Err(failure) => println!("the buggy batch failed for good: {failure}"),
            }
            for dead in pool.dead_letters().await? {
                println!("dead letter: {dead:?}");
            }
            let after = pool.submit(vec![4])?;
            println!("the workers live on: a last batch scored {}", after.await?);

            let report = pool
                .shutdown(ShutdownMode::Graceful {
                    deadline: Duration::from_secs(5),
                })
                .await;
            println!("shutdown: {report:?}");
            println!(
                "balanced (submitted = completed + dead-lettered + returned): {}",
                report.balanced()
            );
            anyhow::ensure!(report.balanced(), "the pool's books do not balance");
            Ok(())
        })?
}
