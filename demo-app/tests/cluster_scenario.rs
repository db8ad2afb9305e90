//! The `cluster` scenario end to end, against a throwaway PostgreSQL (the
//! durable store's test cluster, `postgres-store/tests/durable/cluster.rs`):
//! the built demo binary starts three node processes of itself, kills one
//! with SIGKILL mid-run, starts a replacement, and its JSON report must
//! balance, with the killed node's tasks rescued in time. Skipped with a
//! message unless PostgreSQL is installed, or required by
//! `CANDADO_REQUIRE_POSTGRES`.

// The module has more than this test needs (a restart, for the store's
// own tests).
#[allow(dead_code)]
#[path = "../../postgres-store/tests/durable/cluster.rs"]
mod cluster;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candado_demo::Report;

/// Past this the demo is killed and the test fails: the scenario runs 6 s
/// at half scale, and its queue empties within a lease and a heartbeat
/// after that.
const LIMIT: Duration = Duration::from_secs(120);

/// Slack on the rescue bound (lease + heartbeat): a rescue runs in a live
/// node's loop between its store calls, which a loaded two-core machine
/// can delay by a few hundred milliseconds.
const MARGIN_MS: u64 = 1_000;

fn create_database(url: &str, name: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
    });
}

#[test]
fn cluster_kills_a_node_and_loses_nothing() {
    let cluster = match cluster::Cluster::start() {
        Ok(cluster) => cluster,
        Err(why) if std::env::var_os(cluster::REQUIRE).is_none() => {
            eprintln!(
                "cluster scenario test skipped: {why}. Set {} to make this an error.",
                cluster::REQUIRE
            );
            return;
        }
        Err(why) => panic!(
            "PostgreSQL is required ({} is set): {why}",
            cluster::REQUIRE
        ),
    };
    create_database(&cluster.url("postgres"), "demo");
    let url = cluster.url("demo");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_candado-demo"))
        .args([
            "--scenario",
            "cluster",
            "--time-scale",
            "0.5",
            "--report",
            "json",
        ])
        .args(["--store", &url])
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
            cluster.stop();
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
    cluster.stop();
    let report: Report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("a JSON report ({e}): {stdout}\nstderr: {stderr}"));
    let durable = report.durable.clone().expect("a durable summary");
    eprintln!(
        "  cluster in {:.1?}: {} submitted, {} completed, {} dead-lettered, {} handed back; \
         {} rescued {} ms after the kill at most (bound {} ms), {} ran twice",
        started.elapsed(),
        report.submitted,
        report.completed,
        report.dead_lettered,
        report.returned,
        durable.rescued,
        durable.rescue_ms.unwrap_or(0),
        durable.rescue_bound_ms,
        durable.duplicates
    );
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
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
