//! Memory samples crossing thresholds at random times: system memory steps
//! through calm, warning and critical levels while children report their own
//! sizes in heartbeats. On virtual time, against a model of the guard:
//! - a memory restart is ordered on exactly the ticks where the sample is
//!   critical and the settle time since the previous one has passed, and it
//!   hits the child reporting the most memory;
//! - every other child is degraded while the level is at or above warning,
//!   and healthy below it.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use actix::{Actor, Context};
use candado::{
    ChildLink, ChildSpec, EventKind, FixedSampler, HealLimit, HealthStatus, MemoryConfig,
    MemoryGuard, Runtime, ShutdownPolicy, SupervisorSpec, VerdictKind,
};
use common::{config, run_paused, settle};
use proptest::prelude::*;

/// A child that reports a fixed size, in every incarnation.
struct Child {
    link: ChildLink,
    bytes: u64,
}

impl Actor for Child {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.link.set_memory(self.bytes);
    }
}

/// System memory in use, as a whole percent of 100 GiB (the test kit's).
use candado::testkit::memory_sample as sample;

#[derive(Debug, Clone)]
struct Case {
    tick_ms: u64,
    /// Thresholds sit half a percent above a whole number, so a sample is
    /// never exactly on one (the boundary itself is an example test).
    warning: u64,
    critical: u64,
    settle_s: u64,
    /// Megabytes each child reports (distinct).
    sizes: Vec<u64>,
    /// (used percent, length in ticks), after a calm start.
    steps: Vec<(u64, u64)>,
}

impl Case {
    fn warning_percent(&self) -> f64 {
        self.warning as f64 + 0.5
    }
    fn critical_percent(&self) -> f64 {
        self.critical as f64 + 0.5
    }
    fn level(&self, used: u64) -> &'static str {
        if used > self.critical {
            "critical"
        } else if used > self.warning {
            "warning"
        } else {
            "calm"
        }
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![250u64, 500, 1_000]),
        50u64..90,
        1u64..9,
        15u64..40,
        prop::sample::subsequence((1u64..=16).collect::<Vec<_>>(), 1..6),
    )
        .prop_flat_map(|(tick_ms, warning, gap, settle_s, sizes)| {
            let critical = (warning + gap).min(99);
            let used = prop_oneof![
                0u64..=warning,
                (warning + 1)..=critical,
                (critical + 1)..=100,
            ];
            (
                Just((tick_ms, warning, critical, settle_s)),
                Just(sizes).prop_shuffle(),
                prop::collection::vec((used, 1u64..40), 1..10),
            )
        })
        .prop_map(
            |((tick_ms, warning, critical, settle_s), sizes, steps)| Case {
                tick_ms,
                warning,
                critical,
                settle_s,
                sizes,
                steps,
            },
        )
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn memory_restarts_and_degradation_follow_the_samples(case in case()) {
        let shown = case.clone();
        let problems = run_paused(|| async move {
            let tick = Duration::from_millis(case.tick_ms);
            let sampler = FixedSampler::new(sample(10));
            let guard = MemoryGuard::new(MemoryConfig {
                warning_percent: Some(case.warning_percent()),
                critical_percent: Some(case.critical_percent()),
                settle: Duration::from_secs(case.settle_s),
                brake_floor: None,
                leak_rate_per_min: None,
                ..MemoryConfig::default()
            })
            .unwrap()
            .with_sampler(sampler.clone());
            // The heal limit (3 an hour by default) would defer most orders;
            // this property is about the guard's own choices.
            let heal_limit = HealLimit { max: 1_000, period: Duration::from_secs(60), min_gap: Duration::ZERO };
            let mut spec = SupervisorSpec::new("r").tick_interval(tick).heal_limit(heal_limit).health(guard);
            for (i, mb) in case.sizes.iter().enumerate() {
                let bytes = mb << 20;
                spec = spec.child(
                    ChildSpec::worker(format!("c{i}"), move |link| Child { link, bytes })
                        .shutdown(ShutdownPolicy::Timeout(Duration::ZERO)),
                );
            }
            let largest = case.sizes.iter().enumerate().max_by_key(|(_, mb)| **mb).map(|(i, _)| format!("c{i}")).unwrap();
            let runtime = Runtime::builder().current_thread().build().unwrap();
            let mut events = runtime.subscribe();
            let root = runtime.start(spec).await.unwrap();
            let t0 = tokio::time::Instant::now();

            // Ticks fall on multiples of `tick`; steps change half a tick off
            // them, after a calm start long enough for every size to arrive.
            let calm_ticks = 3_000u64.div_ceil(case.tick_ms) + 1;
            let mut boundary = calm_ticks * case.tick_ms + case.tick_ms / 2;
            let mut used_at = Vec::new(); // (from ms, used)
            used_at.push((0, 10));
            let mut problems = Vec::new();
            for &(used, ticks) in &case.steps {
                tokio::time::sleep_until(t0 + Duration::from_millis(boundary)).await;
                sampler.set(sample(used));
                used_at.push((boundary, used));
                boundary += ticks * case.tick_ms;
                // Just before the step ends (a quarter tick after its last tick).
                tokio::time::sleep_until(t0 + Duration::from_millis(boundary - case.tick_ms / 4)).await;
                settle().await;
                let expect = if used > case.warning { HealthStatus::Degraded } else { HealthStatus::Healthy };
                for child in root.children().await.unwrap() {
                    if child.id != largest && child.health != expect {
                        problems.push(format!(
                            "{} at {} ms, {}% used ({}): {:?}, expected {expect:?}",
                            child.id, boundary - case.tick_ms / 4, used, case.level(used), child.health
                        ));
                    }
                }
            }
            let end = boundary;
            tokio::time::sleep_until(t0 + Duration::from_millis(end + 100)).await;
            settle().await;

            // The model: every tick in the run, against the sample then in force.
            let used_then = |ms: u64| used_at.iter().rev().find(|(from, _)| *from <= ms).map_or(10, |(_, u)| *u);
            let mut expected = Vec::new();
            let mut last: Option<u64> = None;
            for k in 1..=end / case.tick_ms {
                let at = k * case.tick_ms;
                let settled = last.is_none_or(|l| at - l >= case.settle_s * 1_000);
                if used_then(at) > case.critical && settled {
                    expected.push((at, largest.clone()));
                    last = Some(at);
                }
            }
            let mut ordered = Vec::new();
            let mut restarted = BTreeMap::<String, u32>::new();
            while let Ok(Some(e)) = events.try_recv() {
                match &e.kind {
                    EventKind::VerdictChanged { strategy, child, verdict: VerdictKind::Restart, .. } if strategy == "memory" => {
                        ordered.push((e.at_ms, child.clone()));
                    }
                    EventKind::ChildRestarted { child, .. } => *restarted.entry(child.clone()).or_default() += 1,
                    _ => {}
                }
            }
            if ordered != expected {
                problems.push(format!("memory restarts (ms, child) {ordered:?}, model {expected:?}"));
            }
            let before_end = expected.iter().filter(|(at, _)| *at + 11_000 <= end).count() as u32;
            let done = restarted.get(&largest).copied().unwrap_or(0);
            if done < before_end || done as usize > expected.len() {
                problems.push(format!("{largest} restarted {done} times for {} orders", expected.len()));
            }
            if restarted.keys().any(|c| *c != largest) {
                problems.push(format!("restarts {restarted:?}: only {largest} is ever a victim"));
            }
            root.shutdown().await;
            problems
        });
        prop_assert!(problems.is_empty(), "{:#?}\n{:#?}", problems, shown);
    }
}
