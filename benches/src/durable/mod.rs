//! The durable queue on PostgreSQL, end to end: jobs enqueued, claimed,
//! run by a no-op handler and recorded as completed, for Candado's store
//! (`PgStore` + `DurableNode` feeding a pool of 4 workers) and for
//! apalis-postgres ([`crate::peers::apalis_pg`]) on the same database; and
//! the time a survivor takes to rescue the tasks of a node killed with
//! `SIGKILL`.
//!
//! Both systems run the same protocol: the queue's rows are deleted and the
//! table vacuumed, the nodes start, then the clock starts, a producer
//! enqueues the jobs in batches of [`BATCH`] while the nodes drain them,
//! and the clock stops when the database holds every job as completed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio_postgres::{Client, NoTls};

pub mod candado;
pub mod server;

/// The queue (Candado) and job type (apalis) the benchmark uses; its rows
/// are deleted before each run.
pub const QUEUE: &str = "candado-compare";

/// Jobs per enqueue batch.
pub const BATCH: usize = 500;

/// Workers per node (a Candado pool of 4; 4 apalis workers).
pub const WORKERS: usize = 4;

/// Tasks a node holds at once: Candado's `max_in_flight`, and apalis's
/// `batch_size` × workers.
pub const IN_FLIGHT: usize = 64;

/// Tasks the killed node holds in the rescue measurement.
pub const HELD: usize = 8;

/// Liveness settings of the rescue measurement, the same for both: a node
/// counts as dead [`DEAD_AFTER`] after its last renewal (Candado's lease;
/// apalis's heartbeat interval × missed heartbeats), and survivors look
/// for dead nodes' tasks every [`CHECK_EVERY`] (Candado's renewal and
/// rescue interval; apalis's heartbeat, which runs its re-enqueue).
pub const DEAD_AFTER: Duration = Duration::from_secs(1);
/// See [`DEAD_AFTER`].
pub const CHECK_EVERY: Duration = Duration::from_millis(250);

/// No-op handler runs in this process (both systems' handlers count here).
pub(crate) static RAN: AtomicU64 = AtomicU64::new(0);

/// Set in a victim process: which system it runs (`candado`, `apalis`).
const VICTIM: &str = "CANDADO_BENCH_DURABLE_VICTIM";
/// Set in a victim process: the database.
const VICTIM_URL: &str = "CANDADO_BENCH_DURABLE_URL";

/// How long after a node's `SIGKILL` its tasks were claimed again, and
/// completed, by a survivor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rescue {
    /// Until every task it held was claimed by a survivor.
    pub reclaimed: Duration,
    /// Until every task it held was completed.
    pub completed: Duration,
}

/// In a victim process (this binary re-run by a rescue measurement): runs
/// that system's node, whose handler never finishes, until killed. Returns
/// at once elsewhere.
pub fn serve_if_victim() {
    let (Ok(system), Ok(url)) = (std::env::var(VICTIM), std::env::var(VICTIM_URL)) else {
        return;
    };
    match system.as_str() {
        "candado" => candado::serve_victim(&url),
        _ => crate::peers::apalis_pg::serve_victim(&url),
    }
    std::process::exit(0);
}

/// A connection for the harness's own queries.
pub async fn admin(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .context("connecting to the benchmark database")?;
    tokio::spawn(connection);
    Ok(client)
}

/// Waits until `jobs` handlers ran here, then until `pending` (a query:
/// are jobs of the queue still ready or running?) says none is left: all
/// `jobs` were enqueued before the last of them ran, so all are recorded
/// as completed.
pub(crate) async fn wait_completed(
    client: &Client,
    pending: &str,
    jobs: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    // The handlers' counter first: querying often would load the server.
    while RAN.load(Ordering::Relaxed) < jobs as u64 {
        if Instant::now() > deadline {
            bail!(
                "only {} of {jobs} jobs ran within {limit:?}",
                RAN.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    loop {
        let left: bool = client.query_one(pending, &[&QUEUE]).await?.get(0);
        if !left {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{jobs} jobs ran, but not all were recorded as completed within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Kills `victim` with `SIGKILL` and times, polling with `progress` (a
/// query giving how many of the [`HELD`] tasks were claimed again and how
/// many completed), until a survivor has claimed and completed them all.
pub(crate) async fn time_rescue(
    client: &Client,
    victim: &mut std::process::Child,
    progress: &str,
) -> anyhow::Result<Rescue> {
    victim.kill().context("killing the victim")?; // SIGKILL
    let killed = Instant::now();
    let _ = victim.wait();
    let mut reclaimed = None;
    loop {
        let row = client.query_one(progress, &[&QUEUE]).await?;
        let (again, done): (i64, i64) = (row.get(0), row.get(1));
        if again >= HELD as i64 && reclaimed.is_none() {
            reclaimed = Some(killed.elapsed());
        }
        if done >= HELD as i64 {
            let completed = killed.elapsed();
            return Ok(Rescue {
                reclaimed: reclaimed.unwrap_or(completed),
                completed,
            });
        }
        if killed.elapsed() > Duration::from_secs(60) {
            bail!("the killed node's tasks were not rescued within 60 s ({again} claimed again, {done} completed)");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Starts this binary as a victim node of `system`.
pub(crate) fn spawn_victim(system: &str, url: &str) -> anyhow::Result<std::process::Child> {
    std::process::Command::new(std::env::current_exe()?)
        .env(VICTIM, system)
        .env(VICTIM_URL, url)
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting the victim node")
}

/// Polls `held` (a query counting the tasks the victim holds) until it
/// holds [`HELD`].
pub(crate) async fn wait_held(client: &Client, held: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = client.query_one(held, &[&QUEUE]).await?.get(0);
        if n >= HELD as i64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the victim node holds {n} of {HELD} tasks after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
