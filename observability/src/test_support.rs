//! Snapshots built by hand, for the unit tests.

use candado::{
    ChildInfo, ChildKind, ChildStatus, HealthStatus, Restart, ShutdownPolicy, Strategy,
    SupervisorInfo,
};

use crate::TreeSnapshot;

/// A running worker with this health (and a reason when not healthy).
pub(crate) fn child(id: &str, health: HealthStatus) -> ChildInfo {
    ChildInfo {
        id: id.into(),
        kind: ChildKind::Worker,
        restart: Restart::Permanent,
        shutdown: ShutdownPolicy::Timeout(std::time::Duration::from_secs(5)),
        significant: false,
        ignored: false,
        status: ChildStatus::Running,
        incarnation: 1,
        restarts: 0,
        last_exit: None,
        last_cause: None,
        uptime: None,
        placement: None,
        backoff_attempt: 0,
        health,
        health_reason: (health != HealthStatus::Healthy).then(|| "heal limit reached".into()),
        isolated: health != HealthStatus::Healthy,
    }
}

/// A supervisor at `path` with these children and subtrees.
pub(crate) fn tree(
    path: &str,
    children: Vec<ChildInfo>,
    subtrees: Vec<TreeSnapshot>,
) -> TreeSnapshot {
    TreeSnapshot {
        supervisor: SupervisorInfo {
            path: path.into(),
            strategy: Strategy::OneForOne,
            ticks: 0,
            restarts_in_period: 0,
            health: children.iter().map(|c| c.health).max().unwrap_or_default(),
            children,
        },
        subtrees,
    }
}

/// A running pool's metrics with every count at 0.
pub(crate) fn pool_metrics() -> candado_pool::PoolMetrics {
    use candado_pool::{HealthSection, PoolMetrics, PoolSection};
    PoolMetrics {
        pool: PoolSection {
            name: "jobs".into(),
            size: 1,
            uptime_ms: 1,
        },
        workers: Default::default(),
        tasks: Default::default(),
        performance: Default::default(),
        health: HealthSection {
            status: HealthStatus::Healthy,
            ready: true,
            failed: None,
            alerts: Vec::new(),
        },
        per_worker: Vec::new(),
    }
}
