//! What the pool promises, as the docs state it (issue 17): what counts as
//! in flight, how optional knobs are switched off, and what counts against
//! the queue bound.

mod common;

use std::time::Duration;

use candado::Runtime;
use candado_pool::{PoolBuilder, PoolConfig, SubmitError, TaskContext, TaskHandler, TaskOptions};
use common::*;

/// `0` returns at once; `n` sleeps `n` ms (virtual).
struct Quick;

impl TaskHandler for Quick {
    type Task = u64;
    type Output = u64;
    type Error = String;

    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        ms: u64,
        _: TaskContext,
    ) -> impl std::future::Future<Output = Result<u64, String>> + 'static {
        async move {
            if ms > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok(ms)
        }
    }
}

#[test]
fn in_flight_counts_what_runs_and_reserved_what_a_batch_holds() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let pool = PoolBuilder::new(|| Quick)
            .config(PoolConfig {
                size: 2,
                concurrency: 1,
                batch: 4,
                ..PoolConfig::default()
            })
            .start(&runtime)
            .await
            .unwrap();
        // Instant tasks make both workers' pace short, so while the queue
        // is deep each takes its next tasks four at a time; then the slow
        // ones keep them busy.
        let mut tasks: Vec<_> = (0..20).map(|_| pool.submit(0).unwrap()).collect();
        tasks.extend((0..20).map(|_| pool.submit(100).unwrap()));
        settle().await;
        let m = pool.metrics().await.unwrap();
        assert_eq!(m.tasks.in_flight, 2, "one per worker runs: {:?}", m.tasks);
        assert!(m.tasks.reserved > 0, "batches were taken: {:?}", m.tasks);
        assert!(
            m.per_worker.iter().all(|w| w.in_flight <= 1),
            "{:?}",
            m.per_worker
        );
        let t = &m.tasks;
        assert_eq!(
            t.submitted,
            t.completed + t.dead_lettered + t.returned + t.queued + t.in_flight + t.reserved,
            "{t:?}"
        );
        for task in tasks {
            task.await.unwrap();
        }
        pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn the_snapshot_counts_ready_tasks_by_priority() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let pool = PoolBuilder::new(|| Quick)
            .config(PoolConfig {
                size: 1,
                concurrency: 1,
                batch: 1,
                promote_after: None,
                ..PoolConfig::default()
            })
            .start(&runtime)
            .await
            .unwrap();
        let busy = pool.submit(1_000).unwrap();
        settle().await;
        let urgent = TaskOptions::priority(0);
        let mut tasks = vec![busy];
        tasks.extend((0..3).map(|_| pool.submit(0).unwrap()));
        tasks.extend((0..2).map(|_| pool.submit_with(0, urgent.clone()).unwrap()));
        settle().await;
        let m = pool.metrics().await.unwrap();
        assert_eq!(m.tasks.in_flight, 1, "{:?}", m.tasks);
        assert_eq!(m.tasks.ready_by_priority, [(0, 2), (10, 3)].into());
        assert_eq!(m.tasks.queued, 5);
        for task in tasks {
            task.await.unwrap();
        }
        let m = pool.metrics().await.unwrap();
        assert!(m.tasks.ready_by_priority.is_empty(), "{:?}", m.tasks);
        pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn every_optional_knob_has_a_toml_spelling() {
    let config = PoolConfig::from_toml(
        r#"
        promote_after = "off"
        liveness = "off"
        breaker = false
        autoscale = "off"
        [memory]
        max_tasks = "off"
        max_age = "off"
        warning_percent = "off"
        "#,
    )
    .unwrap();
    assert_eq!(config.promote_after, None);
    assert_eq!(config.liveness, None);
    assert_eq!(config.breaker, None);
    assert_eq!(config.autoscale, None);
    let memory = config.memory.expect("a table switches a section on");
    assert_eq!((memory.max_tasks, memory.max_age), (None, None));
    assert_eq!(memory.warning_percent, None);

    let inner = PoolConfig::from_toml("liveness = true\n[breaker]\nfailure_rate = 0.5\n").unwrap();
    assert_eq!(
        inner.liveness,
        Some(candado_pool::PoolDefault::pool_default()),
        "`true` is the pool's defaults"
    );
    assert_eq!(inner.breaker.unwrap().config.failure_rate, Some(0.5));
    let off =
        PoolConfig::from_toml("[liveness]\nprogress_timeout = \"off\"\nping_interval = \"off\"\n")
            .unwrap()
            .liveness
            .unwrap();
    assert_eq!((off.progress_timeout, off.ping_interval), (None, None));

    // Written back out, `None` says "off", and reads back the same, in TOML
    // and in JSON; JSON's `null` still works.
    let text = toml::to_string(&config).unwrap();
    assert_eq!(PoolConfig::from_toml(&text).unwrap(), config, "{text}");
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(PoolConfig::from_json(&json).unwrap(), config, "{json}");
    let null = PoolConfig::from_json(r#"{"liveness": null, "promote_after": null}"#).unwrap();
    assert_eq!((null.liveness, null.promote_after), (None, None));

    // A misspelling is an error naming what is expected.
    let err = PoolConfig::from_toml("promote_after = \"of\"").unwrap_err();
    assert!(err.to_string().contains("off"), "{err}");
    let err = PoolConfig::from_toml("liveness = \"no\"").unwrap_err();
    assert!(err.to_string().contains("off"), "{err}");
    let err = PoolConfig::from_toml("[liveness]\nheartbeat_timeot = \"1s\"").unwrap_err();
    assert!(err.to_string().contains("heartbeat_timeot"), "{err}");
}

#[test]
fn retries_waiting_for_their_time_count_against_the_queue_bound() {
    run_paused(|| async {
        let h = start(PoolConfig {
            queue_bound: 1,
            ..config(1)
        })
        .await;
        // Fails once, then waits 1 s for its retry: it still holds its
        // place, so the one-task bound refuses a second task meanwhile.
        let retrying = h.pool.submit(Job::FailTimes(1)).unwrap();
        settle().await;
        let m = h.pool.metrics().await.unwrap();
        assert_eq!((m.tasks.retried, m.tasks.queued), (1, 1), "{:?}", m.tasks);
        assert!(matches!(
            h.pool.submit(work(10, 1)),
            Err(SubmitError::QueueFull { bound: 1, .. })
        ));
        // Once the retry is dispatched, its place is free again.
        assert_eq!(retrying.await, Ok(0));
        assert_eq!(h.pool.submit(work(10, 2)).unwrap().await, Ok(2));
        h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
    });
}

#[test]
fn dropping_the_last_pool_handle_shuts_it_down_and_hands_the_work_back() {
    run_paused(|| async {
        let h = start(config(1)).await;
        let supervisor = h.pool.supervisor().clone();
        let running = h.pool.submit(Job::Hang).unwrap();
        let queued = h.pool.submit(work(10, 1)).unwrap();
        settle().await;
        drop(h.pool);
        for handle in [running, queued] {
            let done = tokio::time::timeout(Duration::from_secs(60), handle).await;
            assert!(
                matches!(done, Ok(Err(candado_pool::TaskFailure::Returned { .. }))),
                "{done:?}"
            );
        }
        let stopped = tokio::time::timeout(Duration::from_secs(60), supervisor.join()).await;
        assert!(stopped.is_ok(), "the workers stopped with their pool");
    });
}

#[test]
fn a_runtime_shut_down_under_a_running_pool_hands_its_tasks_back() {
    run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let pool = PoolBuilder::new(|| Quick)
            .config(config(1))
            .start(&runtime)
            .await
            .unwrap();
        let running = pool.submit(3_600_000).unwrap();
        let queued = pool.submit(10).unwrap();
        settle().await;
        runtime.shutdown().await;
        for handle in [running, queued] {
            let done = tokio::time::timeout(Duration::from_secs(60), handle).await;
            assert!(
                matches!(done, Ok(Err(candado_pool::TaskFailure::Returned { .. }))),
                "{done:?}"
            );
        }
        assert!(matches!(
            pool.submit(1),
            Err(SubmitError::ShuttingDown { .. })
        ));
        let report = pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
        assert_eq!(report.returned, 2);
    });
}

#[test]
fn a_pool_torn_down_with_its_system_still_answers_every_handle() {
    let (pool, handles) = run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let pool = PoolBuilder::new(|| Quick)
            .config(config(1))
            .start(&runtime)
            .await
            .unwrap();
        let handles = vec![pool.submit(3_600_000).unwrap(), pool.submit(10).unwrap()];
        settle().await;
        (pool, handles)
    });
    // The system and its threads are gone; the pool handle goes last.
    drop(pool);
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for handle in handles {
        let done =
            executor.block_on(async { tokio::time::timeout(Duration::from_secs(5), handle).await });
        assert!(
            matches!(done, Ok(Err(candado_pool::TaskFailure::Returned { .. }))),
            "{done:?}"
        );
    }
}
