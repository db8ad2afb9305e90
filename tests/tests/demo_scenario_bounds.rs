//! Property: any scenario file, hostile values included, parses and validates
//! without a panic, and whatever is accepted (before and after scaling) lies
//! within the bounds documented in `candado_demo::bounds`.

use std::time::Duration;

use candado_demo::bounds::{self, MAX_LEAKED_MIB, MAX_TASKS};
use candado_demo::{pool_config, workload::Dependency, Scenario};
use candado_pool::Isolation;
use proptest::prelude::*;

/// A TOML integer: the edges, a hostile spread, and sensible values.
fn integer() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("0".to_owned()),
        1 => Just("-1".to_owned()),
        1 => Just(i64::MAX.to_string()),
        1 => Just(u64::MAX.to_string()), // not a TOML integer: a parse error
        1 => Just("102400".to_owned()),
        1 => Just("1000000".to_owned()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        12 => (1u32..80).prop_map(|n| n.to_string()),
    ]
}

/// A TOML float: NaN, infinities, negatives, huge, and probabilities.
fn float() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("nan".to_owned()),
        1 => Just("inf".to_owned()),
        1 => Just("-inf".to_owned()),
        1 => Just("-0.5".to_owned()),
        1 => Just("1e308".to_owned()),
        1 => Just("0.0".to_owned()),
        1 => Just("1.0".to_owned()),
        12 => (0.0f64..0.15).prop_map(|p| format!("{p:?}")),
    ]
}

/// A humantime duration string.
fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("\"0s\"".to_owned()),
        1 => Just(format!("\"{}s\"", u64::MAX)),
        1 => Just("\"1ns\"".to_owned()),
        1 => Just("\"2h\"".to_owned()),
        1 => any::<u64>().prop_map(|n| format!("\"{n}ms\"")),
        12 => (1_000u64..60_000).prop_map(|n| format!("\"{n}ms\"")),
    ]
}

fn field(
    name: &'static str,
    value: impl Strategy<Value = String>,
) -> impl Strategy<Value = String> {
    // Mostly absent, so that whole files are often valid and the bounds
    // of what is accepted get checked too.
    proptest::option::weighted(0.3, value)
        .prop_map(move |v| v.map_or(String::new(), |v| format!("{name} = {v}\n")))
}

/// Every fault field of a scenario file's `[faults]`.
const FAULTS: [&str; 11] = [
    "panic", "crash", "hang", "starve", "slow", "leak", "spin", "abort", "forget", "brake",
    "overflow",
];

fn scenario_file() -> impl Strategy<Value = String> {
    let top = (
        field("duration", duration()),
        field("rate", integer()),
        field("workers", integer()),
        field("max_workers", integer()),
        field("concurrency", integer()),
        field("queue_bound", integer()),
        field("io_share", float()),
        field("predict_iterations", integer()),
        field("leak_mib", integer()),
        field("worker_memory_limit_mib", integer()),
        field("max_worker_age", duration()),
        field("task_timeout", duration()),
    );
    let rest = (
        field("drain_deadline", duration()),
        field("seed", integer()),
        proptest::collection::vec(proptest::option::weighted(0.3, float()), FAULTS.len()),
        proptest::option::of((duration(), duration())),
    );
    (top, rest).prop_map(|(top, (drain, seed, faults, outage))| {
        let (a, b, c, d, e, f, g, h, i, j, k, l) = top;
        let mut text = [a, b, c, d, e, f, g, h, i, j, k, l, drain, seed].concat();
        text.push_str("[faults]\n");
        for (name, p) in FAULTS.iter().zip(&faults) {
            if let Some(p) = p {
                text.push_str(&format!("{name} = {p}\n"));
            }
        }
        if let Some((start, length)) = outage {
            text.push_str(&format!("[outage]\nstart = {start}\nlength = {length}\n"));
        }
        text
    })
}

fn assert_within_bounds(s: &Scenario) {
    assert!(bounds::DURATION.contains(&s.duration));
    assert!(bounds::RATE.contains(&s.rate));
    assert!(s.task_count() <= MAX_TASKS);
    assert!(bounds::WORKERS.contains(&s.workers));
    assert!(bounds::WORKERS.contains(&s.max_workers) && s.max_workers >= s.workers);
    assert!(bounds::CONCURRENCY.contains(&s.concurrency));
    assert!(bounds::QUEUE_BOUND.contains(&s.queue_bound));
    assert!(bounds::PREDICT_ITERATIONS.contains(&s.predict_iterations));
    let f = &s.faults;
    assert!(bounds::PROBABILITY.contains(&s.io_share));
    assert!(f.all().iter().all(|(_, p)| bounds::PROBABILITY.contains(p)));
    assert!(f.all().iter().map(|(_, p)| p).sum::<f64>() <= 1.0);
    if let Some(o) = s.outage {
        assert!(bounds::OUTAGE_START.contains(&o.start));
        assert!(bounds::OUTAGE_LENGTH.contains(&o.length));
    }
    assert!(bounds::LEAK_MIB.contains(&s.leak_mib));
    assert!(bounds::WORKER_MEMORY_LIMIT_MIB.contains(&s.worker_memory_limit_mib));
    if f.leak > 0.0 || f.forget > 0.0 {
        let held = s.max_workers as u64 * (s.worker_memory_limit_mib + s.leak_mib);
        assert!(held <= MAX_LEAKED_MIB);
    }
    assert!(s
        .max_worker_age
        .is_none_or(|a| bounds::MAX_WORKER_AGE.contains(&a)));
    assert!(bounds::TASK_TIMEOUT.contains(&s.task_timeout));
    assert!(bounds::DRAIN_DEADLINE.contains(&s.drain_deadline));
    // What the run derives from an accepted scenario must not panic either.
    // In the demo's process, only the faults an actor survives.
    assert_eq!(
        pool_config(s, Isolation::InProcess).is_ok(),
        f.process_only().is_empty()
    );
    // As processes, it may be refused (too many), never a panic.
    let _ = pool_config(s, Isolation::Process);
    let _ = Dependency::new(std::time::SystemTime::now(), s.outage);
}

proptest! {
    // About one file in eight is accepted, so the bounds of what is
    // accepted are checked some sixty times a run.
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_and_validation_never_panic_and_accept_only_bounded_values(
        text in scenario_file(),
        factor in prop_oneof![
            Just(0.0), Just(-1.0), Just(f64::NAN), Just(f64::INFINITY), Just(1e-12),
            Just(1e300), 0.01f64..10.0,
        ],
    ) {
        if let Ok(scenario) = Scenario::from_toml(&text) {
            assert_within_bounds(&scenario);
            if let Ok(scaled) = scenario.shortened(factor) {
                assert_within_bounds(&scaled);
            }
        }
    }
}

#[test]
fn a_hostile_file_is_refused_naming_the_field() {
    let text = format!("[outage]\nstart = \"{}s\"\nlength = \"1s\"\n", u64::MAX);
    let err = Scenario::from_toml(&text).unwrap_err();
    assert!(err.to_string().contains("`outage.start`"), "{err}");
    let s = Scenario {
        max_worker_age: Some(Duration::from_secs(3000)),
        ..Scenario::default()
    };
    let err = s.shortened(10.0).unwrap_err();
    assert_eq!(err.field(), "max_worker_age", "{err}");
}

/// A scenario file the bounds accept, short enough to run: every field in
/// range, faults at any mix.
fn runnable_scenario() -> impl Strategy<Value = String> {
    let probability = || (0.0f64..0.15).prop_map(|p| format!("{p:?}"));
    (
        (300u64..800, 20u32..200, 1usize..4, 1usize..3, 1usize..5_000),
        (0u32..20_000, 0u64..4, 1u64..64, 500u64..3_000),
        proptest::collection::vec(probability(), 6),
        proptest::option::of((0u64..500, 1u64..500)),
        any::<u64>(),
    )
        .prop_map(
            |(
                (ms, rate, workers, concurrency, bound),
                (iterations, leak, limit, age),
                faults,
                outage,
                seed,
            )| {
                let mut text = format!(
                    "duration = \"{ms}ms\"\nrate = {rate}\nworkers = {workers}\n\
                     max_workers = {workers}\nconcurrency = {concurrency}\n\
                     queue_bound = {bound}\npredict_iterations = {iterations}\n\
                     leak_mib = {leak}\nworker_memory_limit_mib = {limit}\n\
                     max_worker_age = \"{age}ms\"\ntask_timeout = \"2s\"\n\
                     drain_deadline = \"3s\"\nseed = {}\n[faults]\n",
                    seed >> 1
                );
                for (name, p) in ["panic", "crash", "hang", "starve", "slow", "leak"]
                    .iter()
                    .zip(&faults)
                {
                    text.push_str(&format!("{name} = {p}\n"));
                }
                if let Some((start, length)) = outage {
                    text.push_str(&format!(
                        "[outage]\nstart = \"{start}ms\"\nlength = \"{length}ms\"\n"
                    ));
                }
                text
            },
        )
}

proptest! {
    // Real threads and real time: a few short runs.
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn every_accepted_scenario_runs_and_loses_nothing(text in runnable_scenario()) {
        let scenario = Scenario::from_toml(&text).expect("the generator makes valid files");
        let options = candado_demo::RunOptions {
            live: candado_demo::LiveMode::Off,
            threads: Some(2),
            isolation: Isolation::InProcess,
            serve: None,
        };
        let report = actix::System::new()
            .block_on(candado_demo::run(&scenario, options))
            .expect("the scenario runs");
        prop_assert_eq!(report.lost, 0, "{:#?}", report);
        prop_assert!(report.books_agree, "{:#?}", report);
        prop_assert_eq!(
            report.submitted,
            report.completed + report.dead_lettered + report.returned
        );
    }
}
