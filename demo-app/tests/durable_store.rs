//! The demo on a durable store, end to end, against a throwaway PostgreSQL
//! (`candado_postgres::testing::TestCluster`): `chaos` on one node, and
//! the `cluster` scenario, whose built demo binary starts three node
//! processes of itself, kills one with SIGKILL mid-run and starts a
//! replacement. Each JSON report must balance, with the outcomes read from
//! the table, and the killed node's tasks rescued in time. Skipped with a
//! message when PostgreSQL is not installed, unless
//! `CANDADO_REQUIRE_POSTGRES` is set.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candado_demo::Report;
use candado_postgres::testing::TestCluster;

/// Past this the demo is killed and the test fails: the scenario runs 6 s
/// at half scale, and its queue empties within a lease and a heartbeat
/// after that.
const LIMIT: Duration = Duration::from_secs(120);

/// Slack on the rescue bound (lease + heartbeat): a rescue runs in a live
/// node's loop between its store calls, which a loaded two-core machine
/// can delay by a few hundred milliseconds.
const MARGIN_MS: u64 = 1_000;

/// Runs the demo with `args`, `--store url` and `--report json`, at most
/// [`LIMIT`]; returns its exit code and report.
fn demo(args: &[&str], url: &str) -> (Option<i32>, Report, String) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_candado-demo"))
        .args(args)
        .args(["--report", "json", "--store", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo binary runs");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo ran past {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
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
    eprintln!(
        "  {} in {:.1?}: {} submitted, {} completed, {} dead-lettered, {} handed back, {} lost",
        report.scenario,
        started.elapsed(),
        report.submitted,
        report.completed,
        report.dead_lettered,
        report.returned,
        report.lost
    );
    (status.code(), report, stderr)
}

/// Both runs share one cluster (a cluster's folder is named by the test
/// process), each in a database of its own.
#[test]
fn the_demo_on_a_durable_store_balances_on_one_node_and_when_a_node_is_killed() {
    // Stopped and removed on drop, however the test ends.
    let Some(cluster) = TestCluster::start_or_skip("durable demo test") else {
        return;
    };
    for db in ["single", "fleet"] {
        cluster.create_database(db).expect("a fresh database");
    }
    one_node_runs_chaos_from_the_table(&cluster.url("single"));
    cluster_kills_a_node_and_loses_nothing(&cluster.url("fleet"));
}

fn one_node_runs_chaos_from_the_table(url: &str) {
    let (code, report, stderr) = demo(&["--scenario", "chaos", "--time-scale", "0.3"], url);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.submitted, 900, "rate × duration, all accepted");
    assert_eq!(
        report.submitted,
        report.completed + report.dead_lettered + report.returned
    );
    let durable = report.durable.clone().expect("a durable summary");
    assert_eq!(durable.nodes.len(), 1);
    assert_eq!(durable.nodes[0].completed, report.completed, "{durable:#?}");
    // Faults were injected and answered, as in memory.
    assert!(report.failed_attempts > 0, "{report:#?}");
    assert!(!report.restarts.is_empty(), "{report:#?}");
}

fn cluster_kills_a_node_and_loses_nothing(url: &str) {
    let (code, report, stderr) = demo(&["--scenario", "cluster", "--time-scale", "0.5"], url);
    let durable = report.durable.clone().expect("a durable summary");
    eprintln!(
        "  cluster: {} rescued {} ms after the kill at most (bound {} ms), {} ran twice",
        durable.rescued,
        durable.rescue_ms.unwrap_or(0),
        durable.rescue_bound_ms,
        durable.duplicates
    );
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.lost, 0);
    assert_eq!(report.submitted, 1_200, "rate × duration, all accepted");
    assert_eq!(
        report.submitted,
        report.completed + report.dead_lettered + report.returned
    );
    // Three nodes, the first killed, and its replacement.
    let names: Vec<(&str, bool)> = durable
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.killed))
        .collect();
    assert_eq!(
        names,
        [
            ("node-1", true),
            ("node-2", false),
            ("node-3", false),
            ("node-4", false)
        ]
    );
    // The victim held tasks when it was killed; others rescued them, in
    // time; only they could run twice.
    assert!(durable.rescued >= 1, "{durable:#?}");
    let rescued_by_nodes: u64 = durable.nodes.iter().map(|n| n.rescued).sum();
    assert_eq!(rescued_by_nodes, durable.rescued, "{durable:#?}");
    assert!(durable.duplicates <= durable.rescued, "{durable:#?}");
    assert_eq!(durable.unexplained_duplicates, 0);
    let rescue_ms = durable.rescue_ms.expect("a rescue time");
    assert!(
        rescue_ms <= durable.rescue_bound_ms + MARGIN_MS,
        "rescued {rescue_ms} ms after the kill: {durable:#?}"
    );
}
