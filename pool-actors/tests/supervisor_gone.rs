//! A pool whose worker supervisor gave up says so and holds nothing for
//! ever.

mod common;

use std::time::Duration;

use candado::HealthStatus;
use candado_pool::{PoolConfig, PoolError, PoolEvent, RestartSettings, SubmitError, TaskFailure};
use common::*;

#[test]
fn a_pool_whose_supervisor_gave_up_says_so_and_holds_nothing_for_ever() {
    run_paused(|| async {
        let mut h = start(PoolConfig {
            restart: RestartSettings {
                intensity: candado::Intensity {
                    max_restarts: 2,
                    ..RestartSettings::default().intensity
                },
                ..Default::default()
            },
            ..config(2)
        })
        .await;
        // One task that kills its worker on every attempt (4 attempts by
        // default): the third crash exceeds the supervisor's intensity.
        let poison = h.pool.submit(Job::CrashAlways).unwrap();
        let waiting = h.pool.submit(work(10, 1)).unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(600), poison)
            .await
            .expect("the poison task's handle resolves");
        assert!(
            matches!(outcome, Err(TaskFailure::DeadLettered { .. })),
            "{outcome:?}"
        );
        let other = tokio::time::timeout(Duration::from_secs(600), waiting)
            .await
            .expect("every handle resolves");
        // It either ran before the end, or is dead-lettered with the pool.
        assert!(
            matches!(other, Ok(1) | Err(TaskFailure::DeadLettered { .. })),
            "{other:?}"
        );
        settle().await;
        let events = drain(&mut h.events);
        assert!(
            events.iter().any(|e| matches!(e, PoolEvent::Failed { .. })),
            "{events:?}"
        );
        let m = h.pool.metrics().await.unwrap();
        assert_eq!(m.health.status, HealthStatus::Critical);
        assert!(!m.health.ready);
        assert!(m.health.failed.is_some());
        assert_eq!(h.pool.size(), 0);
        assert!(matches!(
            h.pool.submit(work(10, 2)),
            Err(SubmitError::PoolFailed { .. })
        ));
        assert!(h.pool.scale_up(1).await.is_err());
        let dead = h.pool.dead_letters().await.unwrap();
        assert!(!dead.is_empty());
        assert!(matches!(
            h.pool.replay(dead[0].id).await,
            Err(PoolError::Failed(_))
        ));
        let report = h.pool.shutdown_gracefully(Duration::from_secs(1)).await;
        assert!(report.balanced(), "{report:?}");
    });
}
