//! Process workers (`candado-process`) under the shapes the in-process pool
//! is measured in: spawn time and idle RSS per worker process, tasks through
//! 4 `ProcessChild` workers, and how long a hung or frozen process takes to
//! be replaced.
//!
//! The worker processes are this very binary, re-run: its `main` must call
//! [`serve_if_worker`] first thing (the `compare` binary does).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use candado::{
    BackoffConfig, HealLimit, Liveness, LivenessConfig, Runtime, ShutdownPolicy, SupervisorRef,
    SupervisorSpec, VerdictKind,
};
use candado_process::{
    from_bytes, to_bytes, Call, CallError, Pid, ProcessChild, ProcessCommand, ProcessOptions,
};
use serde::{Deserialize, Serialize};

use crate::peers::{fan_out, worker_for};
use crate::Shape;

/// The worker entry point's name ([`candado_process::run_if_worker`]).
pub const WORKER: &str = "candado-bench";

/// What a benchmark task does in its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Work {
    /// Answers at once.
    Noop,
    /// Blocks the handler's thread (`std::thread::sleep`), then answers.
    Sleep(Duration),
    /// Spins in `loop {}` for ever: the handler never returns.
    Spin,
}

/// A request: the value to answer and the work to do first.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    value: u64,
    work: Work,
}

/// If this process was started as a benchmark worker, serves calls and
/// never returns; otherwise returns at once. Call it first thing in `main`.
pub fn serve_if_worker() {
    candado_process::run_if_worker(WORKER, |bytes, _progress| {
        let request: Request = from_bytes(bytes).map_err(|e| e.to_string())?;
        match request.work {
            Work::Noop => {}
            Work::Sleep(d) => std::thread::sleep(d),
            #[allow(clippy::empty_loop)]
            Work::Spin => loop {},
        }
        to_bytes(&request.value).map_err(|e| e.to_string())
    });
}

/// The supervisor's tick in these benchmarks: a hung process is found on
/// the first tick past its progress timeout.
pub const TICK: Duration = Duration::from_millis(100);

/// How often the worker processes heartbeat.
pub const HEARTBEAT: Duration = Duration::from_millis(100);

/// Liveness's progress timeout: a call without progress for this long is
/// stuck (the handler hangs while its process still heartbeats).
pub const PROGRESS_TIMEOUT: Duration = Duration::from_millis(500);

/// Liveness's heartbeat timeout: a process without heartbeats for this long
/// is silent (frozen). The process's own heartbeats are its child's.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(500);

/// The time a stopped process has to exit after SIGTERM before SIGKILL.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(100);

/// A root supervisor of `workers` process workers `w0`, `w1`, … started all
/// at once, with fast ticks, liveness by progress, no restart backoff and
/// room for many restarts.
fn tree(workers: usize) -> SupervisorSpec {
    let command = ProcessCommand::current_exe(WORKER).expect("the current executable");
    let options = ProcessOptions::default().heartbeat_interval(HEARTBEAT);
    let liveness = Liveness::new(LivenessConfig {
        heartbeat_interval: Some(HEARTBEAT),
        heartbeat_timeout: HEARTBEAT_TIMEOUT,
        ping_interval: None,
        progress_timeout: Some(PROGRESS_TIMEOUT),
        ..LivenessConfig::default()
    })
    .expect("valid liveness");
    let mut spec = SupervisorSpec::new("processes")
        .concurrent_start(true)
        .tick_interval(TICK)
        .intensity(1_000, Duration::from_secs(1))
        .backoff(BackoffConfig {
            base: Duration::ZERO,
            cap: Duration::ZERO,
            jitter: 0.0,
            ..BackoffConfig::default()
        })
        .health(liveness)
        .heal_limit(HealLimit {
            min_gap: Duration::ZERO,
            max: 1_000,
            ..HealLimit::default()
        });
    for i in 0..workers.max(1) {
        spec = spec.child(
            ProcessChild::spec(format!("w{i}"), command.clone(), options.clone())
                .shutdown(ShutdownPolicy::Timeout(SHUTDOWN_TIMEOUT)),
        );
    }
    spec
}

/// Sends `work` for `value` to `worker` and returns the answer.
async fn call(worker: &Addr<ProcessChild>, value: u64, work: Work) -> Result<u64, CallError> {
    let request = to_bytes(&Request { value, work }).expect("encodable");
    let reply = worker
        .send(Call(request))
        .await
        .map_err(|_| CallError::NotRunning)??;
    Ok(from_bytes(&reply).expect("a u64"))
}

/// Waits until worker `id` of `root` answers a no-op; returns its address.
async fn answering(root: &SupervisorRef, id: &str) -> Addr<ProcessChild> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(worker) = root.worker::<ProcessChild>(id).await {
            if call(&worker, 0, Work::Noop).await == Ok(0) {
                return worker;
            }
        }
        assert!(Instant::now() < deadline, "{id} did not answer in 20 s");
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs `body` on the System arbiter with a fresh runtime (two worker
/// threads, like the in-process pool), the supervisor it was just asked to
/// start with `workers` process workers, and the instant it was asked; then
/// shuts everything down.
fn with_tree<T>(
    workers: usize,
    body: impl AsyncFnOnce(&SupervisorRef, &Runtime, Instant) -> T,
) -> T {
    let system = actix::System::new();
    let out = system.block_on(async {
        let runtime = Runtime::builder()
            .worker_threads(2)
            .build()
            .expect("runtime");
        let asked = Instant::now();
        let root = runtime.start(tree(workers)).await.expect("tree starts");
        let out = body(&root, &runtime, asked).await;
        runtime.shutdown().await;
        out
    });
    actix::System::current().stop();
    drop(system);
    out
}

/// [`with_tree`] once every worker answers a no-op: `body` gets their
/// addresses.
fn with_workers<T>(workers: usize, body: impl AsyncFnOnce(Vec<Addr<ProcessChild>>) -> T) -> T {
    with_tree(workers, async |root, _, _| {
        let mut addrs = Vec::with_capacity(workers);
        for i in 0..workers.max(1) {
            addrs.push(answering(root, &format!("w{i}")).await);
        }
        body(addrs).await
    })
}

/// Spawn time and idle memory of worker processes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpawnReport {
    /// Workers started.
    pub workers: usize,
    /// From asking for the workers until every one answered a call, divided
    /// by `workers`.
    pub per_worker: Duration,
    /// Resident memory of the worker processes once idle, divided by
    /// `workers` (it counts pages they share, such as the binary's code).
    pub rss_per_worker: f64,
    /// The anonymous part of it (heap, stacks: the worker's own memory).
    pub anon_per_worker: f64,
}

/// Starts `workers` process workers at once and times them until each
/// answered a no-op call (spawn, exec, handshake, first round trip); then,
/// after `idle`, sums their resident memory.
pub fn spawn(workers: usize, idle: Duration) -> SpawnReport {
    with_tree(workers, async |root, _, asked| {
        let waits: Vec<_> = (0..workers.max(1))
            .map(|i| {
                let root = root.clone();
                actix::spawn(async move { answering(&root, &format!("w{i}")).await })
            })
            .collect();
        let mut addrs = Vec::with_capacity(waits.len());
        for wait in waits {
            addrs.push(wait.await.expect("waiter"));
        }
        let spawned = asked.elapsed();
        actix_rt::time::sleep(idle).await;
        let mut pids = Vec::with_capacity(addrs.len());
        for addr in &addrs {
            pids.extend(addr.send(Pid).await.expect("worker running"));
        }
        memory_report(workers, spawned, &pids)
    })
}

/// A [`SpawnReport`] of `pids`, spawned in `spawned`.
pub fn memory_report(workers: usize, spawned: Duration, pids: &[u32]) -> SpawnReport {
    let (rss, anon) = pids.iter().fold((0, 0), |(rss, anon), &pid| {
        let (r, a) = memory_of(pid);
        (rss + r, anon + a)
    });
    let n = workers.max(1);
    SpawnReport {
        workers: n,
        per_worker: spawned / n as u32,
        rss_per_worker: rss as f64 / n as f64,
        anon_per_worker: anon as f64 / n as f64,
    }
}

/// Resident and anonymous resident bytes of process `pid` (`VmRSS` and
/// `RssAnon` of `/proc/<pid>/status`), zero if unreadable.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |k| k * 1024)
    };
    (kib("VmRSS:"), kib("RssAnon:"))
}

/// The pids of this process's children (from `/proc/*/stat`).
pub fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The parent pid is the second field after the command's ')'.
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(me)
        })
        .collect()
}

/// Wall time of `shape.total()` tasks doing `work` through `shape.workers`
/// process workers, from `shape.submitters` submitters on the System
/// arbiter (each awaiting its reply before its next call, walking the
/// workers round-robin), so about `submitters / workers` calls are in
/// flight per worker.
pub fn throughput(shape: Shape, work: Work) -> Duration {
    with_workers(shape.workers, async |addrs| {
        let addrs: Arc<[Addr<ProcessChild>]> = addrs.into();
        let call = move |s: usize, n: usize, value: u64| {
            let worker = addrs[worker_for(s, n, addrs.len())].clone();
            async move { call(&worker, value, work).await.expect("the call succeeds") }
        };
        fan_out(shape, call, actix::spawn).await
    })
}

/// How a worker process is made to stop answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hang {
    /// Its handler spins in `loop {}` on a call: heartbeats go on, the call
    /// makes no progress.
    Spin,
    /// The whole process is frozen (SIGSTOP): no heartbeat, no progress.
    Freeze,
}

/// How fast a hung or frozen worker process was found and replaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HangRun {
    /// From the hang to liveness's restart verdict (as an event reached a
    /// subscriber).
    pub detected: Duration,
    /// From the hang until a call on the replacement completed: detection,
    /// the stop (SIGTERM; SIGKILL after the shutdown timeout), reaping, a
    /// fresh process and its handshake.
    pub replaced: Duration,
}

/// Makes the only worker process stop answering (`hang`) and times its
/// replacement. The hang begins `phase` after a warm-up call, so runs can
/// spread it over a tick.
pub fn hang_to_replacement(hang: Hang, phase: Duration) -> HangRun {
    with_tree(1, async |root, runtime, _| {
        let old = answering(root, "w0").await;
        let old_pid = old.send(Pid).await.expect("running").expect("a pid");
        actix_rt::time::sleep(phase).await;
        let mut events = runtime.subscribe();
        let verdict = actix::spawn(async move {
            let restart = |e: &candado::Event| {
                matches!(
                    &e.kind,
                    candado::EventKind::VerdictChanged { strategy, verdict: VerdictKind::Restart, .. }
                        if strategy == "liveness"
                )
            };
            events.wait_for(restart).await.expect("a restart verdict");
            Instant::now()
        });
        let began = Instant::now();
        let spin = match hang {
            Hang::Spin => Some(actix::spawn(async move { call(&old, 1, Work::Spin).await })),
            Hang::Freeze => {
                let pid = nix::unistd::Pid::from_raw(old_pid as i32);
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
                None
            }
        };
        // No call may reach the old process: a call in flight is work
        // begun, which would restart its progress clock.
        let fresh = replacement(root, old_pid).await;
        let answered = call(&fresh, 2, Work::Noop).await;
        let replaced = began.elapsed();
        assert_eq!(answered, Ok(2), "the replacement answers");
        if let Some(spin) = spin {
            let failed = spin.await.expect("spinning call");
            assert!(matches!(failed, Err(CallError::Exited(_))), "{failed:?}");
        }
        let detected = verdict.await.expect("verdict watcher");
        HangRun {
            detected: detected.saturating_duration_since(began),
            replaced,
        }
    })
}

/// Waits for a worker `w0` whose pid is not `old`.
async fn replacement(root: &SupervisorRef, old: u32) -> Addr<ProcessChild> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(worker) = root.worker::<ProcessChild>("w0").await {
            if let Ok(Some(pid)) = worker.send(Pid).await {
                if pid != old {
                    return worker;
                }
            }
        }
        assert!(Instant::now() < deadline, "pid {old} not replaced in 20 s");
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
}
