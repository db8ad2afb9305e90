//! procspawn's process pool (`procspawn::Pool`), the peer of Candado's
//! process workers: N worker processes (this binary, re-run; its `main`
//! calls `procspawn::init()`), each task a function and its arguments sent
//! over `ipc-channel`, one task at a time per process, joined from blocking
//! submitter threads.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use procspawn::Pool;

use crate::process_workers::{children, memory_report, SpawnReport};
use crate::Shape;

/// The task: sleeps `sleep_us` microseconds (none for a no-op), then
/// answers `value`.
fn task((value, sleep_us): (u64, u64)) -> u64 {
    if sleep_us > 0 {
        std::thread::sleep(Duration::from_micros(sleep_us));
    }
    value
}

fn pool(workers: usize) -> Pool {
    Pool::new(workers.max(1)).expect("procspawn pool starts")
}

/// Runs `value` through `pool` and returns the answer.
fn run(pool: &Pool, value: u64, sleep: Duration) -> u64 {
    let sleep_us = u64::try_from(sleep.as_micros()).unwrap_or(u64::MAX);
    pool.spawn((value, sleep_us), task)
        .join()
        .expect("procspawn task succeeds")
}

/// Starts a pool of `workers` processes (`Pool::new` returns once each has
/// connected back) and runs one no-op per worker; then, after `idle`, sums
/// the resident memory of this process's children (the pool's processes).
pub fn spawn(workers: usize, idle: Duration) -> SpawnReport {
    let start = Instant::now();
    let pool = pool(workers);
    std::thread::scope(|s| {
        for w in 0..workers as u64 {
            let pool = &pool;
            s.spawn(move || assert_eq!(run(pool, w, Duration::ZERO), w));
        }
    });
    let spawned = start.elapsed();
    std::thread::sleep(idle);
    let report = memory_report(workers, spawned, &children());
    pool.shutdown();
    report
}

/// Wall time of `shape.total()` tasks that each sleep `sleep` (none: a
/// no-op) through a pool of `shape.workers` processes, from
/// `shape.submitters` threads, each joining a task before spawning its next.
pub fn throughput(shape: Shape, sleep: Duration) -> Duration {
    let pool = pool(shape.workers);
    // Every process answers once before the clock starts.
    for w in 0..shape.workers as u64 {
        assert_eq!(run(&pool, w, Duration::ZERO), w);
    }
    let per_submitter = shape.per_submitter();
    let submitters = shape.submitters.max(1);
    let ready = Barrier::new(submitters + 1);
    let elapsed = std::thread::scope(|s| {
        for sub in 0..submitters {
            let (pool, ready) = (&pool, &ready);
            s.spawn(move || {
                ready.wait();
                for n in 0..per_submitter {
                    let value = (sub * per_submitter + n) as u64;
                    assert_eq!(run(pool, value, sleep), value);
                }
            });
        }
        ready.wait();
        Instant::now()
    })
    .elapsed();
    pool.shutdown();
    elapsed
}
