//! The worker supervisor, as the router learns of it: its events turned
//! into router news, a resync from the supervisor itself whenever events
//! were missed (routing state never depends on a lossy channel), and a
//! watch for the supervisor giving up.

use std::sync::{Arc, OnceLock};

use candado::{
    EventKind, EventStreamError, ExitReason, HealthCause, Runtime, SupervisorRef, VerdictKind,
};

use crate::router::{Routers, WorkerNews, WorkerState};
use crate::TaskHandler;

/// Forwards the events of supervisor `name` to `router`. Subscribed before
/// the supervisor starts (so nothing is missed); `supervisor` is filled in
/// once it has, for resyncs.
pub(crate) fn forward<H: TaskHandler>(
    runtime: &Runtime,
    name: &str,
    router: Routers<H>,
    supervisor: Arc<OnceLock<SupervisorRef>>,
) {
    let mut events = runtime.subscribe();
    let name = name.to_owned();
    // Weak: the forwarder must not keep a dropped pool's router alive.
    let router = router.downgrade();
    runtime.control_arbiter().spawn(async move {
        loop {
            let news = match events.recv().await {
                Ok(event) if event.supervisor == name => match news_of(event.kind) {
                    Some(news) => news,
                    None => continue,
                },
                Ok(_) => continue,
                Err(EventStreamError::Lagged(missed)) => {
                    tracing::warn!(
                        pool = %name,
                        missed,
                        "pool fell behind its supervisor's events; resyncing from the supervisor"
                    );
                    let Some(supervisor) = supervisor.get() else {
                        continue;
                    };
                    // Stopped: the watch below tells the router.
                    let Some(news) = resync(supervisor).await else {
                        continue;
                    };
                    news
                }
                Err(EventStreamError::Closed) => return,
            };
            let Some(router) = router.upgrade() else {
                return;
            };
            router.news(news);
        }
    });
}

/// Every worker's state, asked of `supervisor` itself (`None` once it has
/// stopped).
async fn resync(supervisor: &SupervisorRef) -> Option<WorkerNews> {
    let children = supervisor.children().await.ok()?;
    Some(WorkerNews::Resync(
        children
            .into_iter()
            .map(|c| WorkerState {
                last_exit: c.last_exit.as_ref().map(restart_reason),
                worker: c.id,
                status: c.health,
                isolated: c.isolated,
                restarts: c.restarts,
            })
            .collect(),
    ))
}

/// Router news carried by one event of the worker supervisor, if any.
fn news_of(kind: EventKind) -> Option<WorkerNews> {
    Some(match kind {
        EventKind::HealthChanged {
            child,
            status,
            isolated,
            ..
        } => WorkerNews::Health {
            worker: child,
            status,
            isolated,
        },
        EventKind::ChildExited {
            child,
            incarnation,
            reason,
        } => WorkerNews::Exited {
            worker: child,
            incarnation,
            reason: restart_reason(&reason),
        },
        EventKind::ChildRestarted {
            child, restarts, ..
        } => WorkerNews::Restarted {
            worker: child,
            restarts,
        },
        EventKind::VerdictChanged {
            child,
            verdict: VerdictKind::Restart,
            cause: Some(HealthCause::Liveness(_)),
            reason,
            ..
        } => WorkerNews::Zombie {
            worker: child,
            reason: reason.unwrap_or_default(),
        },
        EventKind::Alert(alert) => WorkerNews::Alert(alert),
        _ => return None,
    })
}

/// Tells `router` if the worker supervisor stops while the pool runs: it
/// gave up (restart intensity exceeded), or it was stopped from outside
/// (the runtime shut down under the pool). A stop the pool asked for (its
/// own shutdown) changes nothing.
pub(crate) fn watch<H: TaskHandler>(
    runtime: &Runtime,
    supervisor: SupervisorRef,
    router: Routers<H>,
) {
    let router = router.downgrade();
    runtime.control_arbiter().spawn(async move {
        let reason = supervisor.join().await;
        if let Some(router) = router.upgrade() {
            router.news(WorkerNews::SupervisorGone {
                // Stopped on purpose (the runtime shut down), or gave up.
                stopped: !reason.is_abnormal(),
                reason: reason.to_string(),
            });
        }
    });
}

/// The metric key of a worker restart's cause: the typed cause's stable
/// key (`panic`, `liveness`, `memory`, `age`, `tasks`, `failed`, `killed`,
/// `start_failed`, `escalated`, `normal`, `shutdown`, ...), never a reading
/// of the reason text.
pub(crate) fn restart_reason(reason: &ExitReason) -> String {
    reason.cause().key().to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use candado::{HealthStatus, Runtime};

    use super::*;
    use crate::{PoolBuilder, PoolConfig, TaskContext, TaskHandler};

    struct Crasher;

    impl TaskHandler for Crasher {
        type Task = bool;
        type Output = ();
        type Error = String;

        #[allow(clippy::manual_async_fn)]
        fn handle(
            &mut self,
            crash: bool,
            ctx: TaskContext,
        ) -> impl std::future::Future<Output = Result<(), String>> + 'static {
            if crash && ctx.attempt() == 1 {
                panic!("the worker crashes");
            }
            async { Ok(()) }
        }
    }

    #[test]
    fn restart_metric_keys_follow_the_typed_cause_not_the_wording() {
        use candado::{LivenessCause, MemoryCause};
        let unhealthy = |cause, reason: &str| ExitReason::Unhealthy {
            strategy: "memory".into(),
            cause,
            reason: reason.into(),
        };
        let age = HealthCause::Memory(MemoryCause::Age);
        let tasks = HealthCause::Memory(MemoryCause::Tasks);
        let leak = HealthCause::Memory(MemoryCause::Leak);
        let silent = HealthCause::Liveness(LivenessCause::Silent);
        assert_eq!(
            restart_reason(&unhealthy(age, "retired for old age")),
            "age"
        );
        assert_eq!(
            restart_reason(&unhealthy(tasks, "recycled: up for 1s")),
            "tasks"
        );
        assert_eq!(
            restart_reason(&unhealthy(leak, "recycled: 9 tasks")),
            "memory"
        );
        assert_eq!(restart_reason(&unhealthy(silent, "")), "liveness");
        assert_eq!(restart_reason(&ExitReason::Panic("x".into())), "panic");
        assert_eq!(restart_reason(&ExitReason::Killed), "killed");
    }

    #[test]
    fn a_resync_replaces_whatever_news_was_missed_with_the_supervisors_own_view() {
        crate::test_support::paused_system().block_on(async {
            let runtime = Runtime::builder().current_thread().build().unwrap();
            let pool = PoolBuilder::new(|| Crasher)
                .config(PoolConfig {
                    size: 2,
                    ..PoolConfig::default()
                })
                .start(&runtime)
                .await
                .unwrap();
            pool.submit(true).unwrap().await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            // As if the news had been missed: the router believes worker-0
            // critical and knows of no restart.
            pool.router().news(WorkerNews::Health {
                worker: "worker-0".into(),
                status: HealthStatus::Critical,
                isolated: true,
            });
            let stale = pool.metrics().await.unwrap();
            assert_eq!(stale.per_worker[0].health, HealthStatus::Critical);
            let news = resync(pool.supervisor())
                .await
                .expect("the supervisor runs");
            pool.router().news(news);
            let m = pool.metrics().await.unwrap();
            assert!(m
                .per_worker
                .iter()
                .all(|w| w.health == HealthStatus::Healthy));
            assert_eq!(m.workers.ready, 2, "both workers are back in service");
            assert_eq!(m.performance.restarts_by_reason.get("panic"), Some(&1));
            pool.shutdown_gracefully(Duration::from_secs(1)).await;
        });
    }
}
