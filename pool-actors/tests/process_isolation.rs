//! `isolation = "process"`: a pool's handlers run in worker processes of
//! this test binary (real processes, bounded waits). A custom harness, so
//! that `main` can call `run_if_process_worker` first, as applications do.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candado::Runtime;
use candado_pool::{
    AttemptError, Blame, ConfigError, Isolation, Pool, PoolConfig, PoolError, RetryConfig,
    ShutdownMode, TaskContext, TaskFailure, TaskHandler,
};
use serde::{Deserialize, Serialize};

const ENTRY: &str = "pool-test-worker";

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Job {
    Square(u64),
    /// The pid of the process that runs it.
    Pid,
    /// `abort()` on every attempt.
    Abort,
    /// Spins in `loop {}` without an await: only killing the process stops it.
    Spin,
    /// Exits with the memory brake's code on its first attempt.
    BrakeOnFirst,
    /// Panics inside the future (the process lives on).
    PanicInFuture,
    /// An error the handler blames on the worker.
    LoseConnection,
    /// Holds this many MiB for ever, touched, and answers its pid.
    Leak(u64),
    /// Awaits this long (cancellable).
    Sleep(u64),
}

/// Memory a `Leak` job holds in the worker process.
static LEAKED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

struct Jobs;

impl TaskHandler for Jobs {
    type Task = Job;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        job: Job,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        let attempt = ctx.attempt();
        async move {
            match job {
                Job::Square(n) => Ok(n * n),
                Job::Pid => Ok(u64::from(std::process::id())),
                Job::Abort => std::process::abort(),
                Job::Spin =>
                {
                    #[allow(clippy::empty_loop)]
                    loop {}
                }
                Job::BrakeOnFirst if attempt == 1 => candado_process::brake(),
                Job::BrakeOnFirst => Ok(u64::from(attempt)),
                Job::PanicInFuture => panic!("boom in the future"),
                Job::LoseConnection => Err("connection lost".to_owned()),
                Job::Leak(mib) => {
                    let mut block = vec![0u8; usize::try_from(mib).unwrap() << 20];
                    for page in block.chunks_mut(4096) {
                        page[0] = 1;
                    }
                    LEAKED.lock().unwrap().push(block);
                    Ok(u64::from(std::process::id()))
                }
                Job::Sleep(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(ms)
                }
            }
        }
    }

    fn blame(&self, error: &String) -> Blame {
        if error.contains("connection") {
            Blame::Worker
        } else {
            Blame::Task
        }
    }
}

fn config() -> PoolConfig {
    PoolConfig {
        name: "iso".into(),
        size: 2,
        isolation: Isolation::Process,
        task_timeout: Duration::from_secs(20),
        retry: RetryConfig {
            max_retries: 2,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
            ..RetryConfig::default()
        },
        ..PoolConfig::default()
    }
}

async fn start(config: PoolConfig, runtime: &Runtime) -> Pool<Jobs> {
    Pool::builder(|| Jobs)
        .config(config)
        .process_worker(ENTRY)
        .start(runtime)
        .await
        .unwrap()
}

type Test = for<'a> fn(&'a Runtime) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

fn run(test: Test) {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        test(&runtime).await;
        runtime.shutdown().await;
    });
    assert_no_child_process_left();
}

/// The tests, by name, each in a fresh system and runtime.
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), (|r| Box::pin($name(r))) as Test)),*]
    };
}

/// Waits (bounded) until the pool has counted `n` restarts for `reason`.
async fn restarts_for(pool: &Pool<Jobs>, reason: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let restarts = pool.metrics().await.unwrap().performance.restarts_by_reason;
        if restarts.get(reason) == Some(&n) {
            return;
        }
        assert!(Instant::now() < deadline, "restarts: {restarts:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .expect("bounded wait expired")
}

/// The pids whose parent is this process.
fn children_of_this_process() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(me) {
            out.push(pid);
        }
    }
    out
}

/// Whether a worker's status names process `pid`.
async fn workers_hold(pool: &Pool<Jobs>, pid: u32) -> bool {
    let workers = pool.metrics().await.unwrap().per_worker;
    workers.iter().any(|w| w.pid == Some(pid))
}

/// Waits (bounded) until this process has no child left, not even a zombie.
fn assert_no_child_process_left() {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = children_of_this_process();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "children left: {left:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn tasks_run_in_worker_processes_and_the_books_balance(runtime: &Runtime) {
    let pool = start(config(), runtime).await;
    let handles: Vec<_> = (0..50)
        .map(|n| pool.submit(Job::Square(n)).unwrap())
        .collect();
    for (n, handle) in handles.into_iter().enumerate() {
        let n = n as u64;
        assert_eq!(
            within(Duration::from_secs(20), handle).await.unwrap(),
            n * n
        );
    }
    let pid = within(Duration::from_secs(5), pool.submit(Job::Pid).unwrap())
        .await
        .unwrap();
    assert_ne!(pid, u64::from(std::process::id()), "ran in the parent");
    assert!(children_of_this_process().contains(&(pid as u32)));
    let tasks = pool.metrics().await.unwrap().tasks;
    assert_eq!((tasks.submitted, tasks.completed), (51, 51));
    // Each worker's status names its process and, once measured, its RSS.
    within(Duration::from_secs(10), async {
        loop {
            let workers = pool.metrics().await.unwrap().per_worker;
            let children = children_of_this_process();
            assert!(!workers.is_empty());
            for worker in &workers {
                let pid = worker.pid.expect("a worker process has a pid");
                assert!(children.contains(&pid), "{pid} is a child of this process");
            }
            if workers
                .iter()
                .all(|w| w.rss_bytes.is_some_and(|rss| rss > 0))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        workers_hold(&pool, pid as u32).await,
        "the task's process is a worker's"
    );
    pool.shutdown(ShutdownMode::Graceful {
        deadline: Duration::from_secs(5),
    })
    .await;
}

async fn a_task_that_aborts_its_process_every_time_is_dead_lettered_with_each_exit(
    runtime: &Runtime,
) {
    let pool = start(config(), runtime).await;
    let doomed = pool.submit(Job::Abort).unwrap();
    let fine: Vec<_> = (0..10)
        .map(|n| pool.submit(Job::Square(n)).unwrap())
        .collect();
    let failure = within(Duration::from_secs(30), doomed).await.unwrap_err();
    let TaskFailure::DeadLettered { attempts, .. } = failure else {
        panic!("{failure:?}");
    };
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    for attempt in &attempts {
        let AttemptError::WorkerLost(reason) = &attempt.error else {
            panic!("{attempt:?}");
        };
        assert!(reason.contains("SIGABRT"), "{reason}");
    }
    for handle in fine {
        within(Duration::from_secs(30), handle).await.unwrap();
    }
    let tasks = pool.metrics().await.unwrap().tasks;
    assert_eq!(
        (tasks.submitted, tasks.completed, tasks.dead_lettered),
        (11, 10, 1)
    );
    pool.shutdown(ShutdownMode::Graceful {
        deadline: Duration::from_secs(5),
    })
    .await;
}

async fn a_spinning_task_gets_its_process_killed_at_its_timeout_and_a_new_one_serves(
    runtime: &Runtime,
) {
    let mut config = config();
    config.size = 1;
    config.task_timeout = Duration::from_millis(300);
    config.process.timeout_grace = Duration::from_millis(200);
    config.retry.max_retries = 0;
    let pool = start(config, runtime).await;
    let first = within(Duration::from_secs(10), pool.submit(Job::Pid).unwrap())
        .await
        .unwrap();
    let started = Instant::now();
    let failure = within(Duration::from_secs(10), pool.submit(Job::Spin).unwrap())
        .await
        .unwrap_err();
    let TaskFailure::DeadLettered { attempts, .. } = failure else {
        panic!("{failure:?}");
    };
    assert!(
        matches!(attempts[0].error, AttemptError::TimedOut(_)),
        "{attempts:?}"
    );
    let next = within(Duration::from_secs(10), pool.submit(Job::Pid).unwrap())
        .await
        .unwrap();
    assert_ne!(first, next, "the spinning process was replaced");
    assert!(
        !children_of_this_process().contains(&(first as u32)),
        "the spinning process was reaped"
    );
    // Typed: the restart counts as a stuck worker, not as a crash.
    restarts_for(&pool, "liveness", 1).await;
    eprintln!("  spin → replacement answered in {:?}", started.elapsed());
    pool.shutdown(ShutdownMode::Graceful {
        deadline: Duration::from_secs(5),
    })
    .await;
}

async fn a_frozen_worker_process_is_found_silent_and_replaced(runtime: &Runtime) {
    let mut config = config();
    config.size = 1;
    config.process.heartbeat_interval = Duration::from_millis(100);
    config.liveness = Some(candado::LivenessConfig {
        heartbeat_interval: Some(Duration::from_millis(100)),
        heartbeat_timeout: Duration::from_secs(1),
        ..candado_pool::PoolDefault::pool_default()
    });
    let pool = start(config, runtime).await;
    let frozen = within(Duration::from_secs(10), pool.submit(Job::Pid).unwrap())
        .await
        .unwrap();
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &frozen.to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let started = Instant::now();
    // Submitted to the frozen process: retried on its replacement.
    let next = within(Duration::from_secs(20), pool.submit(Job::Pid).unwrap())
        .await
        .unwrap();
    assert_ne!(next, frozen);
    eprintln!("  frozen → replacement answered in {:?}", started.elapsed());
    restarts_for(&pool, "liveness", 1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while children_of_this_process().contains(&(frozen as u32)) {
        assert!(
            Instant::now() < deadline,
            "the frozen process was not reaped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.shutdown(ShutdownMode::Graceful {
        deadline: Duration::from_secs(5),
    })
    .await;
}

async fn exit_42_restarts_the_worker_for_memory_and_the_task_is_retried(runtime: &Runtime) {
    let pool = start(config(), runtime).await;
    let answer = within(
        Duration::from_secs(20),
        pool.submit(Job::BrakeOnFirst).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(answer, 2, "succeeded on its second attempt");
    restarts_for(&pool, "memory", 1).await;
    pool.shutdown(ShutdownMode::Graceful {
        deadline: Duration::from_secs(5),
    })
    .await;
}

async fn a_panic_in_the_future_fails_the_attempt_and_the_process_lives_on(runtime: &Runtime) {
    let mut config = config();
    config.size = 1;
    config.retry.max_retries = 0;
    let pool = start(config, runtime).await;
    let before = within(Duration::from_secs(10), pool.submit(Job::Pid).unwrap())
        .await
        .unwrap();
    let failure = within(
        Duration::from_secs(10),
        pool.submit(Job::PanicInFuture).unwrap(),
    )
    .await
    .unwrap_err();
    let TaskFailure::DeadLettered { attempts, .. } = failure else {
        panic!("{failure:?}");
    };
    assert!(
        matches!(&attempts[0].error, AttemptError::Panicked(m) if m.contains("boom in the future")),
        "{attempts:?}"
    );
    let blamed = within(
        Duration::from_secs(10),
        pool.submit(Job::LoseConnection).unwrap(),
    )
    .await
    .unwrap_err();
    let TaskFailure::DeadLettered { attempts, .. } = blamed else {
        panic!("{blamed:?}");
    };
    assert!(
        matches!(&attempts[0].error, AttemptError::WorkerFailed(m) if m == "connection lost"),
        "the handler's blame travels back: {attempts:?}"
    );
    let after = within(Duration::from_secs(10), pool.submit(Job::Pid).unwrap())
        .await
        .unwrap();
    assert_eq!(before, after, "the same process");
    pool.shutdown(ShutdownMode::Graceful {
        deadline: Duration::from_secs(5),
    })
    .await;
}

async fn measured_rss_picks_the_leaking_worker_whose_process_alone_is_replaced(runtime: &Runtime) {
    let mut config = config();
    config.process.memory_interval = Duration::from_millis(50);
    config.memory = Some(candado::MemoryConfig {
        child_critical_bytes: Some(150 << 20),
        ..candado::MemoryConfig::default()
    });
    let pool = start(config, runtime).await;
    let leaker = within(
        Duration::from_secs(10),
        pool.submit(Job::Leak(200)).unwrap(),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while children_of_this_process().contains(&(leaker as u32)) {
        assert!(
            Instant::now() < deadline,
            "the leaking process was not killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    restarts_for(&pool, "memory", 1).await;
    let other = within(Duration::from_secs(10), pool.submit(Job::Pid).unwrap())
        .await
        .unwrap();
    assert_ne!(other, leaker);
    // Only the leaker was restarted.
    let restarts = pool.metrics().await.unwrap().performance.restarts_by_reason;
    assert_eq!(restarts.values().sum::<u64>(), 1, "{restarts:?}");
    pool.shutdown(ShutdownMode::Graceful {
        deadline: Duration::from_secs(5),
    })
    .await;
}

async fn shutdown_hands_back_unstarted_tasks_and_reaps_every_process(runtime: &Runtime) {
    let mut config = config();
    config.size = 1;
    let pool = start(config, runtime).await;
    let slow = pool.submit(Job::Sleep(200)).unwrap();
    let queued: Vec<_> = (0..5)
        .map(|n| pool.submit(Job::Square(n)).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = within(
        Duration::from_secs(10),
        pool.shutdown(ShutdownMode::Graceful {
            deadline: Duration::from_secs(5),
        }),
    )
    .await;
    assert_eq!(within(Duration::from_secs(5), slow).await.unwrap(), 200);
    let mut settled = 0;
    for handle in queued {
        match within(Duration::from_secs(5), handle).await {
            Ok(_) | Err(TaskFailure::Returned { .. }) => settled += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(settled, 5, "{report:?}");
}

async fn process_isolation_without_an_entry_point_is_a_typed_error(runtime: &Runtime) {
    let err = Pool::builder(|| Jobs)
        .config(config())
        .start(runtime)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PoolError::Config(ConfigError::Invalid { field, .. }) if field == "isolation"),
        "{err}"
    );
    assert!(err.to_string().contains("process_worker"), "{err}");
    let mut two = config();
    two.concurrency = 2;
    let err = Pool::builder(|| Jobs)
        .config(two)
        .process_worker(ENTRY)
        .start(runtime)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("concurrency"), "{err}");
}

fn main() {
    candado_pool::run_if_process_worker(ENTRY, || Jobs);
    let tests = tests![
        tasks_run_in_worker_processes_and_the_books_balance,
        a_task_that_aborts_its_process_every_time_is_dead_lettered_with_each_exit,
        a_spinning_task_gets_its_process_killed_at_its_timeout_and_a_new_one_serves,
        a_frozen_worker_process_is_found_silent_and_replaced,
        exit_42_restarts_the_worker_for_memory_and_the_task_is_retried,
        a_panic_in_the_future_fails_the_attempt_and_the_process_lives_on,
        measured_rss_picks_the_leaking_worker_whose_process_alone_is_replaced,
        shutdown_hands_back_unstarted_tasks_and_reaps_every_process,
        process_isolation_without_an_entry_point_is_a_typed_error,
    ];
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| run(test)));
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        eprintln!("test {name} ... {verdict} ({:.2?})", started.elapsed());
        if outcome.is_err() {
            failed.push(name);
        }
    }
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    eprintln!(
        "test result: {verdict}. {} passed; {} failed",
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(1);
    }
}
