//! `/metrics` after a known sequence of events: names, types and values.

mod common;

use std::sync::Arc;
use std::time::Duration;

use candado::{ChildSpec, EventKind, Runtime, SupervisorSpec};
use candado_observe::Observer;
use candado_pool::{PoolBuilder, PoolConfig, RetryConfig, TaskContext, TaskHandler, TaskOptions};
use common::*;
use tokio::sync::Notify;

/// What a test task does.
#[derive(Debug, Clone)]
enum Job {
    Succeed,
    Fail,
    /// Says it started, then waits until let go.
    Hold {
        started: Arc<Notify>,
        gate: Arc<Notify>,
    },
}

struct Jobs;

impl TaskHandler for Jobs {
    type Task = Job;
    type Output = ();
    type Error = String;

    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        job: Job,
        _: TaskContext,
    ) -> impl std::future::Future<Output = Result<(), String>> + 'static {
        async move {
            match job {
                Job::Succeed => Ok(()),
                Job::Fail => Err("refused".into()),
                Job::Hold { started, gate } => {
                    started.notify_one();
                    gate.notified().await;
                    Ok(())
                }
            }
        }
    }
}

fn quick_retry() -> RetryConfig {
    RetryConfig {
        max_retries: 1,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(1),
        jitter: 0.0,
        ..Default::default()
    }
}

#[test]
fn a_scrape_after_known_restarts_and_tasks_shows_their_names_types_and_values() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let tree = SupervisorSpec::new("app")
            .backoff(no_backoff())
            .child(ChildSpec::worker("flaky", |_| Flaky));
        let root = runtime.start(tree).await.unwrap();
        let pool = PoolBuilder::new(|| Jobs)
            .config(PoolConfig {
                name: "jobs".into(),
                size: 2,
                retry: quick_retry(),
                ..PoolConfig::default()
            })
            .start(&runtime)
            .await
            .unwrap();
        let observer = Observer::builder(&runtime)
            .tree(&root)
            .pool(&pool)
            .build()
            .unwrap();
        let mut feed = observer.subscribe();

        // Two panics of `flaky`, each restarted.
        for _ in 0..2 {
            let flaky = root.worker::<Flaky>("flaky").await.unwrap();
            flaky.do_send(Boom);
            within(
                "the restart",
                feed.wait_for(|e| matches!(&e.kind, EventKind::ChildRestarted { child, .. } if child == "flaky")),
            )
            .await
            .unwrap();
        }
        // Three tasks succeed (one through `db`); one fails twice and is
        // dead-lettered.
        let db = TaskOptions::default().with_dependency("db");
        let tasks = vec![
            pool.submit(Job::Succeed).unwrap(),
            pool.submit(Job::Succeed).unwrap(),
            pool.submit_with(Job::Succeed, db).unwrap(),
        ];
        let doomed = pool.submit(Job::Fail).unwrap();
        for task in tasks {
            within("a task", task).await.unwrap();
        }
        assert!(within("the failing task", doomed).await.is_err());

        let server = observer.serve("127.0.0.1:0").unwrap();
        let response = get(server.local_addr(), "/metrics").await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );
        let text = &response.body;
        assert!(text.ends_with("# EOF\n"), "{text}");
        for line in [
            // Runtime, from events.
            "# TYPE candado_restarts counter",
            r#"candado_restarts_total{supervisor="app",reason="panic"} 2"#,
            "# TYPE candado_child_exits counter",
            r#"candado_child_exits_total{supervisor="app",reason="panic"} 2"#,
            "candado_events_lagged_total 0",
            "# TYPE candado_threads_stuck counter",
            "candado_threads_stuck_total 0",
            // Runtime, from snapshots.
            "# TYPE candado_children gauge",
            r#"candado_tree_up{tree="app"} 1"#,
            r#"candado_children{supervisor="app",state="running"} 1"#,
            r#"candado_children{supervisor="app",state="restarting"} 0"#,
            r#"candado_children_health{supervisor="app",health="healthy"} 1"#,
            r#"candado_children{supervisor="jobs",state="running"} 2"#,
            // The pool.
            r#"candado_pool_up{pool="jobs"} 1"#,
            r#"candado_pool_ready{pool="jobs"} 1"#,
            r#"candado_pool_workers{pool="jobs"} 2"#,
            "# TYPE candado_pool_tasks_submitted counter",
            r#"candado_pool_tasks_submitted_total{pool="jobs"} 4"#,
            r#"candado_pool_tasks_completed_total{pool="jobs"} 3"#,
            r#"candado_pool_tasks_failed_total{pool="jobs"} 2"#,
            r#"candado_pool_tasks_retried_total{pool="jobs"} 1"#,
            r#"candado_pool_tasks_dead_lettered_total{pool="jobs"} 1"#,
            r#"candado_pool_tasks_returned_total{pool="jobs"} 0"#,
            r#"candado_pool_in_flight{pool="jobs"} 0"#,
            r#"candado_pool_retries_waiting{pool="jobs"} 0"#,
            "# TYPE candado_pool_task_latency_recent_seconds gauge",
            "# UNIT candado_pool_task_latency_recent_seconds seconds",
            "# TYPE candado_pool_queue_wait_recent_seconds gauge",
            // Lifetime histograms: 3 completions; 5 dispatches (4 tasks and
            // the failing one's retry), all well under a second.
            "# TYPE candado_pool_task_latency_seconds histogram",
            "# UNIT candado_pool_task_latency_seconds seconds",
            r#"candado_pool_task_latency_seconds_count{pool="jobs"} 3"#,
            r#"candado_pool_task_latency_seconds_bucket{le="+Inf",pool="jobs"} 3"#,
            r#"candado_pool_task_latency_seconds_bucket{le="1.0",pool="jobs"} 3"#,
            "# TYPE candado_pool_queue_wait_seconds histogram",
            r#"candado_pool_queue_wait_seconds_count{pool="jobs"} 5"#,
            "# TYPE candado_pool_worker_reuse_ratio gauge",
            r#"candado_pool_dependency_breaker_state{pool="jobs",dependency="db",state="closed"} 1"#,
            r#"candado_pool_dependency_breaker_state{pool="jobs",dependency="db",state="open"} 0"#,
            "# TYPE candado_pool_worker_breaker_state gauge",
        ] {
            assert_line(text, line);
        }
        let latency = text
            .lines()
            .find(|l| l.starts_with(r#"candado_pool_task_latency_recent_seconds{pool="jobs",quantile="1"}"#))
            .unwrap_or_else(|| panic!("no latency in\n{text}"));
        let seconds: f64 = latency.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((0.0..BOUND.as_secs_f64()).contains(&seconds), "{latency}");
        assert!(
            !text.contains("task_id") && !text.contains("id=\""),
            "no per-task labels"
        );
        // A family is written once it has a sample: nothing was refused,
        // escalated or measured here.
        for absent in [
            "heal_limit_refusals",
            "escalations",
            "process_rss",
            "pool_worker_rss",
        ] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }

        server.stop(false).await;
        pool.shutdown_gracefully(Duration::from_secs(1)).await;
        runtime.shutdown().await;
    });
}

#[test]
fn queue_depth_is_counted_by_priority_and_an_emptied_priority_reads_zero() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let pool = PoolBuilder::new(|| Jobs)
            .config(PoolConfig {
                name: "solo".into(),
                size: 1,
                batch: 1,
                promote_after: None,
                ..PoolConfig::default()
            })
            .start(&runtime)
            .await
            .unwrap();
        let observer = Observer::builder(&runtime).pool(&pool).build().unwrap();
        let (started, gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let hold = Job::Hold {
            started: started.clone(),
            gate: gate.clone(),
        };
        let held = pool.submit(hold).unwrap();
        within("the held task's start", started.notified()).await;
        let mut waiting = Vec::new();
        for priority in [0, 0, 5] {
            let options = TaskOptions::priority(priority);
            waiting.push(pool.submit_with(Job::Succeed, options).unwrap());
        }
        // The worker holds one task; three wait.
        let text = within("a scrape", observer.render_metrics()).await;
        assert_line(&text, r#"candado_pool_in_flight{pool="solo"} 1"#);
        assert_line(
            &text,
            r#"candado_pool_queue_depth{pool="solo",priority="0"} 2"#,
        );
        assert_line(
            &text,
            r#"candado_pool_queue_depth{pool="solo",priority="5"} 1"#,
        );

        gate.notify_one();
        within("the held task", held).await.unwrap();
        for task in waiting {
            within("a waiting task", task).await.unwrap();
        }
        let text = within("a scrape", observer.render_metrics()).await;
        assert_line(
            &text,
            r#"candado_pool_queue_depth{pool="solo",priority="0"} 0"#,
        );
        assert_line(
            &text,
            r#"candado_pool_queue_depth{pool="solo",priority="5"} 0"#,
        );

        pool.shutdown_gracefully(Duration::from_secs(1)).await;
        runtime.shutdown().await;
    });
}
