//! Generated pool configurations, sane and hostile, parsed and then *run*:
//! whatever `PoolConfig::from_toml` accepts must start, carry a few tasks of
//! every kind through a few virtual minutes, and shut down with balanced
//! books — no panic, no hang (issue 16).

mod common;

use std::future::Future;
use std::time::Duration;

use candado::Runtime;
use candado_pool::{
    Blame, PoolBuilder, PoolConfig, ShutdownMode, TaskContext, TaskHandler, TaskOptions,
    UnfinishedAction, MAX_WORKERS,
};
use common::panics::{self, DELIBERATE};
use common::{config, run_paused, settle};
use proptest::prelude::*;

/// What a task does on every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Ok,
    Fail,
    /// Fails through the `db` dependency (its breaker counts it).
    DependencyDown,
    /// Fails with an error the handler blames on its worker (the worker's
    /// breaker counts it).
    WorkerBroken,
    /// Panics inside the task's future.
    Panic,
    /// Panics in the handler itself, killing its worker.
    Crash,
    /// Works this many virtual seconds, then succeeds.
    Slow(u64),
    /// Never finishes (ends by timeout, or is returned at shutdown).
    Hang,
}

struct Runner;

impl TaskHandler for Runner {
    type Task = Job;
    type Output = u8;
    type Error = String;

    fn handle(
        &mut self,
        job: Job,
        _ctx: TaskContext,
    ) -> impl Future<Output = Result<u8, String>> + 'static {
        if job == Job::Crash {
            std::panic::panic_any(DELIBERATE);
        }
        async move {
            match job {
                Job::Ok | Job::Crash => Ok(1),
                Job::Fail | Job::DependencyDown => Err("scripted failure".into()),
                Job::WorkerBroken => Err("worker: scripted breakage".into()),
                Job::Panic => std::panic::panic_any(DELIBERATE),
                Job::Slow(s) => {
                    tokio::time::sleep(Duration::from_secs(s)).await;
                    Ok(2)
                }
                Job::Hang => std::future::pending().await,
            }
        }
    }

    fn blame(&self, error: &String) -> Blame {
        if error.starts_with("worker:") {
            Blame::Worker
        } else {
            Blame::Task
        }
    }
}

fn job() -> impl Strategy<Value = Job> {
    prop_oneof![
        3 => Just(Job::Ok),
        2 => Just(Job::Fail),
        1 => Just(Job::DependencyDown),
        1 => Just(Job::WorkerBroken),
        1 => Just(Job::Panic),
        1 => Just(Job::Crash),
        2 => (1u64..90).prop_map(Job::Slow),
        1 => Just(Job::Hang),
    ]
}

/// One TOML value: mostly sane, sometimes hostile.
fn pick(sane: &'static [&'static str], hostile: &'static [&'static str]) -> BoxedStrategy<String> {
    let sane = prop::sample::select(sane).prop_map(str::to_owned);
    if hostile.is_empty() {
        return sane.boxed();
    }
    let hostile = prop::sample::select(hostile).prop_map(str::to_owned);
    prop_oneof![3 => sane, 1 => hostile].boxed()
}

fn duration() -> BoxedStrategy<String> {
    pick(
        &[r#""100ms""#, r#""1s""#, r#""5s""#, r#""30s""#, r#""2m""#],
        &[
            r#""0s""#,
            r#""1ns""#,
            r#""1us""#,
            r#""1ms""#,
            r#""18446744073709551615s""#,
            r#""18446744073709551615s 999999999ns""#,
            r#""9223372036854775807s""#,
            r#""100years""#,
            r#""1000000000h""#,
            r#""-1s""#,
            r#""1.5s""#,
            "5",
        ],
    )
}

fn count_u32() -> BoxedStrategy<String> {
    pick(
        &["1", "2", "3", "5", "10"],
        &["0", "4294967295", "4294967296", "-1"],
    )
}

fn count_u64() -> BoxedStrategy<String> {
    pick(
        &["1", "1024", "1048576", "1073741824"],
        &[
            "0",
            "9223372036854775807",
            "18446744073709551615",
            "-1",
            "1.5",
        ],
    )
}

fn count_usize() -> BoxedStrategy<String> {
    pick(
        &["1", "2", "4", "10", "100"],
        &["0", "10000", "4294967295", "9223372036854775807", "-3"],
    )
}

fn percent() -> BoxedStrategy<String> {
    pick(
        &["50.0", "85.0", "95.0", "100.0"],
        &[
            "nan", "inf", "-inf", "-1.0", "0.0", "100.1", "1e308", "5e-324",
        ],
    )
}

fn rate() -> BoxedStrategy<String> {
    pick(
        &["0.1", "0.5", "1.0"],
        &["0.0", "nan", "inf", "-0.1", "1.5", "-0.0"],
    )
}

/// `key = value` lines, each field present or not.
fn fields(spec: Vec<(&'static str, BoxedStrategy<String>)>) -> BoxedStrategy<String> {
    let lines: Vec<_> = spec
        .into_iter()
        .map(|(key, value)| {
            prop::option::weighted(0.4, value)
                .prop_map(move |v| v.map(|v| format!("{key} = {v}\n")).unwrap_or_default())
        })
        .collect();
    lines.prop_map(|l| l.concat()).boxed()
}

/// A `[name]` section with some of its fields, or nothing.
fn section(
    name: &'static str,
    spec: Vec<(&'static str, BoxedStrategy<String>)>,
) -> BoxedStrategy<String> {
    prop::option::weighted(0.5, fields(spec))
        .prop_map(move |body| body.map(|b| format!("[{name}]\n{b}")).unwrap_or_default())
        .boxed()
}

fn top_level() -> BoxedStrategy<String> {
    let size = prop_oneof![
        12 => (1usize..=4).prop_map(|n| format!("size = {n}\n")),
        1 => prop::sample::select(vec![0, MAX_WORKERS, MAX_WORKERS + 1, u32::MAX as usize])
            .prop_map(|n| format!("size = {n}\n")),
    ];
    let rest = fields(vec![
        (
            "name",
            pick(&[r#""pool""#, r#""p-1""#], &[r#""""#, r#""a/b""#]),
        ),
        ("min_size", pick(&["1", "2"], &["0", "5", "10001"])),
        (
            "max_size",
            pick(
                &["4", "8", "64"],
                &["0", "10000", "10001", "18446744073709551615"],
            ),
        ),
        ("concurrency", count_usize()),
        ("batch", count_usize()),
        (
            "dispatch",
            pick(&[r#""round_robin""#, r#""least_loaded""#], &[r#""random""#]),
        ),
        ("queue_bound", count_usize()),
        ("worker_shutdown_timeout", duration()),
        ("task_timeout", duration()),
        ("promote_after", duration()),
        ("yield_every", count_u32()),
        (
            "capabilities",
            pick(&["[]", r#"["gpu"]"#], &[r#"[""]"#, "[1]"]),
        ),
        ("dead_letter_capacity", count_usize()),
        ("router_tick", duration()),
        // Sane ticks only: a 1 ms tick over minutes of virtual time costs
        // real seconds (prop_spec covers the shortest).
        (
            "supervisor_tick",
            pick(&[r#""100ms""#, r#""1s""#, r#""5s""#], &[r#""0s""#, "1"]),
        ),
    ]);
    (size, rest).prop_map(|(s, r)| s + &r).boxed()
}

/// TOML text of a `PoolConfig`, every field and section possibly present.
fn config_text() -> impl Strategy<Value = String> {
    let retry = section(
        "retry",
        vec![
            ("max_retries", count_u32()),
            ("base", duration()),
            ("cap", duration()),
            ("jitter", rate()),
        ],
    );
    let restart = section(
        "restart",
        vec![
            ("max_restarts", count_u32()),
            ("period", duration()),
            // The older names of `base` and `cap`; both at once is a
            // duplicate key, refused.
            ("backoff_base", duration()),
            ("backoff_cap", duration()),
            ("base", duration()),
            ("cap", duration()),
            (
                "multiplier",
                pick(&["1.0", "2.0", "3.5"], &["0.5", "nan", "inf", "1e308"]),
            ),
            (
                "delays",
                pick(
                    &[r#"["1s", "5s"]"#, r#"["100ms"]"#],
                    &[
                        "[]",
                        r#"["5s", "1s"]"#,
                        r#"["1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s"]"#,
                    ],
                ),
            ),
            ("jitter", rate()),
            ("stability_window", duration()),
        ],
    );
    let liveness = section(
        "liveness",
        vec![
            ("heartbeat_interval", duration()),
            ("heartbeat_timeout", duration()),
            ("ping_interval", duration()),
            ("pong_timeout", duration()),
            ("miss_threshold", count_u32()),
            ("progress_timeout", duration()),
        ],
    );
    let memory = section(
        "memory",
        vec![
            ("warning_percent", percent()),
            ("critical_percent", percent()),
            ("warning_rss", count_u64()),
            ("critical_rss", count_u64()),
            ("child_warning_bytes", count_u64()),
            ("child_critical_bytes", count_u64()),
            ("brake_floor", count_u64()),
            ("brake_limit", count_u32()),
            ("brake_reset", duration()),
            ("leak_rate_per_min", count_u64()),
            ("leak_window", duration()),
            ("max_age", duration()),
            ("max_tasks", count_u64()),
            (
                "victim",
                pick(&[r#""oldest""#, r#""largest_reported""#], &[r#""newest""#]),
            ),
            ("settle", duration()),
            ("report_interval", duration()),
        ],
    );
    let breaker = section(
        "breaker",
        vec![
            ("failure_threshold", count_u32()),
            ("failure_rate", rate()),
            ("success_threshold", count_u32()),
            ("half_open_probes", count_u32()),
            ("cooldown_base", duration()),
            ("cooldown_cap", duration()),
            ("stability_window", duration()),
            ("rate_window", count_usize()),
            ("rate_min_calls", count_usize()),
            (
                "max_ejected_percent",
                pick(&["0", "50", "100"], &["101", "255", "256", "-1"]),
            ),
        ],
    );
    let heal_limit = section(
        "heal_limit",
        vec![
            ("max", count_u32()),
            ("period", duration()),
            ("min_gap", duration()),
        ],
    );
    let autoscale = section(
        "autoscale",
        vec![
            ("check_every", duration()),
            ("queue_per_worker", count_usize()),
            ("idle_checks", count_u32()),
        ],
    );
    (
        top_level(),
        retry,
        restart,
        liveness,
        memory,
        breaker,
        heal_limit,
        autoscale,
    )
        .prop_map(|(top, a, b, c, d, e, f, g)| [top, a, b, c, d, e, f, g].concat())
}

/// What is done with a pool once started.
#[derive(Debug, Clone)]
struct Plan {
    /// Tasks, each with its own attempt timeout or the pool's.
    jobs: Vec<(Job, Option<Duration>)>,
    /// Virtual seconds waited, one step at a time.
    steps: Vec<u64>,
    stop: ShutdownMode,
}

fn plan() -> impl Strategy<Value = Plan> {
    let timeout = prop::option::weighted(
        0.3,
        prop::sample::select(vec![
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(1),
            Duration::from_secs(1),
            Duration::from_secs(86_400 * 365 * 100),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ]),
    );
    // A graceful shutdown waits up to its deadline for tasks that may
    // never end (a `Hang` under a century's timeout): the deadline is bounded.
    let stop = prop_oneof![
        3 => prop::sample::select(vec![0u64, 1, 1_000, 30_000_000_000])
            .prop_map(|ns| ShutdownMode::Graceful { deadline: Duration::from_nanos(ns) }),
        1 => Just(ShutdownMode::Immediate { unfinished: UnfinishedAction::Return }),
        1 => Just(ShutdownMode::Immediate { unfinished: UnfinishedAction::DeadLetter }),
    ];
    (
        prop::collection::vec((job(), timeout), 0..6),
        prop::collection::vec(1u64..60, 1..4),
        stop,
    )
        .prop_map(|(jobs, steps, stop)| Plan { jobs, steps, stop })
}

/// Starts what `config` describes, follows `plan` on virtual time; returns
/// every broken promise.
fn run(config: PoolConfig, plan: Plan) -> Vec<String> {
    run_paused(|| async move {
        let mut problems = Vec::new();
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let pool = match tokio::time::timeout(
            Duration::from_secs(60),
            PoolBuilder::new(|| Runner).config(config).start(&runtime),
        )
        .await
        {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => return vec![format!("an accepted config did not start: {e}")],
            Err(_) => return vec!["start hung".to_owned()],
        };
        let mut handles = Vec::new();
        for (job, timeout) in plan.jobs {
            // Refusals (a full queue) are fine; they are not counted.
            let mut options = match job {
                Job::DependencyDown => TaskOptions::default().with_dependency("db"),
                _ => TaskOptions::default(),
            };
            options.timeout = timeout;
            if let Ok(h) = pool.submit_with(job, options) {
                handles.push((job, h));
            }
        }
        for s in plan.steps {
            tokio::time::sleep(Duration::from_secs(s)).await;
            settle().await;
        }
        let shutdown = pool.shutdown(plan.stop);
        match tokio::time::timeout(Duration::from_secs(600), shutdown).await {
            Ok(report) => {
                if !report.balanced() || report.submitted != handles.len() as u64 {
                    problems.push(format!(
                        "books: {report:?} for {} accepted tasks",
                        handles.len()
                    ));
                }
            }
            Err(_) => problems.push(format!("shutdown ({:?}) hung", plan.stop)),
        }
        for (job, handle) in handles {
            if tokio::time::timeout(Duration::from_secs(60), handle)
                .await
                .is_err()
            {
                problems.push(format!("a {job:?} task never resolved"));
            }
        }
        if tokio::time::timeout(Duration::from_secs(600), runtime.shutdown())
            .await
            .is_err()
        {
            problems.push("runtime shutdown hung".to_owned());
        }
        problems
    })
}

/// Real time one case may take before the process is stopped as hung (a
/// loop that never yields does not let virtual time, or a timeout, move).
const REAL_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Parses `text`; if accepted with at most 4 workers, runs it. Returns the
/// problems and whether it ran.
fn check(text: &str, plan: Plan) -> (Vec<String>, bool) {
    let _serial = panics::watch();
    let _watchdog = panics::Watchdog::arm(REAL_TIME_LIMIT, format!("{text}\n{plan:?}"));
    let parsed = std::panic::catch_unwind(|| PoolConfig::from_toml(text));
    let mut problems = panics::unexpected();
    let ran = match parsed {
        Err(_) => {
            problems.push("from_toml panicked".to_owned());
            false
        }
        Ok(Err(_)) => false,
        Ok(Ok(config)) if config.size > 4 => false,
        Ok(Ok(config)) => {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(config, plan))) {
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
    #![proptest_config(config(96))]

    /// Whatever parses, runs: no panic anywhere, no hang, balanced books,
    /// every handle resolved.
    #[test]
    fn accepted_configs_start_run_and_stop_cleanly(
        text in config_text(),
        plan in plan(),
    ) {
        let (problems, _) = check(&text, plan.clone());
        prop_assert!(problems.is_empty(), "{:#?}\nconfig:\n{}\n{:?}", problems, text, plan);
    }
}

/// Accepted configurations the property found defects in; each ran into a
/// panic or a hang before its fix.
const FOUND: &[(&str, &str)] = &[
    (
        // size × queue_per_worker overflowed in the autoscaler's task,
        // which died: the pool stopped scaling.
        "autoscale queue_per_worker near usize::MAX",
        "size = 3\n[autoscale]\nqueue_per_worker = 9223372036854775807\n",
    ),
    (
        // A heartbeat interval under the timer's millisecond caught up one
        // nanosecond at a time: virtual time never moved again.
        "one-nanosecond heartbeat",
        "size = 1\n[liveness]\nheartbeat_interval = \"1ns\"\n",
    ),
    (
        // 2 × a heartbeat interval past Duration::MAX / 2 overflowed on
        // every supervisor tick, as did its first deadline.
        "the longest heartbeat interval",
        "size = 2\n[liveness]\nheartbeat_interval = \"18446744073709551615s\"\n\
         heartbeat_timeout = \"18446744073709551615s 999999999ns\"\n\
         ping_interval = \"1ns\"\npong_timeout = \"18446744073709551615s\"\n",
    ),
    (
        // The emergency brake isolated until now + brake_reset: overflow.
        "endless brake reset",
        "size = 2\n[memory]\nbrake_floor = 9223372036854775807\n\
         brake_reset = \"18446744073709551615s\"\n\
         warning_percent = 100.0\ncritical_percent = 100.0\n",
    ),
    (
        // A breaker opened until now + cooldown_base: overflow.
        "endless breaker cooldown",
        "size = 2\n[breaker]\nfailure_threshold = 1\n\
         cooldown_base = \"18446744073709551615s\"\n\
         cooldown_cap = \"18446744073709551615s 999999999ns\"\n",
    ),
    (
        // Workers recycled every second; a heal deferred to last + min_gap: overflow.
        "endless heal gap",
        "size = 2\n[memory]\nmax_age = \"1s\"\nwarning_percent = 100.0\n\
         critical_percent = 100.0\n[heal_limit]\nmax = 4294967295\n\
         min_gap = \"18446744073709551615s\"\n",
    ),
];

#[test]
fn configs_the_property_found_run_cleanly() {
    for (what, text) in FOUND {
        let jobs = vec![
            Job::Ok,
            Job::Fail,
            Job::DependencyDown,
            Job::WorkerBroken,
            Job::Panic,
            Job::Crash,
            Job::Slow(30),
            Job::Hang,
        ];
        let plan = Plan {
            jobs: jobs.into_iter().map(|j| (j, None)).collect(),
            steps: vec![10, 50, 50],
            stop: ShutdownMode::Graceful {
                deadline: Duration::from_secs(30),
            },
        };
        let (problems, ran) = check(text, plan);
        assert!(ran, "{what}: not accepted");
        assert!(problems.is_empty(), "{what}: {problems:#?}");
    }
}
