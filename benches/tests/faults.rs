//! The failure harnesses run end to end. The faults harness loses nothing:
//! every task it submits completes, including those that hung a worker (they
//! only complete once liveness has restarted the worker and a second attempt
//! succeeds).

use std::time::Duration;

use candado_bench::failure;

#[test]
fn a_faulty_run_completes_every_task_even_those_that_hung() {
    // No claim on `rate` (the steady-state window): on a loaded machine a
    // debug build can spend the whole 200 ms window still ramping up, and
    // speed is measured by `compare`, not asserted here.
    let run = failure::throughput_with_faults(4, Duration::from_millis(200), true);
    assert!(run.whole_rate > 0.0, "{run:?}");
    assert_eq!(run.not_completed, 0, "{run:?}");
}

#[test]
fn a_fault_free_run_restarts_nothing() {
    let run = failure::throughput_with_faults(4, Duration::from_millis(200), false);
    assert!(run.whole_rate > 0.0, "{run:?}");
    assert_eq!((run.not_completed, run.restarts), (0, 0), "{run:?}");
}

#[test]
fn a_silent_worker_is_found_then_replaced() {
    let interval = Duration::from_millis(100);
    let run = failure::silence_to_replacement(interval, Duration::from_millis(500), Duration::ZERO);
    assert!(run.detected > Duration::ZERO, "{run:?}");
    assert!(
        run.detected < run.replaced,
        "found before replaced: {run:?}"
    );
}
