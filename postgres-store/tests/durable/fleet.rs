//! The big fault test (issue 19): three node processes share one queue of
//! 5,000 tasks, some of which panic, fail every attempt or outlast the
//! lease; one node is killed with SIGKILL mid-run and a fresh one started.
//!
//! Each node process is this test binary re-executed (`main` calls
//! [`serve_if_fleet_node`] first): a [`DurableNode`] with a pool of 4
//! workers, which appends the number of every task its handler starts to a
//! file of its own (a line per start: `write(2)` per line, so the lines of
//! a killed node survive it). The test then reads the table and the files.

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use candado::Runtime;
use candado_pool::{Pool, PoolConfig, RetryConfig, TaskContext, TaskHandler};
use candado_postgres::{DurableNode, NewTask, NodeConfig, PgStore, StoreConfig};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::eventually;

/// Set in a node process: its [`NodeSpec`] as JSON.
const FLEET_ENV: &str = "CANDADO_TEST_FLEET_NODE";

const TASKS: u64 = 5_000;
/// How long a claim lasts without renewal.
const LEASE: Duration = Duration::from_secs(2);
/// The node's heartbeat: it renews its leases, and rescues expired ones,
/// this often.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// A slow task outlasts the lease: only renewals keep it from a rescue.
const SLOW: Duration = Duration::from_millis(2_500);
/// Retries after the first attempt: a task failing every attempt runs
/// three times, then is dead-lettered.
const MAX_RETRIES: u32 = 2;
/// Slack on the rescue bound, over `LEASE + HEARTBEAT`. A rescue runs in a
/// node's loop between its store calls (claims, reports), each a round
/// trip of a few milliseconds that can stretch to a few hundred when four
/// processes and the server share two loaded cores; the history's time is
/// the database's `now()` at the rescue, the kill time is taken before the
/// kill. Measured latencies sit well inside (see the report line).
const MARGIN: Duration = Duration::from_millis(1_000);
const VICTIM: &str = "n1";
const EXPIRED: &str = "lease expired";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    /// Sleeps a few milliseconds, succeeds.
    Quick,
    /// Sleeps [`SLOW`], succeeds.
    Slow,
    /// Panics on every attempt.
    Panic,
    /// Fails every attempt with an error.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FaultJob {
    n: u64,
    kind: Kind,
}

/// 1% panics, 1% errors, 0.5% slow, the rest quick.
fn job(n: u64) -> FaultJob {
    let kind = match n % 200 {
        0 | 1 => Kind::Panic,
        2 | 3 => Kind::Error,
        4 => Kind::Slow,
        _ => Kind::Quick,
    };
    FaultJob { n, kind }
}

#[derive(Debug, Serialize, Deserialize)]
struct NodeSpec {
    url: String,
    node: String,
    runs: PathBuf,
}

struct FaultJobs {
    runs: Arc<Mutex<std::fs::File>>,
}

impl TaskHandler for FaultJobs {
    type Task = FaultJob;
    type Output = u64;
    type Error = String;

    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        job: FaultJob,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        // One write per start, before any work: a line written is a run begun.
        let line = format!("{}\n", job.n);
        self.runs
            .lock()
            .unwrap()
            .write_all(line.as_bytes())
            .expect("runs file");
        async move {
            match job.kind {
                Kind::Quick => tokio::time::sleep(Duration::from_millis(job.n % 3)).await,
                Kind::Slow => tokio::time::sleep(SLOW).await,
                Kind::Panic => panic!("task {} panics", job.n),
                Kind::Error => return Err(format!("task {} fails", job.n)),
            }
            Ok(job.n * 2)
        }
    }
}

fn store_config(url: &str) -> StoreConfig {
    let mut config = StoreConfig::new(url, "fleet");
    config.retry = RetryConfig {
        max_retries: MAX_RETRIES,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(50),
        jitter: 0.0,
        ..Default::default()
    };
    config
}

fn node_config(node: &str) -> NodeConfig {
    NodeConfig {
        node: node.into(),
        lease: LEASE,
        renew_every: HEARTBEAT,
        rescue_every: HEARTBEAT,
        poll_every: Duration::from_millis(200),
        max_in_flight: 16,
        ..NodeConfig::default()
    }
}

/// In a node process: runs the node until stdin closes, prints its report
/// as one JSON line, exits. Returns at once elsewhere.
pub(crate) fn serve_if_fleet_node() {
    let Ok(text) = std::env::var(FLEET_ENV) else {
        return;
    };
    let spec: NodeSpec = serde_json::from_str(&text).expect("a node spec");
    // Panics are injected on purpose.
    std::panic::set_hook(Box::new(|_| {}));
    let runs = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.runs)
        .expect("runs file");
    let runs = Arc::new(Mutex::new(runs));
    actix::System::new().block_on(async move {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let store = PgStore::connect(store_config(&spec.url)).await.unwrap();
        let pool = Pool::builder(move || FaultJobs { runs: runs.clone() })
            .config(PoolConfig {
                name: spec.node.clone(),
                size: 4,
                retry: RetryConfig {
                    max_retries: 0,
                    ..RetryConfig::default()
                },
                // Failing tasks are the tasks' faults, not the workers':
                // no worker leaves service for them.
                breaker: None,
                ..PoolConfig::default()
            })
            .start(&runtime)
            .await
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = stop.send(());
        });
        let node = DurableNode::new(store, pool, node_config(&spec.node)).unwrap();
        let report = node
            .run(
                async {
                    let _ = stopped.await;
                },
                Duration::from_secs(10),
            )
            .await;
        println!(
            "{}",
            serde_json::json!({
                "node": spec.node,
                "claimed": report.claimed,
                "completed": report.completed,
                "failed": report.failed,
                "fenced": report.fenced,
                "released": report.released,
                "rescued": report.rescued,
                "store_errors": report.store_errors,
            })
        );
        runtime.shutdown().await;
    });
    std::process::exit(0)
}

fn start_node(url: &str, node: &str, dir: &Path) -> Child {
    let spec = NodeSpec {
        url: url.into(),
        node: node.into(),
        runs: dir.join(format!("{node}.runs")),
    };
    Command::new(std::env::current_exe().unwrap())
        .env(FLEET_ENV, serde_json::to_string(&spec).unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("a node process")
}

/// Closes `child`'s stdin (its node stops, handing back what it holds) and
/// returns the report it prints, within `limit`.
async fn stop_node(mut child: Child, limit: Duration) -> serde_json::Value {
    drop(child.stdin.take());
    let mut stdout = child.stdout.take().unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a node did not stop within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a node process failed: {status}");
    let mut text = String::new();
    stdout.read_to_string(&mut text).unwrap();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("a node report ({e}): {text}"))
}

fn epoch_ms(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// The task numbers each node's handlers started, one entry per start.
fn runs(dir: &Path, node: &str) -> Vec<u64> {
    std::fs::read_to_string(dir.join(format!("{node}.runs")))
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().expect("a task number"))
        .collect()
}

struct Row {
    kind: Kind,
    state: String,
    output: Option<u64>,
    /// `(node, error, at_ms)` of each failed attempt.
    history: Vec<(String, String, i64)>,
}

async fn rows(client: &tokio_postgres::Client) -> HashMap<u64, Row> {
    let rows = client
        .query(
            "SELECT payload, state, output, history FROM candado_tasks WHERE queue = 'fleet'",
            &[],
        )
        .await
        .unwrap();
    let mut by_n = HashMap::new();
    for row in rows {
        let job: FaultJob = serde_json::from_value(row.get(0)).unwrap();
        let output: Option<serde_json::Value> = row.get(2);
        let history: serde_json::Value = row.get(3);
        let history = history
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["node"].as_str().unwrap_or_default().to_owned(),
                    a["error"].as_str().unwrap_or_default().to_owned(),
                    a["at_ms"].as_i64().unwrap(),
                )
            })
            .collect();
        let previous = by_n.insert(
            job.n,
            Row {
                kind: job.kind,
                state: row.get(1),
                output: output.and_then(|o| o.as_u64()),
                history,
            },
        );
        assert!(previous.is_none(), "task {} is in the table twice", job.n);
    }
    by_n
}

pub(crate) async fn three_nodes_with_faults_and_a_kill_9_lose_nothing_and_rescue_within_lease_and_a_heartbeat(
    url: String,
) {
    let started = Instant::now();
    let store = PgStore::connect(store_config(&url)).await.unwrap();
    futures_util::stream::iter(0..TASKS)
        .map(|n| store.enqueue(NewTask::new(job(n))))
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let client = candado_postgres::testing::client(&url).await.unwrap();
    let dir = std::env::temp_dir().join(format!("candado-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut victim = start_node(&url, VICTIM, &dir);
    let mut nodes = vec![start_node(&url, "n2", &dir), start_node(&url, "n3", &dir)];
    // Mid-run: a third of the tasks finished, and the victim holds some.
    let client = &client;
    eventually(
        Duration::from_secs(60),
        "mid-run, the victim busy",
        || async {
            let row = client
                .query_one(
                    "SELECT count(*) FILTER (WHERE state IN ('done', 'dead')),
                        count(*) FILTER (WHERE state = 'running' AND lease_holder = $1)
                 FROM candado_tasks",
                    &[&VICTIM],
                )
                .await
                .unwrap();
            let (finished, held): (i64, i64) = (row.get(0), row.get(1));
            finished >= (TASKS / 3) as i64 && held >= 4
        },
    )
    .await;
    let killed_at = epoch_ms(SystemTime::now());
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    nodes.push(start_node(&url, "n4", &dir));

    let s = store.clone();
    eventually(Duration::from_secs(90), "every task finished", || {
        let s = s.clone();
        async move { s.counts().await.is_ok_and(|c| c.done + c.dead == TASKS) }
    })
    .await;
    let mut reports = Vec::new();
    for node in nodes {
        reports.push(stop_node(node, Duration::from_secs(30)).await);
    }
    let elapsed = started.elapsed();

    let counts = store.counts().await.unwrap();
    assert_eq!((counts.ready, counts.running), (0, 0), "{counts:?}");
    let table = rows(client).await;
    assert_eq!(table.len() as u64, TASKS, "one row per accepted task");

    let mut runs_of: HashMap<u64, u64> = HashMap::new();
    let mut total_runs = 0;
    for node in [VICTIM, "n2", "n3", "n4"] {
        for n in runs(&dir, node) {
            *runs_of.entry(n).or_default() += 1;
            total_runs += 1;
        }
    }
    let (mut rescued, mut duplicates) = (0u64, 0u64);
    let (mut first_rescue_ms, mut worst_rescue_ms) = (i64::MAX, i64::MIN);
    for (n, row) in &table {
        // Every task ends done or dead, as its kind says, once.
        match row.kind {
            Kind::Quick | Kind::Slow => {
                assert_eq!(row.state, "done", "task {n}: {:?}", row.history);
                assert_eq!(row.output, Some(n * 2), "task {n}'s output");
            }
            Kind::Panic | Kind::Error => {
                assert_eq!(row.state, "dead", "task {n}");
                assert_eq!(
                    row.history.len() as u32,
                    MAX_RETRIES + 1,
                    "task {n}: every attempt in its history: {:?}",
                    row.history
                );
            }
        }
        let expired: Vec<_> = row
            .history
            .iter()
            .filter(|(_, error, _)| error.starts_with(EXPIRED))
            .collect();
        for (node, _, at_ms) in &expired {
            // Only the killed node's leases expire: a slow task on a live
            // node outlasts the lease, and its renewals keep it.
            assert_eq!(node, VICTIM, "task {n} was rescued from a live node");
            first_rescue_ms = first_rescue_ms.min(at_ms - killed_at);
            worst_rescue_ms = worst_rescue_ms.max(at_ms - killed_at);
        }
        rescued += u64::from(!expired.is_empty());
        // Runs the table accounts for: each reported failure, and the
        // completion. The rest ran under a lease that expired.
        let reported = (row.history.len() - expired.len()) as u64 + u64::from(row.state == "done");
        let ran = runs_of.get(n).copied().unwrap_or(0);
        assert!(ran >= reported, "task {n}: {ran} runs, {reported} reported");
        let extra = ran - reported;
        assert!(
            extra <= expired.len() as u64,
            "task {n} ran {extra} times more than reported, with {} rescues",
            expired.len()
        );
        duplicates += extra;
    }
    let fenced: u64 = reports.iter().map(|r| r["fenced"].as_u64().unwrap()).sum();
    let rescues: u64 = reports.iter().map(|r| r["rescued"].as_u64().unwrap()).sum();
    eprintln!(
        "  {TASKS} tasks in {elapsed:.1?}: {} done, {} dead; {total_runs} runs; the victim held \
         {rescued} tasks, rescued {first_rescue_ms}..{worst_rescue_ms} ms after the kill (bound: lease {} ms \
         + heartbeat {} ms + margin {} ms); {duplicates} of them ran twice; {fenced} late \
         reports fenced; rescues by node: {rescues}",
        counts.done,
        counts.dead,
        LEASE.as_millis(),
        HEARTBEAT.as_millis(),
        MARGIN.as_millis()
    );
    for report in &reports {
        eprintln!("    {report}");
    }
    assert!(rescued > 0, "the victim held tasks when it was killed");
    assert_eq!(
        rescues, rescued,
        "each rescue is counted by the node that made it"
    );
    let bound = i64::try_from((LEASE + HEARTBEAT + MARGIN).as_millis()).unwrap();
    assert!(
        worst_rescue_ms <= bound,
        "rescued {worst_rescue_ms} ms after the kill, past {bound} ms"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
