//! Exits and restarts carry a typed cause that strategies set in their
//! verdicts, whatever the reason text says. On virtual time.

mod common;

use std::time::Duration;

use candado::{
    ChildInfo, ChildLink, ChildSpec, Decisions, Event, EventKind, ExitReason, FixedSampler,
    HealLimit, HealthCause, HealthStrategy, Liveness, LivenessCause, LivenessConfig, MemoryCause,
    MemoryConfig, MemoryGuard, MemorySample, RestartCause, ShutdownPolicy, Signal, SupervisorRef,
    SupervisorSpec, Verdict,
};
use common::*;
use tokio::time::Instant;

const GIB: u64 = 1024 * 1024 * 1024;

fn plenty_of_memory() -> FixedSampler {
    FixedSampler::new(MemorySample {
        process_rss: GIB,
        system_total: 100 * GIB,
        system_available: 90 * GIB,
        cgroup: None,
    })
}

/// Waits for `child`'s first restart; returns its exit and restart events.
async fn first_restart(events: &mut candado::EventStream, child: &str) -> (Event, Event) {
    let exited = events
        .wait_for(|e| matches!(&e.kind, EventKind::ChildExited { child: c, .. } if c == child))
        .await
        .unwrap();
    let restarted = events
        .wait_for(|e| matches!(&e.kind, EventKind::ChildRestarted { child: c, .. } if c == child))
        .await
        .unwrap();
    (exited, restarted)
}

/// The cause on the exit, on the restart and in the snapshot, which must agree.
async fn cause_everywhere(
    root: &SupervisorRef,
    child: &str,
    (exited, restarted): (Event, Event),
) -> RestartCause {
    let EventKind::ChildExited { reason, .. } = exited.kind else {
        unreachable!()
    };
    let EventKind::ChildRestarted { cause, .. } = restarted.kind else {
        unreachable!()
    };
    assert_eq!(reason.cause(), cause, "exit and restart agree");
    let info: Vec<ChildInfo> = root.children().await.unwrap();
    let info = info.iter().find(|c| c.id == child).unwrap();
    assert_eq!(info.last_cause, Some(cause), "the snapshot agrees");
    cause
}

#[test]
fn age_and_task_recycles_carry_their_memory_cause() {
    run_paused(|| async {
        let guard = MemoryGuard::new(MemoryConfig {
            max_age: Some(Duration::from_secs(3600)),
            max_tasks: Some(100),
            ..Default::default()
        })
        .unwrap()
        .with_sampler(plenty_of_memory());
        let spec = SupervisorSpec::new("root")
            .health(guard)
            .child(ChildSpec::worker("busy", |link: ChildLink| {
                if link.incarnation() == 1 {
                    link.add_tasks_done(100);
                }
                Echo::new(link)
            }))
            .child(ChildSpec::worker("old", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        let busy = first_restart(&mut events, "busy").await;
        let cause = cause_everywhere(&root, "busy", busy).await;
        assert_eq!(
            cause,
            RestartCause::Health(HealthCause::Memory(MemoryCause::Tasks))
        );
        assert_eq!(cause.key(), "tasks");
        let old = first_restart(&mut events, "old").await;
        let cause = cause_everywhere(&root, "old", old).await;
        assert_eq!(
            cause,
            RestartCause::Health(HealthCause::Memory(MemoryCause::Age))
        );
        assert_eq!(cause.key(), "age");
        root.shutdown().await;
    });
}

#[test]
fn liveness_restarts_say_whether_the_child_was_silent_or_stuck() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root")
            .health(
                Liveness::new(LivenessConfig {
                    ping_interval: None,
                    progress_timeout: Some(Duration::from_secs(30)),
                    ..Default::default()
                })
                .unwrap(),
            )
            .heal_limit(HealLimit {
                min_gap: Duration::ZERO,
                ..Default::default()
            })
            .child(
                ChildSpec::worker("silent", Echo::new)
                    .shutdown(ShutdownPolicy::Timeout(Duration::ZERO)),
            )
            .child(ChildSpec::worker("stuck", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        root.worker::<Echo>("silent")
            .await
            .unwrap()
            .do_send(Starve(Duration::from_secs(7200)));
        let silent = first_restart(&mut events, "silent").await;
        let cause = cause_everywhere(&root, "silent", silent).await;
        assert_eq!(
            cause,
            RestartCause::Health(HealthCause::Liveness(LivenessCause::Silent))
        );
        assert_eq!(cause.key(), "liveness");

        root.worker::<Echo>("stuck")
            .await
            .unwrap()
            .do_send(BeginWork("job"));
        let stuck = first_restart(&mut events, "stuck").await;
        let cause = cause_everywhere(&root, "stuck", stuck).await;
        assert_eq!(
            cause,
            RestartCause::Health(HealthCause::Liveness(LivenessCause::Stuck))
        );
        root.shutdown().await;
    });
}

/// A strategy named like the memory guard, with its recycle wording, that
/// restarts for a reason of its own.
#[derive(Debug, Clone)]
struct Impostor;

impl HealthStrategy for Impostor {
    fn name(&self) -> &str {
        "memory"
    }

    fn on_signal(&mut self, _: Instant, child: &str, signal: &Signal, out: &mut Decisions) {
        if matches!(signal, Signal::Started { incarnation: 1 }) {
            out.set(
                child,
                Verdict::Restart {
                    cause: HealthCause::Other,
                    reason: "recycled: up for 1.0s".into(),
                },
            );
        }
    }

    fn on_tick(&mut self, _: Instant, _: &mut Decisions) {}
}

#[test]
fn the_cause_is_what_the_strategy_said_not_what_its_name_or_text_suggest() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root")
            .health(Impostor)
            .child(ChildSpec::worker("w", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        let restart = first_restart(&mut events, "w").await;
        let EventKind::ChildExited { reason, .. } = &restart.0.kind else {
            unreachable!()
        };
        assert!(matches!(reason, ExitReason::Unhealthy { strategy, .. } if strategy == "memory"));
        let cause = cause_everywhere(&root, "w", restart).await;
        assert_eq!(cause, RestartCause::Health(HealthCause::Other));
        assert_eq!(cause.key(), "unhealthy");
        root.shutdown().await;
    });
}

#[test]
fn a_panic_restart_carries_the_panic_cause() {
    run_paused(|| async {
        let spec = SupervisorSpec::new("root").child(ChildSpec::worker("w", Echo::new));
        let (_rt, mut events, root) = start_local(spec).await;
        root.worker::<Echo>("w")
            .await
            .unwrap()
            .do_send(Crash("boom"));
        let restart = first_restart(&mut events, "w").await;
        let cause = cause_everywhere(&root, "w", restart).await;
        assert_eq!(cause, RestartCause::Panic);
        assert_eq!(cause.key(), "panic");
        root.shutdown().await;
    });
}
