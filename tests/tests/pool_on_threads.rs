//! The pool on real worker threads: concurrency, failures and panics mixed,
//! and the books must balance. Asserts counts only, never timing.

use std::future::Future;
use std::time::Duration;

use candado::Runtime;
use candado_pool::{PoolBuilder, PoolConfig, RetryConfig, TaskContext, TaskFailure, TaskHandler};

/// Task `n`: fails its first attempt if n % 20 == 0, panics on every attempt
/// if n % 100 == 1, otherwise returns n.
struct Flaky;

impl TaskHandler for Flaky {
    type Task = u64;
    type Output = u64;
    type Error = String;

    // Not `async fn`: that would capture `&mut self`, and the trait needs a
    // `'static` future.
    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        n: u64,
        mut ctx: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        async move {
            for _ in 0..10 {
                ctx.checkpoint().await;
            }
            if n % 100 == 1 {
                panic!("task {n} always panics");
            }
            if n.is_multiple_of(20) && ctx.attempt() == 1 {
                return Err(format!("task {n} fails once"));
            }
            Ok(n)
        }
    }
}

#[test]
fn two_thousand_tasks_on_real_threads_all_end_exactly_once() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(2).build().unwrap();
        let config = PoolConfig {
            size: 4,
            concurrency: 4,
            retry: RetryConfig {
                max_retries: 2,
                base: Duration::from_millis(1),
                cap: Duration::from_millis(10),
                jitter: 0.5,
                ..Default::default()
            },
            ..PoolConfig::default()
        };
        let pool = PoolBuilder::new(|| Flaky)
            .config(config)
            .start(&runtime)
            .await
            .unwrap();
        let handles: Vec<_> = (0..2_000u64)
            .map(|n| (n, pool.submit(n).unwrap()))
            .collect();
        let (mut completed, mut dead) = (0, 0);
        for (n, handle) in handles {
            match handle.await {
                Ok(v) => {
                    assert_eq!(v, n);
                    completed += 1;
                }
                Err(TaskFailure::DeadLettered { attempts, .. }) => {
                    assert_eq!(n % 100, 1, "only the always-panicking tasks die");
                    assert_eq!(attempts.len(), 3, "one history entry per attempt");
                    dead += 1;
                }
                Err(other) => panic!("task {n}: {other:?}"),
            }
        }
        assert_eq!((completed, dead), (1_980, 20));
        let metrics = pool.metrics().await.unwrap();
        assert_eq!(metrics.tasks.retried, 100 + 40);
        let report = pool.shutdown_gracefully(Duration::from_secs(10)).await;
        assert_eq!(
            (
                report.submitted,
                report.completed,
                report.dead_lettered,
                report.returned
            ),
            (2_000, 1_980, 20, 0)
        );
        assert_eq!(report.lost(), 0);
        assert_eq!(pool.dead_letters().await.unwrap().len(), 20);
        runtime.shutdown().await;
    });
}
