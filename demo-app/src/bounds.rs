//! The bound of every numeric scenario field, and why it is there.
//!
//! A scenario file is input: every field is checked against the bounds below
//! before anything runs, and again after `--time-scale` scales the timeline.
//! `docs/demo.md` lists the same bounds with their reasons.

use std::fmt::Debug;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::{Scenario, ScenarioError};

const HOUR: Duration = Duration::from_secs(3600);

/// One mebibyte, the unit of the scenario's memory fields.
pub const MIB: u64 = 1024 * 1024;

/// `duration`: at least 100 ms (the submitter works in 20 ms slices, and a
/// shorter run shows no defence acting), at most an hour (a demo, not a soak).
pub const DURATION: RangeInclusive<Duration> = Duration::from_millis(100)..=HOUR;

/// `rate`, tasks per second: at least 1; at most 10,000, ten times the
/// `overload` scenario, far past what the pool can take on two cores.
pub const RATE: RangeInclusive<u32> = 1..=10_000;

/// `rate × duration`, the tasks a run submits: the demo keeps every task's
/// handle to await it at the end, so at most a million.
pub const MAX_TASKS: u64 = 1_000_000;

/// `workers` and `max_workers`: each worker is a supervised actor with its own
/// heartbeat, and the live view lists them on one line; 64 is far more than a
/// small machine's cores can show working. (A million start-up takes forever.)
pub const WORKERS: RangeInclusive<usize> = 1..=64;

/// With `--isolation process`: `max_workers × concurrency`, the worker
/// processes the demo may run at once (one per task slot), is at most 64.
/// Each is a copy of the demo binary with its own RSS; 64 is already far
/// more processes than two cores keep busy.
pub const PROCESSES: usize = 64;

/// `nodes`: node processes sharing the durable queue (`--store`), each a
/// copy of the demo with its own pool; eight already crowd two cores.
pub const NODES: RangeInclusive<usize> = 1..=8;

/// `concurrency`, tasks per worker at once.
pub const CONCURRENCY: RangeInclusive<usize> = 1..=64;

/// `queue_bound`, waiting tasks before backpressure: every waiting task is
/// held in memory by the router.
pub const QUEUE_BOUND: RangeInclusive<usize> = 1..=100_000;

/// `io_share` and each `faults.*`: probabilities (NaN is refused), and the
/// faults together at most 1 (one fault per task).
pub const PROBABILITY: RangeInclusive<f64> = 0.0..=1.0;

/// `predict_iterations`: a prediction of 10 million chunked iterations
/// already outlasts any sensible `task_timeout`.
pub const PREDICT_ITERATIONS: RangeInclusive<u32> = 0..=10_000_000;

/// `outage.start`: within the longest run (an outage is placed on the clock
/// as `start + outage.start + outage.length`, which must not overflow).
pub const OUTAGE_START: RangeInclusive<Duration> = Duration::ZERO..=HOUR;

/// `outage.length`: not empty (leave `[outage]` out for none), at most an hour.
pub const OUTAGE_LENGTH: RangeInclusive<Duration> = Duration::from_millis(1)..=HOUR;

/// `leak_mib`: each leaking task allocates and touches this much real memory
/// at once; 256 MiB keeps a single leak from aborting the process.
pub const LEAK_MIB: RangeInclusive<u64> = 0..=256;

/// `worker_memory_limit_mib`: at least 1; at most 1 GiB (a worker holds up
/// to this much leaked memory before it is restarted).
pub const WORKER_MEMORY_LIMIT_MIB: RangeInclusive<u64> = 1..=1024;

/// When tasks leak (`faults.leak` or `faults.forget`): `max_workers ×
/// (worker_memory_limit_mib + leak_mib)`,
/// the most leaked memory the demo may hold at once, is at most 8 GiB.
pub const MAX_LEAKED_MIB: u64 = 8 * 1024;

/// `max_worker_age`: at least 500 ms (a shorter age recycles workers about
/// as fast as their restart backoff, up to 1 s, lets them start), at most an
/// hour.
pub const MAX_WORKER_AGE: RangeInclusive<Duration> = Duration::from_millis(500)..=HOUR;

/// `task_timeout`: at least a millisecond (the timer's resolution), at most
/// an hour.
pub const TASK_TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(1)..=HOUR;

/// `drain_deadline`: zero hands every unfinished task back at once; at most
/// an hour.
pub const DRAIN_DEADLINE: RangeInclusive<Duration> = Duration::ZERO..=HOUR;

/// The tasks a scenario's stream offers: `rate × duration`, rounded down, or
/// `None` when that does not fit a `u64`.
pub(crate) fn task_count(rate: u32, duration: Duration) -> Option<u64> {
    let millis = u128::from(rate).checked_mul(duration.as_millis())?;
    u64::try_from(millis / 1000).ok()
}

fn within<T: PartialOrd + Debug>(
    field: &'static str,
    value: T,
    bound: &RangeInclusive<T>,
    rule: &'static str,
) -> Result<(), ScenarioError> {
    if bound.contains(&value) {
        Ok(())
    } else {
        Err(out_of_bounds(field, value, rule))
    }
}

fn out_of_bounds(field: &'static str, value: impl Debug, rule: &'static str) -> ScenarioError {
    ScenarioError::OutOfBounds {
        field,
        value: format!("{value:?}"),
        rule,
    }
}

/// Checks every field of `s`; the error names the first bad one.
pub(crate) fn check(s: &Scenario) -> Result<(), ScenarioError> {
    within(
        "duration",
        s.duration,
        &DURATION,
        "must be within 100ms..=1h",
    )?;
    within("rate", s.rate, &RATE, "must be within 1..=10000 tasks/s")?;
    if task_count(s.rate, s.duration).is_none_or(|n| n > MAX_TASKS) {
        return Err(out_of_bounds(
            "rate",
            s.rate,
            "rate × duration must be at most 1000000 tasks (every handle is kept)",
        ));
    }
    within("workers", s.workers, &WORKERS, "must be within 1..=64")?;
    within(
        "max_workers",
        s.max_workers,
        &WORKERS,
        "must be within 1..=64",
    )?;
    if s.max_workers < s.workers {
        return Err(out_of_bounds(
            "max_workers",
            s.max_workers,
            "must be at least `workers`",
        ));
    }
    within("nodes", s.nodes, &NODES, "must be within 1..=8")?;
    within(
        "concurrency",
        s.concurrency,
        &CONCURRENCY,
        "must be within 1..=64",
    )?;
    within(
        "queue_bound",
        s.queue_bound,
        &QUEUE_BOUND,
        "must be within 1..=100000",
    )?;
    check_probabilities(s)?;
    within(
        "predict_iterations",
        s.predict_iterations,
        &PREDICT_ITERATIONS,
        "must be within 0..=10000000",
    )?;
    if let Some(o) = s.outage {
        within(
            "outage.start",
            o.start,
            &OUTAGE_START,
            "must be within 0s..=1h",
        )?;
        within(
            "outage.length",
            o.length,
            &OUTAGE_LENGTH,
            "must be within 1ms..=1h",
        )?;
    }
    check_memory(s)?;
    if let Some(age) = s.max_worker_age {
        within(
            "max_worker_age",
            age,
            &MAX_WORKER_AGE,
            "must be within 500ms..=1h",
        )?;
    }
    within(
        "task_timeout",
        s.task_timeout,
        &TASK_TIMEOUT,
        "must be within 1ms..=1h",
    )?;
    within(
        "drain_deadline",
        s.drain_deadline,
        &DRAIN_DEADLINE,
        "must be within 0s..=1h",
    )
}

fn check_probabilities(s: &Scenario) -> Result<(), ScenarioError> {
    let rule = "must be a probability within 0.0..=1.0";
    within("io_share", s.io_share, &PROBABILITY, rule)?;
    let faults = s.faults.all();
    for (field, p) in faults {
        within(field, p, &PROBABILITY, rule)?;
    }
    let sum: f64 = faults.iter().map(|(_, p)| p).sum();
    if sum > 1.0 {
        return Err(out_of_bounds(
            "faults",
            sum,
            "the fault probabilities must add up to at most 1",
        ));
    }
    Ok(())
}

fn check_memory(s: &Scenario) -> Result<(), ScenarioError> {
    within(
        "leak_mib",
        s.leak_mib,
        &LEAK_MIB,
        "must be within 0..=256 MiB",
    )?;
    within(
        "worker_memory_limit_mib",
        s.worker_memory_limit_mib,
        &WORKER_MEMORY_LIMIT_MIB,
        "must be within 1..=1024 MiB",
    )?;
    if leaked_mib(s, s.max_workers) > MAX_LEAKED_MIB {
        return Err(out_of_bounds(
            "worker_memory_limit_mib",
            s.worker_memory_limit_mib,
            "with leaks on, max_workers × (worker_memory_limit_mib + leak_mib) must be at most 8192 MiB",
        ));
    }
    Ok(())
}

/// The most leaked memory `holders` workers (or worker processes) may hold
/// at once, in MiB: each up to its limit plus one more leak; 0 without leaks.
fn leaked_mib(s: &Scenario, holders: usize) -> u64 {
    if s.faults.leak > 0.0 || s.faults.forget > 0.0 {
        // Each factor is bounded (a valid scenario), so this cannot overflow.
        (holders as u64).saturating_mul(s.worker_memory_limit_mib + s.leak_mib)
    } else {
        0
    }
}

/// Checks a valid scenario run with process isolation as `processes`
/// worker processes at most (`max_workers × concurrency`): their number
/// against [`PROCESSES`], and what they may leak against [`MAX_LEAKED_MIB`].
pub(crate) fn check_processes(s: &Scenario, processes: usize) -> Result<(), ScenarioError> {
    if processes > PROCESSES {
        return Err(out_of_bounds(
            "concurrency",
            s.concurrency,
            "with process isolation, max_workers × concurrency (one worker process per task slot) must be at most 64",
        ));
    }
    if leaked_mib(s, processes) > MAX_LEAKED_MIB {
        return Err(out_of_bounds(
            "worker_memory_limit_mib",
            s.worker_memory_limit_mib,
            "with leaks on and process isolation, max_workers × concurrency × (worker_memory_limit_mib + leak_mib) must be at most 8192 MiB",
        ));
    }
    Ok(())
}

/// Scales `d` by `factor`, or names `field` when the result is no duration.
pub(crate) fn scale(
    field: &'static str,
    d: Duration,
    factor: f64,
) -> Result<Duration, ScenarioError> {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor)
        .map_err(|_| ScenarioError::ScaledPastClock { field, factor })
}
