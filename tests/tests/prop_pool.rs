//! Property 1 (accounting) and property 7 (priority) on random task streams
//! through the pool, on virtual time.

mod common;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candado::Runtime;
use candado_pool::{
    AttemptError, BreakerSettings, PoolBuilder, PoolConfig, PoolEvent, RetryConfig, TaskContext,
    TaskFailure, TaskHandler, TaskOptions,
};
use common::{config, run_paused, settle};
use proptest::prelude::*;

/// What a task does on every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Succeed,
    /// Fails its first `n` attempts, then succeeds.
    FailThenSucceed(u32),
    AlwaysFail,
    Panic,
    /// Never finishes: each attempt ends by timeout.
    Hang,
}

#[derive(Debug, Clone)]
struct Task {
    tag: usize,
    script: Script,
    priority: u8,
    timeout_ms: Option<u64>,
    needs_gpu: bool,
    /// Calls the `dep` dependency, so its failures feed that breaker.
    uses_dependency: bool,
}

struct Runner {
    log: Arc<Mutex<Vec<(usize, u64)>>>,
    epoch: tokio::time::Instant,
}

impl TaskHandler for Runner {
    type Task = Task;
    type Output = usize;
    type Error = String;

    fn handle(
        &mut self,
        task: Task,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<usize, String>> + 'static {
        let started = self.epoch.elapsed().as_millis() as u64;
        self.log.lock().unwrap().push((task.tag, started));
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            match task.script {
                Script::Succeed => Ok(task.tag),
                Script::FailThenSucceed(n) if ctx.attempt() > n => Ok(task.tag),
                Script::FailThenSucceed(_) | Script::AlwaysFail => Err("scripted failure".into()),
                Script::Panic => panic!("scripted panic"),
                Script::Hang => std::future::pending().await,
            }
        }
    }
}

fn script() -> impl Strategy<Value = Script> {
    prop_oneof![
        4 => Just(Script::Succeed),
        2 => (1u32..4).prop_map(Script::FailThenSucceed),
        1 => Just(Script::AlwaysFail),
        1 => Just(Script::Panic),
        1 => Just(Script::Hang),
    ]
}

fn tasks(max: usize) -> impl Strategy<Value = Vec<Task>> {
    prop::collection::vec(
        (
            script(),
            0u8..20,
            prop::option::of(100u64..3_000),
            any::<bool>(),
            any::<bool>(),
        ),
        1..max,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(
                |(tag, (script, priority, timeout_ms, needs_gpu, uses_dependency))| Task {
                    tag,
                    script,
                    priority,
                    timeout_ms,
                    needs_gpu,
                    uses_dependency,
                },
            )
            .collect()
    })
}

#[derive(Debug, Clone)]
struct Shape {
    workers: usize,
    concurrency: usize,
    max_retries: u32,
    /// Liveness restarts a worker whose task makes no progress this long
    /// (stuck tasks); its other attempts are then lost with it.
    progress_timeout_ms: Option<u64>,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        1usize..4,
        1usize..3,
        0u32..4,
        prop::option::of(300u64..2_500),
    )
        .prop_map(
            |(workers, concurrency, max_retries, progress_timeout_ms)| Shape {
                workers,
                concurrency,
                max_retries,
                progress_timeout_ms,
            },
        )
}

fn options(task: &Task) -> TaskOptions {
    let mut o = TaskOptions::priority(task.priority);
    if let Some(ms) = task.timeout_ms {
        o = o.with_timeout(Duration::from_millis(ms));
    }
    if task.needs_gpu {
        o = o.with_capability("gpu");
    }
    if task.uses_dependency {
        o = o.with_dependency("dep");
    }
    o
}

/// Runs `tasks` through a pool of `shape` on virtual time; returns every
/// broken accounting rule (property 1).
fn check_accounting(shape: Shape, tasks: Vec<Task>, breaker: BreakerSettings) -> Vec<String> {
    run_paused(|| async move {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (shared, epoch) = (log.clone(), tokio::time::Instant::now());
        let config = PoolConfig {
            size: shape.workers,
            concurrency: shape.concurrency,
            task_timeout: Duration::from_secs(2),
            retry: RetryConfig {
                max_retries: shape.max_retries,
                base: Duration::from_millis(100),
                cap: Duration::from_secs(1),
                jitter: 0.3,
                ..Default::default()
            },
            breaker: Some(breaker),
            liveness: Some(candado::LivenessConfig {
                progress_timeout: shape.progress_timeout_ms.map(Duration::from_millis),
                ..candado_pool::PoolDefault::pool_default()
            }),
            ..PoolConfig::default()
        };
        let pool = PoolBuilder::new(move || Runner {
            log: shared.clone(),
            epoch,
        })
        .config(config)
        .capabilities_for(|n| {
            if n == 0 {
                vec!["gpu".into()]
            } else {
                Vec::new()
            }
        })
        .start(&runtime)
        .await
        .unwrap();
        let mut events = pool.subscribe();
        let handles: Vec<_> = tasks
            .iter()
            .map(|t| (t.clone(), pool.submit_with(t.clone(), options(t)).unwrap()))
            .collect();
        let gpu_ids: std::collections::BTreeSet<u64> = handles
            .iter()
            .filter(|(t, _)| t.needs_gpu)
            .map(|(_, h)| h.id())
            .collect();
        let mut problems = Vec::new();
        let attempts_allowed = shape.max_retries as usize + 1;
        // A generous virtual-time deadline turns a lost task into a
        // failing (and shrinkable) case instead of a hang.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4 * 3_600);
        for (task, handle) in handles {
            let id = handle.id();
            let Ok(outcome) = tokio::time::timeout_at(deadline, handle).await else {
                problems.push(format!("task {} ({:?}) never ended", task.tag, task.script));
                continue;
            };
            let stuck_restarts = shape.progress_timeout_ms.is_some();
            let should_succeed = match task.script {
                Script::Succeed => true,
                Script::FailThenSucceed(n) => (n as usize) < attempts_allowed,
                _ => false,
            };
            match (should_succeed, outcome) {
                (true, Ok(tag)) if tag == task.tag => {}
                (_, Err(TaskFailure::DeadLettered { id: dead, attempts }))
                    if !should_succeed
                        || attempts
                            .iter()
                            .any(|a| matches!(a.error, AttemptError::WorkerLost(_))) =>
                {
                    if dead != id {
                        problems.push(format!("task {} dead-lettered as {dead}", task.tag));
                    }
                    if attempts.len() != attempts_allowed {
                        problems.push(format!(
                            "task {}: {} history entries for {attempts_allowed} attempts",
                            task.tag,
                            attempts.len()
                        ));
                    }
                    let numbers: Vec<u32> = attempts.iter().map(|a| a.number).collect();
                    if numbers != (1..=attempts_allowed as u32).collect::<Vec<_>>() {
                        problems.push(format!("task {}: attempt numbers {numbers:?}", task.tag));
                    }
                    let kind_ok = attempts.iter().all(|a| {
                        matches!(
                            (task.script, &a.error),
                            (Script::Panic, AttemptError::Panicked(_))
                                | (Script::Hang, AttemptError::TimedOut(_))
                                | (
                                    Script::AlwaysFail | Script::FailThenSucceed(_),
                                    AttemptError::Failed(_)
                                )
                        ) || (stuck_restarts && matches!(a.error, AttemptError::WorkerLost(_)))
                    });
                    if !kind_ok {
                        problems.push(format!(
                            "task {} ({:?}): errors {:?}",
                            task.tag,
                            task.script,
                            attempts.iter().map(|a| &a.error).collect::<Vec<_>>()
                        ));
                    }
                }
                (_, other) => {
                    problems.push(format!("task {} ({:?}): {other:?}", task.tag, task.script))
                }
            }
        }
        let report = pool.shutdown_gracefully(Duration::from_secs(5)).await;
        if !report.balanced() || report.submitted != tasks.len() as u64 || report.returned != 0 {
            problems.push(format!("books: {report:?}"));
        }
        // Exactly one terminal event per task; gpu tasks only ever ran on
        // worker-0, the only worker with that capability.
        let mut terminal = std::collections::BTreeMap::<u64, u32>::new();
        loop {
            let e = match events.try_recv() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => {
                    problems.push(format!("events: {e}"));
                    break;
                }
            };
            let ran_on = match &e {
                PoolEvent::TaskCompleted { id, worker, .. }
                | PoolEvent::TaskFailed { id, worker, .. } => Some((*id, worker.clone())),
                _ => None,
            };
            if let Some((id, worker)) = ran_on {
                if gpu_ids.contains(&id) && worker != "worker-0" {
                    problems.push(format!("gpu task {id} ran on {worker}"));
                }
            }
            match e {
                PoolEvent::TaskCompleted { id, .. } | PoolEvent::TaskDeadLettered { id, .. } => {
                    *terminal.entry(id).or_default() += 1
                }
                _ => {}
            }
        }
        if terminal.len() != tasks.len() || terminal.values().any(|n| *n != 1) {
            problems.push(format!("terminal events per task: {terminal:?}"));
        }
        runtime.shutdown().await;
        problems
    })
}

/// Short cooldowns: a single worker failing most scripts would otherwise
/// spend hours of virtual time isolated, one probe a minute.
fn fast_breaker() -> BreakerSettings {
    BreakerSettings {
        config: candado::BreakerConfig {
            cooldown_base: Duration::from_secs(1),
            cooldown_cap: Duration::from_secs(4),
            ..Default::default()
        },
        ..BreakerSettings::default()
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// Property 1: every submitted task ends exactly once — completed,
    /// dead-lettered or returned — with one history entry per attempt.
    #[test]
    fn every_task_ends_exactly_once_with_a_full_history(shape in shape(), tasks in tasks(40)) {
        let (shown_shape, shown_tasks) = (shape.clone(), tasks.clone());
        let problems = check_accounting(shape, tasks, fast_breaker());
        prop_assert!(problems.is_empty(), "{:#?}\nshape {:?}\ntasks {:#?}", problems, shown_shape, shown_tasks);
    }

    /// Property 7: among tasks ready at the same time, a task that starts
    /// never has a worse priority than one still waiting (promotion off).
    #[test]
    fn dispatch_never_prefers_a_worse_priority(workers in 1usize..4, priorities in prop::collection::vec(0u8..20, 1..30)) {
        let shown = priorities.clone();
        let problems = run_paused(|| async move {
            let runtime = Runtime::builder().current_thread().build().unwrap();
            let log = Arc::new(Mutex::new(Vec::new()));
            let (shared, epoch) = (log.clone(), tokio::time::Instant::now());
            let config = PoolConfig { size: workers, promote_after: None, ..PoolConfig::default() };
            let pool = PoolBuilder::new(move || Runner { log: shared.clone(), epoch }).config(config).start(&runtime).await.unwrap();
            // Occupy every worker, then queue everything at once.
            let blockers: Vec<_> = (0..workers)
                .map(|i| {
                    let t = Task { tag: 1_000 + i, script: Script::Succeed, priority: 0, timeout_ms: None, needs_gpu: false, uses_dependency: false };
                    pool.submit(t).unwrap()
                })
                .collect();
            settle().await;
            let batch: Vec<_> = priorities
                .iter()
                .enumerate()
                .map(|(tag, p)| (Task { tag, script: Script::Succeed, priority: *p, timeout_ms: None, needs_gpu: false, uses_dependency: false }, TaskOptions::priority(*p)))
                .collect();
            let handles = pool.submit_batch(batch).unwrap();
            for h in blockers.into_iter().chain(handles) {
                h.await.unwrap();
            }
            let started: Vec<(usize, u64)> = log.lock().unwrap().iter().copied().filter(|(tag, _)| *tag < 1_000).collect();
            let rank = |tag: usize| (priorities[tag], tag);
            let mut problems = Vec::new();
            for (a, ta) in &started {
                for (b, tb) in &started {
                    if ta < tb && rank(*a) > rank(*b) {
                        problems.push(format!("task {a} (priority {}) started at {ta} ms before task {b} (priority {}) at {tb} ms", priorities[*a], priorities[*b]));
                    }
                }
            }
            pool.shutdown_gracefully(Duration::from_secs(1)).await;
            runtime.shutdown().await;
            problems
        });
        prop_assert!(problems.is_empty(), "{:#?}\npriorities {:?}", problems, shown);
    }
}

/// Regression (found by property 1 with dependency tasks): one worker whose
/// half-open breaker lent its probes to tasks that then failed through, or
/// were parked for, an open dependency. Nothing gave the probes back, and
/// nothing woke the router once the clock alone released them, so the queue
/// stalled for good. Default (slow) breakers, so it takes virtual hours.
#[test]
fn a_lone_worker_sharing_probes_with_a_dependency_finishes_every_task() {
    use Script::{AlwaysFail, FailThenSucceed, Hang, Succeed};
    let scripts = [
        (FailThenSucceed(3), 5, true),
        (AlwaysFail, 8, true),
        (AlwaysFail, 3, false),
        (AlwaysFail, 3, false),
        (FailThenSucceed(2), 0, true),
        (FailThenSucceed(3), 14, false),
        (AlwaysFail, 16, true),
        (FailThenSucceed(2), 17, true),
        (Hang, 11, true),
        (AlwaysFail, 10, false),
        (AlwaysFail, 16, true),
        (AlwaysFail, 11, true),
        (AlwaysFail, 10, false),
        (AlwaysFail, 15, false),
        (FailThenSucceed(3), 10, false),
        (Hang, 0, true),
        (Succeed, 3, false),
        (AlwaysFail, 10, true),
        (Hang, 13, true),
    ];
    let tasks = scripts
        .into_iter()
        .enumerate()
        .map(|(tag, (script, priority, uses_dependency))| Task {
            tag,
            script,
            priority,
            timeout_ms: None,
            needs_gpu: false,
            uses_dependency,
        })
        .collect();
    let shape = Shape {
        workers: 1,
        concurrency: 1,
        max_retries: 3,
        progress_timeout_ms: None,
    };
    let problems = check_accounting(shape, tasks, BreakerSettings::default());
    assert!(problems.is_empty(), "{problems:#?}");
}
