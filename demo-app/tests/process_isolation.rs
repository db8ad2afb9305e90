//! `--isolation process` end to end: the built demo binary runs its workers
//! as processes of itself (real processes, real time, bounded waits), and
//! its JSON report must balance and show what each fault cost.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use candado_demo::{Report, Scenario};
use candado_pool::Isolation;

/// Runs the demo with `args` and `--report json` (at most `limit`), tagging
/// it and its worker processes with `tag` in their environment; returns
/// its exit code and report.
fn demo(args: &[&str], tag: &str, limit: Duration) -> (Option<i32>, Report, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_candado-demo"))
        .args(args)
        .args(["--report", "json"])
        .env("CANDADO_DEMO_TEST_RUN", tag)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo binary runs");
    let status = wait(&mut child, limit);
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let report: Report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("a JSON report ({e}): {stdout}\nstderr: {stderr}"));
    (status, report, stderr)
}

/// Waits for `child` at most `limit` (the demo's output, a report and a
/// few status lines, fits in its pipes meanwhile); kills it past that.
fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes whose environment carries `CANDADO_DEMO_TEST_RUN=tag`: the
/// demo of that run and its worker processes.
#[cfg(target_os = "linux")]
fn tagged(tag: &str) -> Vec<u32> {
    let needle = format!("CANDADO_DEMO_TEST_RUN={tag}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}

/// No process of the run outlives the demo (a worker process exits within
/// a second once its parent is gone).
fn assert_no_process_left(tag: &str) {
    #[cfg(target_os = "linux")]
    {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = tagged(tag);
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "worker processes left: {left:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn assert_balanced(report: &Report, scenario: &Scenario) {
    assert!(report.ok(), "{report:#?}");
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
        "{report:#?}"
    );
    assert_eq!(report.isolation, Isolation::Process);
}

#[test]
fn process_faults_each_cost_a_process_that_is_replaced_and_lose_nothing() {
    let tag = format!("faults-{}", std::process::id());
    // About 190 tasks, so each fault is drawn several times.
    let scale = "0.4";
    let (code, report, stderr) = demo(
        &[
            "--scenario",
            "process-faults",
            "--isolation",
            "process",
            "--time-scale",
            scale,
        ],
        &tag,
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{report:#?}\n{stderr}");
    let scenario = Scenario::built_in("process-faults")
        .unwrap()
        .shortened(0.4)
        .unwrap();
    assert_balanced(&report, &scenario);
    let killed = |kind: &str| report.processes_killed.get(kind).copied().unwrap_or(0);
    // loop {}: killed at its timeout; abort(); 256 MiB leaked for good:
    // killed by measured RSS; exit 42 after brakes; a stack overflow.
    for kind in ["timeout", "signal", "memory", "brake", "stack_overflow"] {
        assert!(killed(kind) >= 1, "no process ended by {kind}: {report:#?}");
    }
    assert!(
        report.processes_started > 6,
        "every process killed was replaced: {report:#?}"
    );
    // A process killed for memory had passed its 64 MiB limit.
    assert!(
        report.memory_reclaimed_bytes >= 64 << 20,
        "{}",
        report.memory_reclaimed_bytes
    );
    assert_no_process_left(&tag);
}

#[test]
fn calm_with_process_isolation_completes_everything() {
    let tag = format!("calm-{}", std::process::id());
    let (code, report, stderr) = demo(
        &[
            "--scenario",
            "calm",
            "--isolation",
            "process",
            "--time-scale",
            "0.3",
        ],
        &tag,
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{report:#?}\n{stderr}");
    let scenario = Scenario::built_in("calm").unwrap().shortened(0.3).unwrap();
    assert_balanced(&report, &scenario);
    assert_eq!(report.completed, report.submitted, "{report:#?}");
    // One process per task slot (4 workers × 2), none killed.
    assert_eq!(report.processes_started, 8, "{report:#?}");
    assert!(report.processes_killed.is_empty(), "{report:#?}");
    assert_eq!(report.memory_reclaimed_bytes, 0);
    assert_no_process_left(&tag);
}
