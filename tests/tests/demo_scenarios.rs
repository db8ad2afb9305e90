//! Every built-in demo scenario, shortened, on real threads and real time:
//! the report must balance, and the expected defence must have acted.
//! Assertions are on counts, never on timing.

use std::time::Duration;

use candado_demo::{run, LiveMode, Report, RunOptions, Scenario};
use candado_pool::Isolation;

fn run_scenario(scenario: Scenario) -> Report {
    let options = RunOptions {
        live: LiveMode::Off,
        threads: Some(2),
        isolation: Isolation::InProcess,
        serve: None,
    };
    let report = actix::System::new()
        .block_on(run(&scenario, options))
        .expect("scenario runs");
    assert_eq!(report.lost, 0, "{report:#?}");
    assert!(report.books_agree, "{report:#?}");
    assert_eq!(
        report.submitted,
        report.completed + report.dead_lettered + report.returned,
        "{report:#?}"
    );
    assert_eq!(
        report.submitted + report.rejected,
        scenario.task_count(),
        "the stream offers exactly the tasks the live view counts on: {report:#?}"
    );
    report
}

fn shortened(name: &str, factor: f64) -> Scenario {
    Scenario::built_in(name).unwrap().shortened(factor).unwrap()
}

#[test]
fn calm_completes_everything() {
    let report = run_scenario(shortened("calm", 0.3));
    assert!(report.submitted > 0);
    assert_eq!(report.dead_lettered, 0);
    assert_eq!(report.completed, report.submitted);
}

#[test]
fn chaos_restarts_crashed_starved_and_old_workers_and_loses_nothing() {
    let report = run_scenario(shortened("chaos", 0.3));
    assert!(
        report.restarts.get("panic").copied().unwrap_or(0) >= 1,
        "{report:#?}"
    );
    assert!(
        report.restarts.get("liveness").copied().unwrap_or(0) >= 1,
        "{report:#?}"
    );
    assert!(
        report.restarts.get("age").copied().unwrap_or(0) >= 1,
        "docs/demo.md promises age restarts in chaos: {report:#?}"
    );
    assert!(report.retries > 0);
    assert!(report.breaker_opens >= 1, "{report:#?}");
}

#[test]
fn leak_restarts_workers_for_memory() {
    let report = run_scenario(shortened("leak", 0.3));
    assert!(
        report.restarts.get("memory").copied().unwrap_or(0) >= 1,
        "{report:#?}"
    );
}

#[test]
fn outage_opens_the_breaker_and_closes_it_again() {
    let report = run_scenario(shortened("outage", 0.4));
    assert!(report.breaker_opens >= 1, "{report:#?}");
    assert!(report.dependency_breaker_closed, "{report:#?}");
    assert_eq!(
        report.dead_lettered, 0,
        "tasks wait out the outage instead of failing"
    );
}

#[test]
fn overload_pushes_back_and_scales_up() {
    let scenario = Scenario {
        // Debug builds are slow: keep the backlog small enough to drain quickly.
        predict_iterations: 400_000,
        drain_deadline: Duration::from_secs(30),
        ..shortened("overload", 0.3)
    };
    let report = run_scenario(scenario);
    assert!(report.rejected > 0, "{report:#?}");
    assert!(
        report.final_workers > 2,
        "autoscaling added workers: {report:#?}"
    );
}
