//! The `durable` section: Candado's PostgreSQL store next to
//! apalis-postgres, end to end and under `kill -9`, on one server.

use std::time::Duration;

use anyhow::bail;
use candado_bench::durable::{self, candado, server, Rescue};
use candado_bench::peers::apalis_pg;
use candado_bench::stats::Summary;

use super::Targets;

/// The server the section measures on: the one at `url`, or a throwaway
/// one (kept alive while the section runs).
fn database(
    url: Option<&str>,
    explicit: bool,
) -> anyhow::Result<Option<(String, Option<server::Server>)>> {
    if let Some(url) = url {
        return Ok(Some((url.to_owned(), None)));
    }
    if server::find_bin().is_none() {
        if explicit {
            bail!("{}", server::missing());
        }
        println!(
            "\n## Durable queue on PostgreSQL\n\nSkipped: {}.",
            server::missing()
        );
        return Ok(None);
    }
    let (url, started) = server::start_bench()?;
    Ok(Some((url, Some(started))))
}

/// What the server runs with, read from the server itself.
fn describe(url: &str) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = durable::admin(url).await?;
        let version: String = client.query_one("SHOW server_version", &[]).await?.get(0);
        let mut settings = Vec::new();
        for name in [
            "fsync",
            "synchronous_commit",
            "full_page_writes",
            "shared_buffers",
            "max_connections",
        ] {
            let value: String = client.query_one(&format!("SHOW {name}"), &[]).await?.get(0);
            settings.push(format!("{name}={value}"));
        }
        Ok(format!("PostgreSQL {version}, {}", settings.join(", ")))
    })
}

fn rate(jobs: usize, d: Duration) -> f64 {
    jobs as f64 / d.as_secs_f64()
}

fn fmt_rate(s: &Summary) -> String {
    format!("{:.1}k ±{:.0}%", s.median / 1e3, s.spread_percent())
}

/// Runs the section; `explicit`: asked for by `--only` (then a missing
/// PostgreSQL is an error, not a skip).
pub(super) fn section(
    url: Option<&str>,
    explicit: bool,
    quick: bool,
    runs: usize,
    jobs: usize,
    targets: &mut Targets,
) -> anyhow::Result<()> {
    let Some((url, server)) = database(url, explicit)? else {
        return Ok(());
    };
    let (jobs, peer_jobs) = if quick {
        (2_000, 500)
    } else {
        (jobs, (jobs / 4).max(1))
    };
    println!("\n## Durable queue on PostgreSQL\n");
    let owner = if server.is_some() {
        "a throwaway server this run started (initdb, pg_ctl on a loopback port)"
    } else {
        "the server given by --pg-url"
    };
    println!(
        "End to end: jobs enqueued in batches of {}, claimed, run by a no-op handler and recorded \
         as completed; timed from the first enqueue until the database holds every job as \
         completed. Each node: a pool of {} workers holding up to {} jobs (Candado: `PgStore` + \
         `DurableNode`, `max_in_flight` {}; apalis-postgres 1.0: {} workers with `batch_size` {}), \
         8 connections; all nodes in this process on 2 worker threads. Server: {owner}; both over \
         TCP to 127.0.0.1, same server, same settings: {}. Candado runs {jobs} jobs per run, \
         apalis {peer_jobs} (a rate is a rate; it is slower). Median of {runs} interleaved rounds.\n",
        durable::BATCH,
        durable::WORKERS,
        durable::IN_FLIGHT,
        durable::IN_FLIGHT,
        durable::WORKERS,
        durable::IN_FLIGHT / durable::WORKERS,
        describe(&url)?
    );
    println!("| nodes × workers | candado jobs/s | apalis-postgres jobs/s | candado / apalis |");
    println!("|---|---|---|---|");
    for nodes in [1, 3] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            ours.push(rate(jobs, candado::throughput(&url, nodes, jobs)?));
            theirs.push(rate(
                peer_jobs,
                apalis_pg::throughput(&url, nodes, peer_jobs)?,
            ));
        }
        let (ours, theirs) = (Summary::of(&ours), Summary::of(&theirs));
        let ratio = ours.median / theirs.median;
        println!(
            "| {nodes} × {} | {} | {} | {ratio:.2} |",
            durable::WORKERS,
            fmt_rate(&ours),
            fmt_rate(&theirs)
        );
        targets.add(
            &format!(
                "durable store ≥ 3× apalis-postgres end to end ({nodes} node(s) of 4 workers)"
            ),
            format!(
                "{ratio:.2}× ({:.1}k vs {:.1}k jobs/s)",
                ours.median / 1e3,
                theirs.median / 1e3
            ),
            ratio >= 3.0,
        );
        targets.add(
            &format!("durable store ≥ 10k jobs/s end to end ({nodes} node(s) of 4 workers)"),
            format!("{:.1}k", ours.median / 1e3),
            ours.median >= 10_000.0,
        );
    }
    let bound = durable::DEAD_AFTER + durable::CHECK_EVERY;
    println!(
        "\n| a node holding {} jobs is killed with SIGKILL (dead after {} ms without renewal; \
         survivors check every {} ms) | → all claimed again by a survivor | → all completed |",
        durable::HELD,
        durable::DEAD_AFTER.as_millis(),
        durable::CHECK_EVERY.as_millis()
    );
    println!("|---|---|---|");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(candado::rescue(&url)?);
        theirs.push(apalis_pg::rescue(&url)?);
    }
    let ms = |rescues: &[Rescue], f: fn(&Rescue) -> Duration| {
        Summary::of(
            &rescues
                .iter()
                .map(|r| f(r).as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        )
    };
    let span = |s: &Summary| format!("{:.0} ms ({:.0}–{:.0})", s.median, s.min, s.max);
    let mut worst = 0.0_f64;
    for (name, rescues) in [
        ("candado (lease expiry, any node's rescue)", &ours),
        (
            "apalis-postgres (worker heartbeat, re-enqueue of orphans)",
            &theirs,
        ),
    ] {
        let (again, done) = (ms(rescues, |r| r.reclaimed), ms(rescues, |r| r.completed));
        if worst == 0.0 {
            worst = done.max;
        }
        println!("| {name} | {} | {} |", span(&again), span(&done));
    }
    targets.add(
        "durable store: a killed node's tasks completed by a survivor within lease + one rescue interval (+ 100 ms)",
        format!("{worst:.0} ms (bound {} ms)", bound.as_millis() + 100),
        worst <= (bound.as_millis() + 100) as f64,
    );
    drop(server);
    Ok(())
}
