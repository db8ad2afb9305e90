//! The durable store against a real PostgreSQL: a throwaway cluster for
//! the run (`candado_postgres::testing`), a fresh database per test. A custom harness,
//! so that `main` can also be a node process (for the `kill -9` test) and
//! stop the cluster at the end. Without PostgreSQL the tests are skipped
//! with a message, unless `CANDADO_REQUIRE_POSTGRES` is set (CI sets it).

mod fleet;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candado::Runtime;
use candado_pool::{Blame, Pool, PoolConfig, RetryConfig, TaskContext, TaskHandler};
use candado_postgres::testing::{client, TestCluster};
use candado_postgres::{
    Claimed, DurableNode, FailOutcome, NewTask, NodeConfig, NodeReport, PgStore, QueueCounts,
    SharedBreakerConfig, StoreConfig, Wakeups,
};
use serde::{Deserialize, Serialize};

use fleet::three_nodes_with_faults_and_a_kill_9_lose_nothing_and_rescue_within_lease_and_a_heartbeat;

/// The run's cluster (stopped at the end of `main`).
static CLUSTER: std::sync::OnceLock<TestCluster> = std::sync::OnceLock::new();

/// Set in a child process: run a node on this database until killed.
const NODE_URL: &str = "CANDADO_TEST_NODE_URL";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Job {
    n: u64,
    sleep_ms: u64,
}

/// The numbers this process's handlers ran, in order.
static RAN: Mutex<Vec<u64>> = Mutex::new(Vec::new());

struct Jobs;

impl TaskHandler for Jobs {
    type Task = Job;
    type Output = u64;
    type Error = String;

    // The future must be `'static`: an `async fn` would borrow `self`.
    #[allow(clippy::manual_async_fn)]
    fn handle(
        &mut self,
        job: Job,
        _: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        async move {
            if job.n == MALFORMED {
                return Err("malformed: no retry can help".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
            RAN.lock().unwrap().push(job.n);
            Ok(job.n * 2)
        }
    }

    fn blame(&self, error: &String) -> Blame {
        if error.starts_with("malformed") {
            Blame::Permanent
        } else {
            Blame::Task
        }
    }
}

/// The job number whose handler fails with an error marked permanent.
const MALFORMED: u64 = u64::MAX;

fn store_config(url: &str) -> StoreConfig {
    let mut config = StoreConfig::new(url, "jobs");
    config.retry = RetryConfig {
        max_retries: 1,
        base: Duration::from_millis(50),
        cap: Duration::from_millis(50),
        jitter: 0.0,
        ..Default::default()
    };
    config
}

async fn store(url: &str) -> PgStore {
    PgStore::connect(store_config(url)).await.unwrap()
}

async fn local_pool(runtime: &Runtime, name: &str) -> Pool<Jobs> {
    Pool::builder(|| Jobs)
        .config(PoolConfig {
            name: name.into(),
            size: 4,
            retry: RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            },
            ..PoolConfig::default()
        })
        .start(runtime)
        .await
        .unwrap()
}

fn node_config(node: &str) -> NodeConfig {
    NodeConfig {
        node: node.into(),
        lease: Duration::from_secs(1),
        renew_every: Duration::from_millis(300),
        poll_every: Duration::from_millis(200),
        rescue_every: Duration::from_millis(200),
        max_in_flight: 8,
        ..NodeConfig::default()
    }
}

/// Enqueues a [`Job`] numbered `n` for each `n` of `numbers`, in order,
/// each sleeping `sleep_ms`.
async fn enqueue_jobs(store: &PgStore, numbers: std::ops::Range<u64>, sleep_ms: u64) {
    for n in numbers {
        store
            .enqueue(NewTask::new(Job { n, sleep_ms }))
            .await
            .unwrap();
    }
}

/// Node `name` of the queue: a [`local_pool`] of that name on `runtime`,
/// run with [`node_config`].
async fn node(store: &PgStore, runtime: &Runtime, name: &str) -> DurableNode<Jobs> {
    DurableNode::new(
        store.clone(),
        local_pool(runtime, name).await,
        node_config(name),
    )
    .unwrap()
}

/// A node running on this thread until [`RunningNode::stop`].
struct RunningNode {
    stop: tokio::sync::oneshot::Sender<()>,
    run: tokio::task::JoinHandle<NodeReport>,
}

impl RunningNode {
    /// Runs `node` (5 s to drain at its stop).
    fn spawn(node: DurableNode<Jobs>) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = actix::spawn(node.run(
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        Self { stop, run }
    }

    /// Stops the node and waits for its report.
    async fn stop(self) -> NodeReport {
        let _ = self.stop.send(());
        self.run.await.unwrap()
    }
}

/// Polls the store's counts until `check` holds, for at most `limit`.
async fn until_counts(
    store: &PgStore,
    limit: Duration,
    what: &str,
    check: impl Fn(QueueCounts) -> bool,
) {
    let check = &check;
    eventually(limit, what, || async move {
        check(store.counts().await.unwrap())
    })
    .await;
}

/// Polls `check` until it holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn migrations_apply_once_even_when_nodes_start_together(url: String) {
    let (a, b) = tokio::join!(
        PgStore::connect(store_config(&url)),
        PgStore::connect(store_config(&url))
    );
    a.unwrap();
    b.unwrap();
    let client = client(&url).await.unwrap();
    let rows = client
        .query("SELECT version FROM candado_migrations", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), candado_postgres::SCHEMA_VERSION as usize);
}

/// Reports are fenced on the lease holder alone (no `state` in them, so no
/// plan walks the running tasks' index): a task has a holder exactly while
/// it runs, which schema version 2 makes a constraint.
async fn a_task_has_a_lease_holder_exactly_while_it_runs(url: String) {
    let store = store(&url).await;
    let client = client(&url).await.unwrap();
    let holder = async |id: i64| -> (String, Option<String>) {
        let row = client
            .query_one(
                "SELECT state, lease_holder FROM candado_tasks WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    let id = store
        .enqueue(NewTask::new(Job { n: 1, sleep_ms: 0 }))
        .await
        .unwrap()
        .id;
    assert_eq!(holder(id).await, ("ready".into(), None));
    let claimed: Vec<Claimed<Job>> = store
        .claim("n1", &[], 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(holder(id).await, ("running".into(), Some("n1".into())));
    // Another node's report, or this node's for another attempt, is fenced.
    assert!(!store.complete("n2", id, 1, &0).await.unwrap());
    assert!(!store.complete("n1", id, 2, &0).await.unwrap());
    assert!(store
        .complete("n1", id, claimed[0].attempt, &0)
        .await
        .unwrap());
    assert_eq!(holder(id).await, ("done".into(), None));
    // Renewing a finished task's lease finds nothing to renew.
    assert_eq!(
        store
            .renew("n1", &[id], Duration::from_secs(30))
            .await
            .unwrap(),
        0
    );
    // The schema refuses a running task without a holder, and a holder on
    // a task that does not run.
    for bad in [
        "UPDATE candado_tasks SET state = 'running' WHERE id = $1",
        "UPDATE candado_tasks SET lease_holder = 'n1' WHERE id = $1",
    ] {
        let error = client.execute(bad, &[&id]).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION),
            "{bad}: {error}"
        );
    }
}

async fn claims_go_in_priority_then_fifo_order_and_skip_rows_others_hold(url: String) {
    let store = store(&url).await;
    for (n, priority) in [(0, 5), (1, 1), (2, 5), (3, 1), (4, 9), (5, 0)] {
        store
            .enqueue(NewTask::new(Job { n, sleep_ms: 0 }).priority(priority))
            .await
            .unwrap();
    }
    let first = store
        .claim::<Job>("a", &[], 4, Duration::from_secs(30))
        .await
        .unwrap();
    let order: Vec<u64> = first.iter().map(|c| c.task.n).collect();
    assert_eq!(order, [5, 1, 3, 0], "priority, then FIFO");
    assert!(first.iter().all(|c| c.attempt == 1));
    // Two nodes claiming at once never get the same task.
    enqueue_jobs(&store, 10..60, 0).await;
    let other = store.clone();
    let (x, y) = tokio::join!(
        store.claim::<Job>("x", &[], 30, Duration::from_secs(30)),
        other.claim::<Job>("y", &[], 30, Duration::from_secs(30))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut all: Vec<i64> = x.iter().chain(&y).map(|c| c.id).collect();
    all.sort_unstable();
    let claimed = all.len();
    all.dedup();
    assert_eq!(all.len(), claimed, "a task was claimed twice");
    assert_eq!(claimed, 52, "every ready task was claimed once");
}

async fn an_idempotency_key_enqueues_once(url: String) {
    let store = store(&url).await;
    let job = |n| NewTask::new(Job { n, sleep_ms: 0 }).idempotency_key("order-42");
    let first = store.enqueue(job(1)).await.unwrap();
    let second = store.enqueue(job(2)).await.unwrap();
    assert!(first.created && !second.created);
    assert_eq!(first.id, second.id);
    assert_eq!(store.counts().await.unwrap().ready, 1);
}

async fn an_enqueue_exists_if_and_only_if_its_transaction_commits(url: String) {
    let store = store(&url).await;
    let mut client = client(&url).await.unwrap();
    client
        .batch_execute("CREATE TABLE orders (id BIGINT PRIMARY KEY)")
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO orders VALUES (1)", &[])
        .await
        .unwrap();
    store
        .enqueue_in(&tx, NewTask::new(Job { n: 1, sleep_ms: 0 }))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        store.counts().await.unwrap().ready,
        0,
        "rolled back: no task"
    );
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO orders VALUES (2)", &[])
        .await
        .unwrap();
    store
        .enqueue_in(&tx, NewTask::new(Job { n: 2, sleep_ms: 0 }))
        .await
        .unwrap();
    assert_eq!(store.counts().await.unwrap().ready, 0, "not committed yet");
    tx.commit().await.unwrap();
    assert_eq!(
        store.counts().await.unwrap().ready,
        1,
        "committed: the task"
    );
}

async fn a_rescued_task_s_late_result_changes_nothing(url: String) {
    let store = store(&url).await;
    let id = store
        .enqueue(NewTask::new(Job { n: 7, sleep_ms: 0 }))
        .await
        .unwrap()
        .id;
    let a = store
        .claim::<Job>("a", &[], 1, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(a[0].attempt, 1);
    let s = store.clone();
    eventually(
        Duration::from_secs(10),
        "the expired lease is rescued",
        || {
            let s = s.clone();
            async move { s.rescue().await.unwrap() == [id] }
        },
    )
    .await;
    let b = store
        .claim::<Job>("b", &[], 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!((b[0].id, b[0].attempt), (id, 2));
    assert!(
        !store.complete("a", id, 1, &111_u64).await.unwrap(),
        "fenced"
    );
    assert_eq!(
        store.fail("a", id, 1, "late").await.unwrap(),
        FailOutcome::Fenced
    );
    assert!(
        store
            .renew("a", &[id], Duration::from_secs(30))
            .await
            .unwrap()
            == 0
    );
    assert!(store.complete("b", id, 2, &14_u64).await.unwrap());
    assert_eq!(store.output::<u64>(id).await.unwrap(), Some(14));
}

async fn failures_retry_with_backoff_then_dead_letter_with_history_and_replay(url: String) {
    let store = store(&url).await;
    let id = store
        .enqueue(NewTask::new(Job { n: 3, sleep_ms: 0 }))
        .await
        .unwrap()
        .id;
    let lease = Duration::from_secs(30);
    let first = store.claim::<Job>("a", &[], 1, lease).await.unwrap();
    let outcome = store
        .fail("a", id, first[0].attempt, "boom 1")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FailOutcome::Retrying {
            after: Duration::from_millis(50)
        }
    );
    let s = store.clone();
    eventually(
        Duration::from_secs(10),
        "the retry becomes claimable",
        || {
            let s = s.clone();
            async move { !s.claim::<Job>("b", &[], 1, lease).await.unwrap().is_empty() }
        },
    )
    .await;
    assert_eq!(
        store.fail("b", id, 2, "boom 2").await.unwrap(),
        FailOutcome::Dead
    );
    let dead = store.dead_letters::<Job>(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let errors: Vec<(&str, u32)> = dead[0]
        .attempts
        .iter()
        .map(|a| (a.error.as_str(), a.attempt))
        .collect();
    assert_eq!(errors, [("boom 1", 1), ("boom 2", 2)]);
    assert_eq!(dead[0].attempts[1].node, "b");
    store.replay(id).await.unwrap();
    assert!(store.replay(id).await.is_err(), "no longer dead");
    let again = store.claim::<Job>("c", &[], 1, lease).await.unwrap();
    assert_eq!((again[0].id, again[0].attempt), (id, 1));
    assert_eq!(
        store.fail("c", id, 1, "boom 3").await.unwrap(),
        FailOutcome::Retrying {
            after: Duration::from_millis(50)
        }
    );
    assert_eq!(
        store.purge_dead(None).await.unwrap(),
        0,
        "not dead: not purged"
    );
}

async fn an_error_marked_permanent_is_dead_at_once_whatever_retries_the_store_has_left(
    url: String,
) {
    let runtime = Runtime::builder().worker_threads(1).build().unwrap();
    let store = store(&url).await;
    let id = store
        .enqueue(NewTask::new(Job {
            n: MALFORMED,
            sleep_ms: 0,
        }))
        .await
        .unwrap()
        .id;
    let node = RunningNode::spawn(node(&store, &runtime, "a").await);
    until_counts(&store, Duration::from_secs(30), "the task is dead", |c| {
        c.dead == 1
    })
    .await;
    node.stop().await;
    // The store's policy allows a retry (max_retries = 1): none was made.
    let dead = store.dead_letters::<Job>(10).await.unwrap();
    assert_eq!((dead.len(), dead[0].id), (1, id));
    assert_eq!(dead[0].attempts.len(), 1, "{:?}", dead[0].attempts);
    assert!(
        dead[0].attempts[0].error.contains("not retryable"),
        "{:?}",
        dead[0].attempts[0]
    );
    runtime.shutdown().await;
}

async fn shared_breakers_hold_a_dependency_s_tasks_on_every_node(url: String) {
    let a = store(&url).await;
    let b = store(&url).await;
    let config = SharedBreakerConfig {
        failure_threshold: 2,
        cooldown: Duration::from_millis(300),
    };
    assert!(!a.record_dependency("maps", false, config).await.unwrap());
    assert!(
        a.record_dependency("maps", false, config).await.unwrap(),
        "open"
    );
    b.enqueue(NewTask::new(Job { n: 1, sleep_ms: 0 }).dependency("maps"))
        .await
        .unwrap();
    b.enqueue(NewTask::new(Job { n: 2, sleep_ms: 0 }))
        .await
        .unwrap();
    let lease = Duration::from_secs(30);
    let claimed = b.claim::<Job>("b", &[], 10, lease).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.task.n).collect::<Vec<_>>(), [2]);
    let breakers = b.breakers().await.unwrap();
    assert_eq!(breakers[0].failures, 2);
    assert!(breakers[0].open_for.is_some());
    let s = b.clone();
    eventually(Duration::from_secs(10), "the cooldown ends", || {
        let s = s.clone();
        async move {
            !s.claim::<Job>("b", &[], 10, lease)
                .await
                .unwrap()
                .is_empty()
        }
    })
    .await;
    assert!(
        !a.record_dependency("maps", true, config).await.unwrap(),
        "closed"
    );
}

async fn a_committed_enqueue_wakes_a_listener(url: String) {
    let store = store(&url).await;
    let wake = Wakeups::listen(&url, "jobs");
    // The first wake-up says it listens (look once at what is there).
    assert!(wake.wait(Duration::from_secs(10)).await, "listening");
    assert!(
        !wake.wait(Duration::from_millis(100)).await,
        "nothing enqueued"
    );
    let started = Instant::now();
    store
        .enqueue(NewTask::new(Job { n: 1, sleep_ms: 0 }))
        .await
        .unwrap();
    assert!(
        wake.wait(Duration::from_secs(10)).await,
        "woken by the enqueue"
    );
    eprintln!("  woken {:?} after the enqueue", started.elapsed());
}

async fn two_nodes_share_the_queue_and_run_each_task_once(url: String) {
    let runtime = Runtime::builder().worker_threads(1).build().unwrap();
    let store = store(&url).await;
    RAN.lock().unwrap().clear();
    enqueue_jobs(&store, 0..200, 1).await;
    let a = node(&store, &runtime, "a").await;
    let b = node(&store, &runtime, "b").await;
    let (a, b) = (RunningNode::spawn(a), RunningNode::spawn(b));
    until_counts(&store, Duration::from_secs(60), "every task done", |c| {
        c.done == 200
    })
    .await;
    let (a, b) = tokio::join!(a.stop(), b.stop());
    assert_eq!(a.completed + b.completed, 200, "{a:?} {b:?}");
    assert!(
        a.completed > 0 && b.completed > 0,
        "both nodes worked: {a:?} {b:?}"
    );
    let mut ran = RAN.lock().unwrap().clone();
    ran.sort_unstable();
    assert_eq!(
        ran,
        (0..200).collect::<Vec<_>>(),
        "each task ran exactly once"
    );
    assert_eq!(store.output::<u64>(1).await.unwrap(), Some(0));
    runtime.shutdown().await;
}

async fn a_node_killed_with_sigkill_loses_nothing(url: String) {
    let store = store(&url).await;
    RAN.lock().unwrap().clear();
    enqueue_jobs(&store, 0..40, 100).await;
    let mut victim = std::process::Command::new(std::env::current_exe().unwrap())
        .env(NODE_URL, &url)
        .spawn()
        .unwrap();
    until_counts(
        &store,
        Duration::from_secs(30),
        "the victim holds tasks",
        |c| c.running >= 4,
    )
    .await;
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    let runtime = Runtime::builder().worker_threads(1).build().unwrap();
    let rescuer = RunningNode::spawn(node(&store, &runtime, "rescuer").await);
    until_counts(
        &store,
        Duration::from_secs(60),
        "every task done after the kill",
        |c| c.done == 40,
    )
    .await;
    let report = rescuer.stop().await;
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.done, counts.dead, counts.ready, counts.running),
        (40, 0, 0, 0)
    );
    assert!(
        report.rescued > 0,
        "the victim's leases were rescued: {report:?}"
    );
    eprintln!("  after kill -9: {report:?}");
    runtime.shutdown().await;
}

async fn a_node_rides_out_a_database_restart(url: String) {
    let store = store(&url).await;
    enqueue_jobs(&store, 0..30, 30).await;
    let runtime = Runtime::builder().worker_threads(1).build().unwrap();
    let node = RunningNode::spawn(node(&store, &runtime, "steady").await);
    until_counts(&store, Duration::from_secs(30), "some tasks done", |c| {
        c.done >= 5
    })
    .await;
    tokio::task::spawn_blocking(|| CLUSTER.get().unwrap().restart())
        .await
        .unwrap()
        .unwrap();
    let s = store.clone();
    eventually(
        Duration::from_secs(60),
        "every task done after the restart",
        || {
            let s = s.clone();
            async move { s.counts().await.is_ok_and(|c| c.done == 30) }
        },
    )
    .await;
    let report = node.stop().await;
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.done, counts.dead, counts.ready, counts.running),
        (30, 0, 0, 0)
    );
    // Each result was recorded once: a report lost in the outage left its
    // task to a rescue, and the run that lost its lease was fenced off.
    assert_eq!(report.completed, 30, "{report:?}");
    eprintln!("  through a restart: {report:?}");
    runtime.shutdown().await;
}

/// The advisory lock that holds claims back in
/// [`a_claim_still_in_flight_when_a_durable_node_stops_hands_its_tasks_back`].
const HOLD_CLAIMS: i64 = 4_242;

/// A claim under way when the stop comes: its tasks were never started, so
/// the node hands them back at once (`release`, costing no attempt) instead
/// of leaving them to a rescue when their leases expire.
async fn a_claim_still_in_flight_when_a_durable_node_stops_hands_its_tasks_back(url: String) {
    let runtime = Runtime::builder().worker_threads(1).build().unwrap();
    let store = store(&url).await;
    RAN.lock().unwrap().clear();
    enqueue_jobs(&store, 0..3, 0).await;
    // A claim (ready → running) waits for the advisory lock this session
    // holds; nothing else the node does takes it.
    let client = client(&url).await.unwrap();
    client
        .batch_execute(&format!(
            "CREATE FUNCTION hold_claims() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_advisory_xact_lock_shared({HOLD_CLAIMS}); RETURN NEW; END $$;
             CREATE TRIGGER hold_claims BEFORE UPDATE ON candado_tasks FOR EACH ROW
                 WHEN (OLD.state = 'ready' AND NEW.state = 'running')
                 EXECUTE FUNCTION hold_claims();
             SELECT pg_advisory_lock({HOLD_CLAIMS});"
        ))
        .await
        .unwrap();
    let node = node(&store, &runtime, "stopping").await;
    // The node claims before it first looks at its stop, which is ready at
    // once and says when it was seen: the claim is then under way, held.
    let (seen, stop_seen) = tokio::sync::oneshot::channel::<()>();
    let run = actix::spawn(node.run(
        async move {
            let _ = seen.send(());
        },
        Duration::from_secs(5),
    ));
    stop_seen.await.unwrap();
    client
        .batch_execute(&format!("SELECT pg_advisory_unlock({HOLD_CLAIMS})"))
        .await
        .unwrap();
    let report = run.await.unwrap();
    assert_eq!(
        (report.claimed, report.released, report.completed),
        (3, 3, 0),
        "{report:?}"
    );
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.ready, counts.running), (3, 0), "{counts:?}");
    assert!(RAN.lock().unwrap().is_empty(), "no task was started");
    // Handed back, not failed: the next claim is their first attempt.
    let again = store
        .claim::<Job>("next", &[], 10, Duration::from_secs(30))
        .await
        .unwrap();
    let attempts: Vec<u32> = again.iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, [1, 1, 1]);
    runtime.shutdown().await;
}

/// A node in a child process, until it is killed.
fn serve_as_node(url: String) -> ! {
    actix::System::new().block_on(async move {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let store = store(&url).await;
        let _ = node(&store, &runtime, "victim")
            .await
            .run(std::future::pending(), Duration::from_secs(1))
            .await;
    });
    std::process::exit(0)
}

type Test = fn(String) -> Pin<Box<dyn Future<Output = ()>>>;

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), (|url| Box::pin($name(url))) as Test)),*]
    };
}

fn main() {
    if let Ok(url) = std::env::var(NODE_URL) {
        serve_as_node(url);
    }
    fleet::serve_if_fleet_node();
    let tests = tests![
        migrations_apply_once_even_when_nodes_start_together,
        a_task_has_a_lease_holder_exactly_while_it_runs,
        claims_go_in_priority_then_fifo_order_and_skip_rows_others_hold,
        an_idempotency_key_enqueues_once,
        an_enqueue_exists_if_and_only_if_its_transaction_commits,
        a_rescued_task_s_late_result_changes_nothing,
        failures_retry_with_backoff_then_dead_letter_with_history_and_replay,
        shared_breakers_hold_a_dependency_s_tasks_on_every_node,
        an_error_marked_permanent_is_dead_at_once_whatever_retries_the_store_has_left,
        a_committed_enqueue_wakes_a_listener,
        two_nodes_share_the_queue_and_run_each_task_once,
        a_node_killed_with_sigkill_loses_nothing,
        a_node_rides_out_a_database_restart,
        a_claim_still_in_flight_when_a_durable_node_stops_hands_its_tasks_back,
        three_nodes_with_faults_and_a_kill_9_lose_nothing_and_rescue_within_lease_and_a_heartbeat,
    ];
    let Some(started) = TestCluster::start_or_skip("durable store tests") else {
        return;
    };
    let cluster = CLUSTER.get_or_init(|| started);
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (i, (name, test)) in tests.into_iter().enumerate() {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let db = format!("t{i}");
        cluster.create_database(&db).expect("a fresh database");
        let url = cluster.url(&db);
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            actix::System::new().block_on(test(url));
        }));
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        eprintln!("test {name} ... {verdict} ({:.2?})", started.elapsed());
        if outcome.is_err() {
            failed.push(name);
        }
    }
    cluster.stop();
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    eprintln!(
        "test result: {verdict}. {} passed; {} failed",
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(1);
    }
}
