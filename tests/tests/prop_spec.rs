//! The framework's own knobs, sane and hostile: a generated `SupervisorSpec`
//! (intensity, backoff, tick, heal limit, liveness, memory and breaker
//! strategies) that validates must start its children, survive what they do
//! for a few virtual minutes and shut down — no panic, no hang (issue 16).

mod common;

use std::time::Duration;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message};
use candado::{
    BackoffConfig, BreakerConfig, BreakerStrategy, BreakerStrategyConfig, ChildLink, ChildSpec,
    FixedSampler, HealLimit, Liveness, LivenessConfig, MemoryConfig, MemoryGuard, MemorySample,
    Runtime, ShutdownPolicy, Strategy as RestartStrategy, SupervisorRef, SupervisorSpec,
    VictimPolicy,
};
use common::panics::{self, DELIBERATE};
use common::{config, run_paused, settle};
use proptest::prelude::*;

/// A child that does what it is told.
struct Puppet {
    link: ChildLink,
}

impl Actor for Puppet {
    type Context = Context<Self>;
}

/// Something a child does, at some point of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
enum Act {
    Panic,
    Fail,
    Stop,
    /// Reports a task outcome, through the `db` dependency or not.
    Outcome {
        dependency: bool,
        success: bool,
    },
    /// Reports this much memory in its heartbeats.
    Memory(u64),
    /// Begins work it never progresses on.
    Stuck,
    /// Blocks its own context for this many virtual seconds.
    Starve(u64),
}

impl Handler<Act> for Puppet {
    type Result = ();

    fn handle(&mut self, act: Act, ctx: &mut Context<Self>) {
        match act {
            Act::Panic => std::panic::panic_any(DELIBERATE),
            Act::Fail => self.link.fail(ctx, "told to fail"),
            Act::Stop => ctx.stop(),
            Act::Outcome {
                dependency,
                success,
            } => self
                .link
                .report_outcome(dependency.then_some("db"), success),
            Act::Memory(bytes) => self.link.set_memory(bytes),
            Act::Stuck => self.link.begin_work("stuck"),
            Act::Starve(s) => {
                ctx.wait(actix::fut::wrap_future(tokio::time::sleep(
                    Duration::from_secs(s),
                )));
            }
        }
    }
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        Just(Act::Panic),
        Just(Act::Fail),
        Just(Act::Stop),
        (any::<bool>(), any::<bool>()).prop_map(|(dependency, success)| Act::Outcome {
            dependency,
            success
        }),
        prop::sample::select(vec![0, 1 << 20, 1 << 33, u64::MAX]).prop_map(Act::Memory),
        Just(Act::Stuck),
        (1u64..120).prop_map(Act::Starve),
    ]
}

/// Durations from nothing to the longest there is.
fn duration() -> impl Strategy<Value = Duration> {
    let sane = prop::sample::select(vec![
        Duration::from_millis(100),
        Duration::from_secs(1),
        Duration::from_secs(5),
        Duration::from_secs(30),
        Duration::from_secs(120),
    ]);
    let hostile = prop::sample::select(vec![
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(1),
        Duration::from_millis(1),
        Duration::from_secs(86_400 * 365 * 100),
        Duration::from_secs(u64::MAX),
        Duration::MAX / 2 + Duration::from_secs(1),
        Duration::MAX,
    ]);
    prop_oneof![2 => sane, 1 => hostile]
}

fn count() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 1u32..6, 1 => prop::sample::select(vec![0, u32::MAX])]
}

fn fraction() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => prop::sample::select(vec![0.0, 0.2, 0.5, 1.0]),
        1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, -1.0, 1.5, -0.0, 1e-300]),
    ]
}

fn percent() -> impl Strategy<Value = Option<f64>> {
    prop::option::of(prop_oneof![
        3 => prop::sample::select(vec![0.0, 50.0, 85.0, 95.0, 100.0]),
        1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 100.5]),
    ])
}

fn bytes() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(prop::sample::select(vec![0, 1, 1 << 20, 1 << 33, u64::MAX]))
}

fn liveness() -> impl Strategy<Value = LivenessConfig> {
    (
        prop::option::of(duration()),
        duration(),
        prop::option::of(duration()),
        duration(),
        count(),
        prop::option::of(duration()),
    )
        .prop_map(|(hi, ht, pi, pt, miss, progress)| LivenessConfig {
            heartbeat_interval: hi,
            heartbeat_timeout: ht,
            ping_interval: pi,
            pong_timeout: pt,
            miss_threshold: miss,
            progress_timeout: progress,
        })
}

fn memory() -> impl Strategy<Value = (MemoryConfig, MemorySample)> {
    let thresholds = (percent(), percent(), bytes(), bytes(), bytes(), bytes());
    let timing = (
        duration(),
        bytes(),
        count(),
        duration(),
        bytes(),
        duration(),
        prop::option::of(duration()),
        prop::option::of(prop::sample::select(vec![0u64, 1, 3, u64::MAX])),
        duration(),
        any::<bool>(),
    );
    let sample = (
        prop::sample::select(vec![0u64, 1 << 20, 1 << 33, u64::MAX]),
        prop::sample::select(vec![0u64, 1 << 20, 1 << 33, u64::MAX]),
        prop::sample::select(vec![0u64, 1 << 34, u64::MAX]),
    )
        .prop_map(
            |(process_rss, system_available, system_total)| MemorySample {
                process_rss,
                system_available,
                system_total,
                cgroup: None,
            },
        );
    (thresholds, timing, sample).prop_map(|(t, m, sample)| {
        let config = MemoryConfig {
            warning_percent: t.0,
            critical_percent: t.1,
            warning_rss: t.2,
            critical_rss: t.3,
            child_warning_bytes: t.4,
            child_critical_bytes: t.5,
            victim: if m.9 {
                VictimPolicy::Oldest
            } else {
                VictimPolicy::LargestReported
            },
            settle: m.0,
            brake_floor: m.1,
            brake_limit: m.2,
            brake_reset: m.3,
            leak_rate_per_min: m.4,
            leak_window: m.5,
            max_age: m.6,
            max_tasks: m.7,
            report_interval: m.8,
        };
        (config, sample)
    })
}

fn breaker() -> impl Strategy<Value = BreakerConfig> {
    (
        (
            count(),
            prop::option::of(fraction()),
            0usize..30,
            0usize..30,
        ),
        (count(), count(), duration(), duration(), duration()),
    )
        .prop_map(
            |((failure_threshold, failure_rate, rate_window, rate_min_calls), b)| BreakerConfig {
                failure_threshold,
                failure_rate,
                rate_window,
                rate_min_calls,
                success_threshold: b.0,
                half_open_probes: b.1,
                cooldown_base: b.2,
                cooldown_cap: b.3,
                stability_window: b.4,
            },
        )
}

/// Every knob of one supervisor.
#[derive(Debug, Clone)]
struct Knobs {
    strategy: RestartStrategy,
    max_restarts: u32,
    period: Duration,
    backoff: BackoffConfig,
    tick: Duration,
    heal: HealLimit,
    liveness: Option<LivenessConfig>,
    memory: Option<(MemoryConfig, MemorySample)>,
    breaker: Option<BreakerConfig>,
    /// Every child's shutdown policy.
    shutdown: ShutdownPolicy,
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        (common::tree::strategy(), count(), duration()),
        (duration(), duration(), fraction(), duration()),
        duration(),
        (count(), duration(), duration()),
        (
            prop::option::of(liveness()),
            prop::option::of(memory()),
            prop::option::of(breaker()),
        ),
        prop::option::of(duration()),
    )
        .prop_map(
            |((strategy, max_restarts, period), b, tick, h, (liveness, memory, breaker), stop)| {
                Knobs {
                    strategy,
                    max_restarts,
                    period,
                    backoff: BackoffConfig {
                        base: b.0,
                        cap: b.1,
                        jitter: b.2,
                        stability_window: b.3,
                        ..BackoffConfig::default()
                    },
                    tick,
                    heal: HealLimit {
                        max: h.0,
                        period: h.1,
                        min_gap: h.2,
                    },
                    liveness,
                    memory,
                    breaker,
                    shutdown: stop.map_or(ShutdownPolicy::Infinity, ShutdownPolicy::Timeout),
                }
            },
        )
}

/// Mends the knobs validation would refuse, keeping the hostile values it
/// accepts (a nanosecond, `Duration::MAX`, `u32::MAX`): most cases then run.
fn repair(k: &mut Knobs) {
    let nonzero = |d: &mut Duration| {
        if d.is_zero() {
            *d = Duration::from_nanos(1);
        }
    };
    nonzero(&mut k.period);
    nonzero(&mut k.tick);
    nonzero(&mut k.heal.period);
    k.backoff.cap = k.backoff.cap.max(k.backoff.base);
    if !(0.0..=1.0).contains(&k.backoff.jitter) {
        k.backoff.jitter = 0.5;
    }
    if let Some(l) = &mut k.liveness {
        if let Some(i) = &mut l.heartbeat_interval {
            nonzero(i);
        }
        match l.heartbeat_interval {
            Some(i) if i == Duration::MAX => l.heartbeat_interval = None,
            Some(i) if l.heartbeat_timeout <= i => {
                l.heartbeat_timeout = i + Duration::from_nanos(1)
            }
            _ => {}
        }
        if let Some(p) = &mut l.ping_interval {
            nonzero(p);
        }
        nonzero(&mut l.pong_timeout);
        l.miss_threshold = l.miss_threshold.max(1);
        if let Some(p) = &mut l.progress_timeout {
            nonzero(p);
        }
    }
    if let Some((m, _)) = &mut k.memory {
        for p in [&mut m.warning_percent, &mut m.critical_percent] {
            if p.is_some_and(|v| !(0.0..=100.0).contains(&v)) {
                *p = None;
            }
        }
        if let (Some(w), Some(c)) = (m.warning_percent, m.critical_percent) {
            (m.warning_percent, m.critical_percent) = (Some(w.min(c)), Some(w.max(c)));
        }
        if let (Some(w), Some(c)) = (m.warning_rss, m.critical_rss) {
            (m.warning_rss, m.critical_rss) = (Some(w.min(c)), Some(w.max(c)));
        }
        if let (Some(w), Some(c)) = (m.child_warning_bytes, m.child_critical_bytes) {
            (m.child_warning_bytes, m.child_critical_bytes) = (Some(w.min(c)), Some(w.max(c)));
        }
        m.brake_limit = m.brake_limit.max(1);
        nonzero(&mut m.report_interval);
        nonzero(&mut m.leak_window);
    }
    if let Some(b) = &mut k.breaker {
        b.failure_threshold = b.failure_threshold.max(1);
        b.success_threshold = b.success_threshold.max(1);
        b.half_open_probes = b.half_open_probes.max(b.success_threshold);
        if b.failure_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
            b.failure_rate = None;
        }
        b.rate_window = b.rate_window.max(1);
        b.rate_min_calls = b.rate_min_calls.min(b.rate_window);
        b.cooldown_cap = b.cooldown_cap.max(b.cooldown_base);
    }
}

/// The spec `knobs` describe with `children` puppets, or `None` where a
/// constructor or the validation refuses a knob (a typed error, never a
/// panic).
fn spec(knobs: &Knobs, children: usize) -> Option<SupervisorSpec> {
    let mut spec = SupervisorSpec::new("root")
        .strategy(knobs.strategy)
        .intensity(knobs.max_restarts, knobs.period)
        .backoff(knobs.backoff)
        .tick_interval(knobs.tick)
        .heal_limit(knobs.heal);
    if let Some(l) = knobs.liveness {
        spec = spec.health(Liveness::new(l).ok()?);
    }
    if let Some((m, sample)) = knobs.memory {
        spec = spec.health(
            MemoryGuard::new(m)
                .ok()?
                .with_sampler(FixedSampler::new(sample)),
        );
    }
    if let Some(b) = knobs.breaker {
        let config = BreakerStrategyConfig {
            child: b,
            dependency: b,
        };
        spec = spec.health(BreakerStrategy::new(config).ok()?);
    }
    for n in 0..children {
        spec = spec.child(
            ChildSpec::worker(format!("w{n}"), |link| Puppet { link }).shutdown(knobs.shutdown),
        );
    }
    spec.validate().ok()?;
    Some(spec)
}

/// Sends each `(child, act)` in turn, a virtual second apart, to whoever
/// runs that child then.
async fn perform(root: &SupervisorRef, acts: &[(usize, Act)], children: usize) {
    for (child, act) in acts {
        if let Ok(puppet) = root
            .worker::<Puppet>(&format!("w{}", child % children))
            .await
        {
            puppet.do_send(*act);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        settle().await;
    }
}

/// Runs `spec` on virtual time; returns every broken promise.
fn run(spec: SupervisorSpec, acts: Vec<(usize, Act)>, children: usize) -> Vec<String> {
    run_paused(|| async move {
        let mut problems = Vec::new();
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let started = tokio::time::timeout(Duration::from_secs(600), runtime.start(spec)).await;
        match started {
            Ok(Ok(root)) => {
                perform(&root, &acts, children).await;
                // A virtual minute in steps, so every timer gets its turn
                // (a 1 ms tick, the shortest, costs ~1 s of real time per
                // virtual minute in a debug build).
                for _ in 0..6 {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    settle().await;
                }
            }
            // A tree that gave up at start (a zero restart budget and a
            // child that failed) is fine: it said so.
            Ok(Err(_)) => {}
            Err(_) => problems.push("start hung".to_owned()),
        }
        if tokio::time::timeout(Duration::from_secs(3_600), runtime.shutdown())
            .await
            .is_err()
        {
            problems.push("shutdown hung".to_owned());
        }
        problems
    })
}

const REAL_TIME_LIMIT: Duration = Duration::from_secs(30);

fn check(knobs: &Knobs, acts: Vec<(usize, Act)>, children: usize) -> (Vec<String>, bool) {
    let _serial = panics::watch();
    let _watchdog = panics::Watchdog::arm(
        REAL_TIME_LIMIT,
        format!("{knobs:#?}\nacts {acts:?}\nchildren {children}"),
    );
    let built = std::panic::catch_unwind(|| spec(knobs, children));
    let mut problems = panics::unexpected();
    let ran = match built {
        Err(_) => {
            problems.push("building or validating the spec panicked".to_owned());
            false
        }
        Ok(None) => false,
        Ok(Some(spec)) => {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(spec, acts, children)
            })) {
                Ok(found) => problems.extend(found),
                Err(_) => problems.push("the run panicked".to_owned()),
            }
            true
        }
    };
    problems.extend(panics::unexpected());
    (problems, ran)
}

proptest! {
    #![proptest_config(config(64))]

    /// A spec that validates runs and stops: no panic, no hang.
    #[test]
    fn valid_specs_run_and_stop_cleanly(
        mut knobs in knobs(),
        mend in prop::bool::weighted(0.8),
        children in 1usize..=3,
        acts in prop::collection::vec((0usize..3, act()), 0..8),
    ) {
        if mend {
            repair(&mut knobs);
        }
        let (problems, _) = check(&knobs, acts.clone(), children);
        prop_assert!(problems.is_empty(), "{:#?}\nknobs {:#?}\nacts {:?}", problems, knobs, acts);
    }
}
