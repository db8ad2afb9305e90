//! Two callers at once, on real threads: scaling and shutdown must each be
//! one step, whichever thread gets there first. Bounded loops; asserts
//! outcomes, never timing.

use std::future::Future;
use std::time::Duration;

use candado::Runtime;
use candado_pool::{Pool, PoolBuilder, PoolConfig, ShutdownMode, TaskContext, TaskHandler};

/// Sleeps its task's number of milliseconds.
struct Sleeper;

impl TaskHandler for Sleeper {
    type Task = u64;
    type Output = u64;
    type Error = String;

    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        ms: u64,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ms)
        }
    }
}

/// Runs `call` on two threads at once (each with its own executor) and
/// returns both results.
fn twice_at_once<T: Send + 'static, F: Future<Output = T> + 'static>(
    pool: &Pool<Sleeper>,
    call: impl Fn(Pool<Sleeper>) -> F + Send + Sync + Copy + 'static,
) -> (T, T) {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (pool, barrier) = (pool.clone(), barrier.clone());
            std::thread::spawn(move || {
                let executor = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("executor");
                barrier.wait();
                executor.block_on(call(pool))
            })
        })
        .collect();
    let mut results = threads
        .into_iter()
        .map(|t| t.join().expect("caller thread"));
    (results.next().unwrap(), results.next().unwrap())
}

async fn pool(runtime: &Runtime, config: PoolConfig) -> Pool<Sleeper> {
    PoolBuilder::new(|| Sleeper)
        .config(config)
        .start(runtime)
        .await
        .unwrap()
}

#[test]
fn two_scale_ups_on_two_threads_never_pass_max_size() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(2).build().unwrap();
        for round in 0..20 {
            let pool = pool(
                &runtime,
                PoolConfig {
                    name: format!("pool-{round}"),
                    size: 4,
                    max_size: 8,
                    ..PoolConfig::default()
                },
            )
            .await;
            let (a, b) = twice_at_once(&pool, |pool| async move { pool.scale_up(4).await });
            assert_eq!(
                usize::from(a.is_ok()) + usize::from(b.is_ok()),
                1,
                "round {round}: {a:?} {b:?}"
            );
            assert_eq!(pool.size(), 8, "round {round}");
            assert_eq!(pool.supervisor().children().await.unwrap().len(), 8);
            pool.shutdown_gracefully(Duration::from_secs(5)).await;
        }
        runtime.shutdown().await;
    });
}

#[test]
fn two_shutdowns_on_two_threads_get_the_one_true_report() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(2).build().unwrap();
        for round in 0..20 {
            let pool = pool(
                &runtime,
                PoolConfig {
                    name: format!("pool-{round}"),
                    size: 2,
                    ..PoolConfig::default()
                },
            )
            .await;
            let tasks: Vec<_> = (0..4).map(|_| pool.submit(20).unwrap()).collect();
            let (a, b) = twice_at_once(&pool, |pool| async move {
                pool.shutdown(ShutdownMode::Graceful {
                    deadline: Duration::from_secs(30),
                })
                .await
            });
            assert_eq!(a, b, "round {round}");
            assert_eq!((a.submitted, a.completed), (4, 4), "round {round}: {a:?}");
            for task in tasks {
                assert_eq!(task.await, Ok(20), "graceful stayed graceful");
            }
        }
        runtime.shutdown().await;
    });
}
