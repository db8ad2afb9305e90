//! Properties 2, 3 and 8 on random supervision trees and fault schedules, on
//! virtual time. A failing case prints the generated tree and schedule.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candado::testkit::drain;
use candado::{
    Event, EventKind, ExitReason, Restart, Runtime, Strategy as RestartStrategy, SupervisorSpec,
};
use common::tree::*;
use common::{config, run_paused, settle};
use proptest::prelude::*;

fn ids(events: &[Event], path: &str, pick: impl Fn(&EventKind) -> Option<&String>) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.supervisor == path)
        .filter_map(|e| pick(&e.kind).cloned())
        .collect()
}

fn started(k: &EventKind) -> Option<&String> {
    match k {
        EventKind::ChildStarted { child, .. } => Some(child),
        _ => None,
    }
}

fn exited(k: &EventKind) -> Option<&String> {
    match k {
        EventKind::ChildExited { child, .. } => Some(child),
        _ => None,
    }
}

fn exit_kind() -> impl proptest::strategy::Strategy<Value = Exit> {
    prop_oneof![Just(Exit::Panic), Just(Exit::Fail), Just(Exit::Normal)]
}

proptest! {
    #![proptest_config(config(32))]

    /// Property 8: after graceful shutdown of any tree, no actor of it is
    /// alive and, at every level, children stopped in reverse start order.
    #[test]
    fn shutdown_stops_everything_in_reverse_start_order(tree in tree()) {
        let problems = run_paused(|| async move {
            let mut problems = Vec::new();
            let runtime = Runtime::builder().current_thread().build().unwrap();
            let mut events = runtime.subscribe();
            let alive = Arc::new(AtomicI64::new(0));
            let root = runtime.start(build(&tree, "r", &alive, None)).await.unwrap();
            settle().await;
            let boot = drain(&mut events);
            root.shutdown().await;
            let down = drain(&mut events);
            let mut paths: Vec<String> = boot.iter().map(|e| e.supervisor.clone()).collect();
            paths.sort();
            paths.dedup();
            for path in &paths {
                let mut expected = ids(&boot, path, started);
                expected.reverse();
                let got = ids(&down, path, exited);
                if got != expected {
                    problems.push(format!("{path}: stopped {got:?}, expected {expected:?}"));
                }
                if !down.iter().any(|e| &e.supervisor == path && matches!(e.kind, EventKind::SupervisorStopped { .. })) {
                    problems.push(format!("{path}: no supervisor_stopped event"));
                }
            }
            let living = alive.load(Ordering::SeqCst);
            if living != 0 {
                problems.push(format!("{living} worker actors still alive"));
            }
            if root.is_running() {
                problems.push("root still running".into());
            }
            problems
        });
        prop_assert!(problems.is_empty(), "{:#?}", problems);
    }

    /// Property 2: after a child's exit, exactly the children its
    /// supervisor's strategy names are restarted, in start order (after the
    /// others stopped in reverse order); temporary children never, transient
    /// ones only after an abnormal exit.
    #[test]
    fn a_failure_restarts_exactly_the_strategys_set(
        tree in tree(),
        pick in any::<prop::sample::Index>(),
        exit in exit_kind(),
    ) {
        let leaves = workers(&tree);
        let (path, target, restart) = leaves[pick.index(leaves.len())].clone();
        let (shown_path, shown_target) = (path.clone(), target.clone());
        let problems = run_paused(|| async move {
            let runtime = Runtime::builder().current_thread().build().unwrap();
            let mut events = runtime.subscribe();
            let alive = Arc::new(AtomicI64::new(0));
            // Budgets large enough that intensity never interferes here.
            let root = runtime.start(build(&tree, "r", &alive, Some(1_000))).await.unwrap();
            settle().await;
            drain(&mut events);
            let sup = resolve(&root, &path).await.expect("supervisor runs");
            sup.worker::<Probe>(&target).await.unwrap().do_send(Die(exit));
            tokio::time::sleep(Duration::from_secs(120)).await;
            settle().await;
            let seen = drain(&mut events);
            let here = event_path("r", &path);

            let siblings = &subtree(&tree, &path).children;
            let t: usize = target[1..].parse().unwrap();
            let abnormal = exit != Exit::Normal;
            let wanted = match restart {
                Restart::Permanent => true,
                Restart::Transient => abnormal,
                Restart::Temporary => false,
            };
            let (expected_exits, expected_starts) = if wanted {
                let members: Vec<usize> = match subtree(&tree, &path).strategy {
                    RestartStrategy::OneForOne => vec![t],
                    RestartStrategy::OneForAll => (0..siblings.len()).collect(),
                    RestartStrategy::RestForOne => (t..siblings.len()).collect(),
                };
                let mut exits = vec![target.clone()];
                exits.extend(members.iter().rev().filter(|&&m| m != t).map(|&m| child_id(m, &siblings[m])));
                let starts = members
                    .iter()
                    .filter(|&&m| m == t || !matches!(siblings[m], Node::Worker(Restart::Temporary)))
                    .map(|&m| child_id(m, &siblings[m]))
                    .collect();
                (exits, starts)
            } else {
                (vec![target.clone()], Vec::new())
            };
            let mut problems = Vec::new();
            let exits = ids(&seen, &here, exited);
            let starts = ids(&seen, &here, started);
            if exits != expected_exits {
                problems.push(format!("{here}: exits {exits:?}, expected {expected_exits:?}"));
            }
            if starts != expected_starts {
                problems.push(format!("{here}: starts {starts:?}, expected {expected_starts:?}"));
            }
            let listed = sup.children().await.unwrap().into_iter().any(|c| c.id == target);
            if restart == Restart::Temporary && listed {
                problems.push(format!("temporary {target} still listed"));
            }
            root.shutdown().await;
            problems
        });
        prop_assert!(problems.is_empty(), "exit {:?} of {} ({:?}) under {:?}: {:#?}", exit, shown_target, restart, shown_path, problems);
    }
}

/// A chain root → … → leaf supervisor holding one permanent worker `w0`,
/// each level with its own budget, and a schedule of crashes.
#[derive(Debug, Clone)]
struct Chain {
    /// (max restarts, period in seconds), root first.
    levels: Vec<(u32, u64)>,
    /// Milliseconds before each crash of `w0`.
    crashes: Vec<u64>,
}

fn chain() -> impl proptest::strategy::Strategy<Value = Chain> {
    (
        prop::collection::vec((0u32..4, 1u64..30), 1..=4),
        prop::collection::vec(0u64..5_000, 1..16),
    )
        .prop_map(|(levels, crashes)| Chain { levels, crashes })
}

fn chain_spec(levels: &[(u32, u64)], alive: &Arc<AtomicI64>) -> SupervisorSpec {
    let tree = levels
        .iter()
        .rev()
        .fold(None::<Tree>, |inner, &(max, period)| {
            Some(Tree {
                strategy: RestartStrategy::OneForOne,
                max_restarts: max,
                period_s: period,
                children: vec![match inner {
                    None => Node::Worker(Restart::Permanent),
                    Some(sub) => Node::Sup(sub),
                }],
            })
        });
    build(&tree.expect("at least one level"), "r", alive, None)
}

proptest! {
    #![proptest_config(config(48))]

    /// Property 3: no supervisor restarts more than N times in any window of
    /// P; past that it escalates exactly once, and its parent either restarts
    /// it within its own budget or gives up in turn (the root gives up fatally).
    #[test]
    fn intensity_is_never_exceeded_and_escalation_climbs_one_level_at_a_time(chain in chain()) {
        let problems = run_paused(|| async move {
            let runtime = Runtime::builder().current_thread().build().unwrap();
            let mut events = runtime.subscribe();
            let alive = Arc::new(AtomicI64::new(0));
            let root = runtime.start(chain_spec(&chain.levels, &alive)).await.unwrap();
            let leaf_path: Vec<String> = (1..chain.levels.len()).map(|_| "s0".to_owned()).collect();
            for delay in &chain.crashes {
                tokio::time::sleep(Duration::from_millis(*delay)).await;
                if !root.is_running() {
                    break;
                }
                if let Some(sup) = resolve(&root, &leaf_path).await {
                    if let Ok(w) = sup.worker::<Probe>("w0").await {
                        w.do_send(Die(Exit::Panic));
                    }
                }
                settle().await;
            }
            tokio::time::sleep(Duration::from_secs(300)).await;
            settle().await;
            let seen = drain(&mut events);
            let mut problems = Vec::new();

            // Budget of each path, and restart times per supervisor incarnation.
            let budget: BTreeMap<String, (u32, u64)> = chain
                .levels
                .iter()
                .enumerate()
                .map(|(depth, b)| (event_path("r", &vec!["s0".to_owned(); depth]), *b))
                .collect();
            let mut restarts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            let mut gave_up: BTreeMap<String, u32> = BTreeMap::new();
            let check = |path: &str, times: &[u64], problems: &mut Vec<String>| {
                let (max, period) = budget[path];
                for (i, t) in times.iter().enumerate() {
                    let in_window = times[i..].iter().filter(|u| **u < t + period * 1000).count();
                    if in_window as u32 > max {
                        problems.push(format!("{path}: {in_window} restarts within {period}s from {t} ms (max {max})"));
                    }
                }
            };
            for e in &seen {
                match &e.kind {
                    EventKind::RestartScheduled { .. } => restarts.entry(e.supervisor.clone()).or_default().push(e.at_ms),
                    EventKind::GaveUp { .. } => *gave_up.entry(e.supervisor.clone()).or_default() += 1,
                    EventKind::SupervisorStopped { .. } => {
                        let times = restarts.remove(&e.supervisor).unwrap_or_default();
                        check(&e.supervisor, &times, &mut problems);
                        if gave_up.remove(&e.supervisor).unwrap_or(0) > 1 {
                            problems.push(format!("{}: gave up more than once in one incarnation", e.supervisor));
                        }
                    }
                    _ => {}
                }
            }
            for (path, times) in &restarts {
                check(path, times, &mut problems);
            }
            // Every give-up escalates once (or is fatal at the root), and the
            // parent answers the escalation: a restart or its own give-up.
            for (i, e) in seen.iter().enumerate() {
                if !matches!(e.kind, EventKind::GaveUp { .. }) {
                    continue;
                }
                let rest = &seen[i + 1..];
                let stop = rest
                    .iter()
                    .position(|x| x.supervisor == e.supervisor && matches!(x.kind, EventKind::SupervisorStopped { .. }))
                    .unwrap_or(rest.len());
                let is_root = e.supervisor == "r";
                let answers = rest[..stop]
                    .iter()
                    .filter(|x| x.supervisor == e.supervisor)
                    .filter(|x| if is_root { matches!(x.kind, EventKind::Fatal { .. }) } else { matches!(x.kind, EventKind::Escalated { .. }) })
                    .count();
                if answers != 1 {
                    problems.push(format!("{}: gave up, then {answers} escalations/fatal events", e.supervisor));
                }
                if is_root {
                    continue;
                }
                let (parent, child) = e.supervisor.rsplit_once('/').unwrap();
                let exit = rest.iter().position(|x| {
                    x.supervisor == parent
                        && matches!(&x.kind, EventKind::ChildExited { child: c, reason: ExitReason::Escalated { .. }, .. } if c == child)
                });
                let Some(exit) = exit else {
                    problems.push(format!("{parent} never saw {child} escalate"));
                    continue;
                };
                let answered = rest[exit + 1..].iter().find(|x| {
                    x.supervisor == parent
                        && (matches!(x.kind, EventKind::GaveUp { .. })
                            || matches!(&x.kind, EventKind::RestartScheduled { child: c, .. } if c == child))
                });
                if answered.is_none() {
                    problems.push(format!("{parent} neither restarted {child} nor gave up"));
                }
            }
            if root.is_running() {
                root.shutdown().await;
            }
            problems
        });
        prop_assert!(problems.is_empty(), "{:#?}", problems);
    }
}
