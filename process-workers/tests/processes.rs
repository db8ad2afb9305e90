//! Real worker processes under a real supervisor. This binary is its own
//! worker (the procspawn pattern): `main` first serves when started as one,
//! then runs the tests one after another (sequentially, so the counts of
//! file descriptors and child processes belong to one test at a time).
//! Real time is the point here: bounded polls, generous timeouts, outcomes
//! asserted rather than durations.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use candado::{
    BackoffConfig, ExitReason, FixedSampler, HealLimit, HealthCause, HealthStatus, Liveness,
    LivenessConfig, MemoryCause, MemoryConfig, MemoryGuard, MemorySample, RestartCause, Runtime,
    ShutdownPolicy, SupervisorRef, SupervisorSpec,
};
use candado_process::{
    from_bytes, to_bytes, Call, CallError, Pid, Probe, ProbeStatus, ProcessChild, ProcessCommand,
    ProcessOptions, ProtocolError, ServiceChild, ServiceOptions, ToChild, ToParent,
    PROTOCOL_VERSION,
};
use nix::sys::signal::{kill, Signal};

const WORKER: &str = "test-worker";

/// The worker's handler: a few requests that misbehave on purpose.
fn handle(request: &[u8], progress: &candado_process::Progress) -> Result<Vec<u8>, String> {
    match request {
        b"pid" => to_bytes(&std::process::id()).map_err(|e| e.to_string()),
        b"slow" => {
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(50));
                progress.report();
            }
            Ok(b"done".to_vec())
        }
        b"loop" => loop {
            std::hint::spin_loop();
        },
        b"abort" => {
            eprintln!("about to abort");
            std::process::abort()
        }
        b"brake" => candado_process::brake(),
        b"overflow" => {
            eprintln!("about to recurse");
            Ok(recurse(0).to_be_bytes().to_vec())
        }
        b"segv" => {
            eprintln!("about to segfault");
            // Rust's runtime catches SIGSEGV to detect stack overflows; a
            // signal that is not a guard-page hit resets the action to the
            // default and returns, so the first raise may be survived.
            loop {
                let _ = nix::sys::signal::raise(Signal::SIGSEGV);
            }
        }
        b"exit3" => {
            eprintln!("about to exit 3");
            std::process::exit(3)
        }
        b"hog" => {
            // 200 MiB written (so resident, not just reserved), kept alive.
            std::mem::forget(vec![0x5a_u8; HOG_BYTES]);
            Ok(b"hogging".to_vec())
        }
        b"grow" => {
            // 128 MiB written (so resident) and never freed.
            std::mem::forget(vec![0x5a_u8; 128 << 20]);
            Ok(b"grown".to_vec())
        }
        b"panic" => panic!("boom from the worker"),
        b"fail" => Err("refused".into()),
        b"print" => {
            // Stdout is the protocol's; this must not corrupt it.
            println!("a stray print");
            Ok(b"printed".to_vec())
        }
        other => Ok(other.to_ascii_uppercase()),
    }
}

/// What `hog` allocates and touches.
const HOG_BYTES: usize = 200 << 20;

/// Recursion the optimizer cannot turn into a loop: each frame keeps a
/// buffer alive across the call, so the handler thread's stack overflows.
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(std::hint::black_box(frame)[63])
}

/// A worker that breaks the protocol after a correct handshake.
fn rogue(mode: &str) -> ! {
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let frame = |body: &[u8]| {
        let mut f = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    };
    let read = |stdin: &mut std::io::StdinLock<'_>| -> Option<ToChild> {
        let mut len = [0u8; 4];
        stdin.read_exact(&mut len).ok()?;
        let mut body = vec![0; u32::from_be_bytes(len) as usize];
        stdin.read_exact(&mut body).ok()?;
        from_bytes(&body).ok()
    };
    if read(&mut stdin).is_none() {
        std::process::exit(0);
    }
    let ready = ToParent::Ready {
        version: if mode == "version" {
            99
        } else {
            PROTOCOL_VERSION
        },
        pid: std::process::id(),
    };
    stdout
        .write_all(&frame(&to_bytes(&ready).unwrap()))
        .unwrap();
    stdout.flush().unwrap();
    // Wait for a call, then misbehave.
    if read(&mut stdin).is_some() {
        let bad = match mode {
            "garbage" => frame(&[0xff; 12]),
            _ => (64u32 << 20).to_be_bytes().to_vec(), // a 64 MiB frame announced
        };
        let _ = stdout.write_all(&bad);
        let _ = stdout.flush();
    }
    // Then wait for the parent to go.
    while read(&mut stdin).is_some() {}
    std::process::exit(0)
}

/// A parent process that starts one worker, prints its pid and waits to be killed.
fn parent_helper() -> ! {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        // Heartbeats a minute apart: the worker must notice its parent's
        // death by its stdin closing, not by a failed heartbeat write.
        let slow = options().heartbeat_interval(Duration::from_secs(60));
        let spec = SupervisorSpec::new("helper").child(ProcessChild::spec("w", command(), slow));
        let root = runtime.start(spec).await.unwrap();
        let pid = worker_pid(&root).await;
        println!("{pid}");
        std::io::stdout().flush().unwrap();
        std::future::pending::<()>().await;
    });
    std::process::exit(0)
}

fn options() -> ProcessOptions {
    ProcessOptions::default()
        .heartbeat_interval(Duration::from_millis(100))
        .memory_interval(Duration::from_millis(200))
        .max_frame(1 << 20)
}

fn command() -> ProcessCommand {
    ProcessCommand::current_exe(WORKER).unwrap()
}

/// A root with the test worker, fast ticks, liveness by progress, and
/// room for many restarts.
fn tree(spec: SupervisorSpec) -> SupervisorSpec {
    tree_of(spec, command())
}

fn tree_of(spec: SupervisorSpec, command: ProcessCommand) -> SupervisorSpec {
    tree_with(spec, command, options())
}

fn tree_with(
    spec: SupervisorSpec,
    command: ProcessCommand,
    options: ProcessOptions,
) -> SupervisorSpec {
    supervisor(spec).child(
        ProcessChild::spec("w", command, options)
            .shutdown(ShutdownPolicy::Timeout(Duration::from_millis(300))),
    )
}

/// Fast ticks, liveness by heartbeats and progress (1 s each), and room
/// for many restarts.
fn supervisor(spec: SupervisorSpec) -> SupervisorSpec {
    spec.tick_interval(Duration::from_millis(100))
        .intensity(10_000, Duration::from_secs(1))
        .backoff(BackoffConfig {
            base: Duration::ZERO,
            cap: Duration::ZERO,
            jitter: 0.0,
            ..BackoffConfig::default()
        })
        .health(
            Liveness::new(LivenessConfig {
                heartbeat_interval: Some(Duration::from_millis(100)),
                heartbeat_timeout: Duration::from_secs(1),
                ping_interval: None,
                progress_timeout: Some(Duration::from_millis(1000)),
                ..LivenessConfig::default()
            })
            .unwrap(),
        )
        .heal_limit(HealLimit {
            min_gap: Duration::ZERO,
            max: 10_000,
            ..HealLimit::default()
        })
}

fn run<F: Future<Output = ()>>(spec: SupervisorSpec, test: impl FnOnce(SupervisorRef) -> F) {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let root = runtime.start(spec).await.unwrap();
        test(root).await;
        runtime.shutdown().await;
    });
}

async fn call(root: &SupervisorRef, request: &[u8]) -> Result<Vec<u8>, CallError> {
    let worker = root.worker::<ProcessChild>("w").await.unwrap();
    worker.send(Call(request.to_vec())).await.unwrap()
}

/// The pid of the running worker, once it answers calls.
async fn worker_pid(root: &SupervisorRef) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(worker) = root.worker::<ProcessChild>("w").await {
            if let Ok(Ok(bytes)) = worker.send(Call(b"pid".to_vec())).await {
                return from_bytes(&bytes).unwrap();
            }
        }
        assert!(Instant::now() < deadline, "no worker answered within 20 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until a worker other than `old` answers; returns its pid.
async fn replacement(root: &SupervisorRef, old: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pid = worker_pid(root).await;
        if pid != old {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "pid {old} was not replaced within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The state letter of a process, or `None` if it is gone (reaped).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

/// Waits (bounded) until `pid` is reaped: no process, not even a zombie.
async fn assert_reaped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(pid).is_some() {
        assert!(
            Instant::now() < deadline,
            "pid {pid} is still there: {:?}",
            state(pid)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn last_exit(root: &SupervisorRef) -> (Option<ExitReason>, Option<RestartCause>) {
    let child = root.children().await.unwrap().remove(0);
    (child.last_exit, child.last_cause)
}

fn round_trips_reach_a_real_process() {
    run(tree(SupervisorSpec::new("root")), |root| async move {
        let pid = worker_pid(&root).await;
        assert_ne!(pid, std::process::id());
        assert_eq!(call(&root, b"hello").await.unwrap(), b"HELLO");
        assert_eq!(call(&root, b"slow").await.unwrap(), b"done");
        assert_eq!(call(&root, b"print").await.unwrap(), b"printed");
        assert_eq!(
            call(&root, b"fail").await,
            Err(CallError::Handler("refused".into()))
        );
        let worker = root.worker::<ProcessChild>("w").await.unwrap();
        let many: Vec<_> = (0..50u8)
            .map(|i| worker.send(Call(vec![b'a' + i % 26])))
            .collect();
        for (i, reply) in futures_util::future::join_all(many)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(reply.unwrap().unwrap(), vec![b'A' + (i % 26) as u8]);
        }
        let too_big = call(&root, &vec![0; 2 << 20]).await;
        assert!(
            matches!(too_big, Err(CallError::TooLarge { .. })),
            "{too_big:?}"
        );
        assert_eq!(worker.send(Pid).await.unwrap(), Some(pid));
        // Still the same process: nothing above broke it.
        assert_eq!(worker_pid(&root).await, pid);
    });
}

fn a_stuck_handler_is_killed_reaped_and_replaced() {
    run(tree(SupervisorSpec::new("root")), |root| async move {
        let old = worker_pid(&root).await;
        let stuck = call(&root, b"loop").await;
        assert!(matches!(stuck, Err(CallError::Exited(_))), "{stuck:?}");
        let new = replacement(&root, old).await;
        assert_reaped(old).await;
        assert_eq!(call(&root, b"x").await.unwrap(), b"X");
        let (_, cause) = last_exit(&root).await;
        assert_eq!(
            cause,
            Some(RestartCause::Health(HealthCause::Liveness(
                candado::LivenessCause::Stuck
            )))
        );
        assert_ne!(new, old);
    });
}

fn a_frozen_process_is_killed_with_sigkill_reaped_and_replaced() {
    run(tree(SupervisorSpec::new("root")), |root| async move {
        let old = worker_pid(&root).await;
        kill(nix::unistd::Pid::from_raw(old as i32), Signal::SIGSTOP).unwrap();
        let new = replacement(&root, old).await;
        assert_reaped(old).await;
        assert_ne!(new, old);
        assert_eq!(call(&root, b"y").await.unwrap(), b"Y");
        // The process's own heartbeats stopped: silent, not stuck.
        let (exit, cause) = last_exit(&root).await;
        eprintln!("    frozen: {exit:?}");
        let silent = HealthCause::Liveness(candado::LivenessCause::Silent);
        assert_eq!(cause, Some(RestartCause::Health(silent)));
    });
}

fn an_abort_names_sigabrt_and_the_worker_is_restarted() {
    run(tree(SupervisorSpec::new("root")), |root| async move {
        let old = worker_pid(&root).await;
        let Err(CallError::Exited(reason)) = call(&root, b"abort").await else {
            panic!("no exit")
        };
        assert!(reason.contains("SIGABRT"), "{reason}");
        assert!(reason.contains("about to abort"), "{reason}");
        replacement(&root, old).await;
        assert_reaped(old).await;
        let (exit, _) = last_exit(&root).await;
        assert!(
            matches!(exit, Some(ExitReason::Failed(ref r)) if r.contains("SIGABRT")),
            "{exit:?}"
        );
    });
}

/// Sends `request`, which kills the worker: the call in flight fails with
/// `CallError::Exited`, whose reason and the child's `Failed` exit reason
/// both contain every one of `expect`; a new process replaces the old.
fn a_fatal_request_fails_the_call_and_restarts(
    request: &'static [u8],
    expect: &'static [&'static str],
) {
    run(tree(SupervisorSpec::new("root")), |root| async move {
        let old = worker_pid(&root).await;
        let result = call(&root, request).await;
        let Err(CallError::Exited(reason)) = result else {
            panic!("{}: {result:?}", String::from_utf8_lossy(request))
        };
        for word in expect {
            assert!(reason.contains(word), "{word:?} not in {reason}");
        }
        let new = replacement(&root, old).await;
        assert_reaped(old).await;
        assert_ne!(new, old);
        let (exit, cause) = last_exit(&root).await;
        let Some(ExitReason::Failed(text)) = exit else {
            panic!("{exit:?}")
        };
        for word in expect {
            assert!(text.contains(word), "{word:?} not in {text}");
        }
        assert_eq!(cause, Some(RestartCause::Failed));
        assert_eq!(call(&root, b"z").await.unwrap(), b"Z");
    });
}

fn a_stack_overflow_names_sigabrt_with_the_runtime_message_and_restarts() {
    a_fatal_request_fails_the_call_and_restarts(
        b"overflow",
        &[
            "killed by SIGABRT",
            "about to recurse",
            "has overflowed its stack",
        ],
    );
}

fn a_segfault_names_sigsegv_with_the_stderr_tail_and_restarts() {
    a_fatal_request_fails_the_call_and_restarts(
        b"segv",
        &["killed by SIGSEGV", "about to segfault"],
    );
}

fn process_exit_3_is_failed_with_exit_code_3_and_restarts() {
    a_fatal_request_fails_the_call_and_restarts(
        b"exit3",
        &["the worker exited with code 3", "about to exit 3"],
    );
}

fn exit_42_is_the_memory_brake() {
    run(tree(SupervisorSpec::new("root")), |root| async move {
        let old = worker_pid(&root).await;
        let Err(CallError::Exited(reason)) = call(&root, b"brake").await else {
            panic!("no exit")
        };
        assert!(reason.contains("memory brake"), "{reason}");
        replacement(&root, old).await;
        let (_, cause) = last_exit(&root).await;
        assert_eq!(
            cause,
            Some(RestartCause::Health(HealthCause::Memory(
                MemoryCause::Brake
            )))
        );
    });
}

fn a_panic_exits_101_with_its_message() {
    run(tree(SupervisorSpec::new("root")), |root| async move {
        let old = worker_pid(&root).await;
        let Err(CallError::Exited(reason)) = call(&root, b"panic").await else {
            panic!("no exit")
        };
        assert!(
            reason.starts_with("panic: boom from the worker"),
            "{reason}"
        );
        replacement(&root, old).await;
        let (exit, _) = last_exit(&root).await;
        assert!(
            matches!(exit, Some(ExitReason::Panic(ref m)) if m.starts_with("boom from the worker")),
            "{exit:?}"
        );
    });
}

fn rogue_frames_are_typed_errors_and_the_worker_is_restarted() {
    for (mode, expect) in [("garbage", "Garbled"), ("oversized", "Oversized")] {
        let command = ProcessCommand::current_exe("not-a-worker")
            .unwrap()
            .env("ROGUE", mode);
        run(
            tree_of(SupervisorSpec::new("root"), command),
            |root| async move {
                let worker = root.worker::<ProcessChild>("w").await.unwrap();
                let result = worker.send(Call(b"hi".to_vec())).await.unwrap();
                let Err(CallError::Protocol(error)) = result else {
                    panic!("{mode}: {result:?}")
                };
                assert!(
                    format!("{error:?}").starts_with(expect),
                    "{mode}: {error:?}"
                );
                if mode == "oversized" {
                    assert_eq!(error, ProtocolError::Oversized { max: 1 << 20 });
                }
                let deadline = Instant::now() + Duration::from_secs(20);
                while root.children().await.unwrap()[0].restarts == 0 {
                    assert!(Instant::now() < deadline, "{mode}: no restart");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let (exit, _) = last_exit(&root).await;
                assert!(
                    matches!(exit, Some(ExitReason::Failed(ref r)) if r.starts_with("protocol error")),
                    "{exit:?}"
                );
            },
        );
    }
    let command = ProcessCommand::current_exe("not-a-worker")
        .unwrap()
        .env("ROGUE", "version");
    run(
        tree_of(SupervisorSpec::new("root"), command),
        |root| async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let (exit, _) = last_exit(&root).await;
                if let Some(exit) = exit {
                    assert!(
                        matches!(exit, ExitReason::StartFailed(ref r) if r.contains("version mismatch")),
                        "{exit:?}"
                    );
                    break;
                }
                assert!(Instant::now() < deadline, "no version mismatch");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    );
}

/// The pids whose parent is this process, with their state letters.
fn children_of_this_process() -> Vec<(u32, char)> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command's name: state, then ppid.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split(' ');
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if fields.next().and_then(|p| p.parse::<u32>().ok()) == Some(me) {
            out.push((pid, state));
        }
    }
    out
}

/// What this process's descriptors to a worker would be: pipes (stdio)
/// and pidfds (tokio waits on them). A runtime's epoll and eventfd
/// descriptors are left out: they close when its threads finish, after
/// the runtime's shutdown returns.
fn process_fds() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.starts_with("pipe:") || target.contains("pidfd"))
        .collect()
}

/// Waits (bounded) until this process has no child left, not even a zombie.
fn assert_no_child_process_left() {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = children_of_this_process();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "children left: {left:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A tree for commands that never become workers: restarts 100 ms apart,
/// so a failing start does not spin.
fn non_worker_tree(command: ProcessCommand, options: ProcessOptions) -> SupervisorSpec {
    tree_with(SupervisorSpec::new("root"), command, options).backoff(BackoffConfig {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(100),
        jitter: 0.0,
        ..BackoffConfig::default()
    })
}

/// Runs a tree of `command` until its child's first exit, which it returns
/// with the time from the start to that exit and the failed call's error;
/// then checks the runtime's shutdown left no process and no descriptor.
fn first_exit_of(
    command: ProcessCommand,
    options: ProcessOptions,
) -> (ExitReason, Duration, CallError) {
    // Warm up: the runtime's first process spawn opens descriptors for good.
    run(tree(SupervisorSpec::new("root")), |root| async move {
        worker_pid(&root).await;
    });
    assert_no_child_process_left();
    let fds = process_fds();
    let out = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = out.clone();
    run(non_worker_tree(command, options), |root| async move {
        let started = Instant::now();
        // A call sent at once waits for the handshake and fails with it, or
        // arrives after a quick failure and is told the child is not running.
        // (Or the child is already gone: its mailbox closed, or the
        // supervisor no longer lists it as running.)
        let error = match root.worker::<ProcessChild>("w").await {
            Ok(worker) => match worker.send(Call(b"hi".to_vec())).await {
                Ok(answer) => answer.expect_err("a command that is no worker answers no call"),
                Err(_) => CallError::NotRunning,
            },
            Err(_) => CallError::NotRunning,
        };
        let deadline = started + Duration::from_secs(20);
        let exit = loop {
            if let (Some(exit), _) = last_exit(&root).await {
                break exit;
            }
            assert!(Instant::now() < deadline, "no exit within 20 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        *slot.lock().unwrap() = Some((exit, started.elapsed(), error));
    });
    assert_no_child_process_left();
    let left: Vec<String> = process_fds()
        .into_iter()
        .filter(|f| !fds.contains(f))
        .collect();
    assert!(
        left.is_empty(),
        "descriptors of a worker left open: {left:?}"
    );
    let out = out.lock().unwrap().take().unwrap();
    out
}

fn a_command_that_never_shakes_hands_fails_its_start_within_the_handshake_timeout() {
    let timeout = Duration::from_millis(500);
    let (exit, elapsed, error) = first_exit_of(
        ProcessCommand::new("sleep").arg("60"),
        options().handshake_timeout(timeout),
    );
    eprintln!("    sleep 60: {exit:?} after {elapsed:?}; the call: {error:?}");
    assert_eq!(
        exit,
        ExitReason::StartFailed(format!("no handshake within {timeout:?}"))
    );
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(
        matches!(error, CallError::Exited(ref r) if r.contains("no handshake")),
        "{error:?}"
    );
}

fn a_command_that_is_not_a_worker_is_a_typed_start_failure_leaving_nothing_behind() {
    // `cat` echoes the parent's hello; `sh` writes text that is no frame
    // and exits 0 before any handshake.
    let cat = ProcessCommand::new("cat");
    let echo = ProcessCommand::new("sh").arg("-c").arg("echo garbage");
    for command in [cat, echo] {
        let name = format!("{command:?}");
        let (exit, elapsed, error) = first_exit_of(command, options());
        eprintln!("    {name}: {exit:?} after {elapsed:?}; the call: {error:?}");
        assert!(
            matches!(exit, ExitReason::StartFailed(ref r) if r.contains("handshake")),
            "{name}: {exit:?}"
        );
        // A call that reaches the child after its start already failed (it
        // can fail within a few ms) is told so: it is not running.
        assert!(
            matches!(
                error,
                CallError::Exited(_) | CallError::Protocol(_) | CallError::NotRunning
            ),
            "{name}: {error:?}"
        );
    }
}

fn measured_rss_feeds_the_memory_guard_which_restarts_the_process() {
    let guard = MemoryGuard::new(MemoryConfig {
        warning_percent: None,
        critical_percent: None,
        brake_floor: None,
        leak_rate_per_min: None,
        child_critical_bytes: Some(96 << 20),
        settle: Duration::ZERO,
        report_interval: Duration::from_millis(100),
        ..MemoryConfig::default()
    })
    .unwrap();
    run(
        tree(SupervisorSpec::new("root").health(guard)),
        |root| async move {
            let old = worker_pid(&root).await;
            assert_eq!(call(&root, b"grow").await.unwrap(), b"grown");
            let new = replacement(&root, old).await;
            assert_reaped(old).await;
            assert_ne!(new, old);
            let (exit, cause) = last_exit(&root).await;
            eprintln!("    memory: {exit:?}");
            let critical = HealthCause::Memory(MemoryCause::Critical);
            assert_eq!(cause, Some(RestartCause::Health(critical)));
        },
    );
}

const MIB: u64 = 1 << 20;

/// The worker's RSS as this (the parent) process reads it, by pid.
fn rss_of(system: &mut sysinfo::System, pid: u32) -> u64 {
    let pid = sysinfo::Pid::from_u32(pid);
    system.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::Some(&[pid]),
        true,
        sysinfo::ProcessRefreshKind::nothing().with_memory(),
    );
    system.process(pid).map_or(0, sysinfo::Process::memory)
}

fn available(system: &mut sysinfo::System) -> u64 {
    system.refresh_memory();
    system.available_memory()
}

/// The pid of child `id`'s process, once it answers calls.
async fn pid_of(root: &SupervisorRef, id: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(worker) = root.worker::<ProcessChild>(id).await {
            if let Ok(Ok(bytes)) = worker.send(Call(b"pid".to_vec())).await {
                return from_bytes(&bytes).unwrap();
            }
        }
        assert!(Instant::now() < deadline, "{id} did not answer within 20 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn child_info(root: &SupervisorRef, id: &str) -> candado::ChildInfo {
    let children = root.children().await.unwrap();
    children.into_iter().find(|c| c.id == id).unwrap()
}

fn the_memory_victim_is_the_worker_with_the_largest_measured_rss() {
    const GIB: u64 = 1 << 30;
    let calm = MemorySample {
        process_rss: 10 * MIB,
        system_available: 8 * GIB,
        system_total: 16 * GIB,
        cgroup: None,
    };
    let sampler = FixedSampler::new(calm);
    let guard = MemoryGuard::new(MemoryConfig {
        warning_percent: None,
        critical_percent: Some(95.0),
        brake_floor: None,
        leak_rate_per_min: None,
        child_warning_bytes: Some(100 * MIB),
        settle: Duration::from_secs(60),
        report_interval: Duration::from_millis(100),
        ..MemoryConfig::default()
    })
    .unwrap()
    .with_sampler(sampler.clone());
    let child = |id: &str| {
        ProcessChild::spec(id, command(), options())
            .shutdown(ShutdownPolicy::Timeout(Duration::from_millis(300)))
    };
    // `a` is the older: were the victim the oldest, it would be `a`.
    let spec = supervisor(SupervisorSpec::new("root").health(guard))
        .child(child("a"))
        .child(child("b"));
    run(spec, |root| async move {
        let a = pid_of(&root, "a").await;
        let b = pid_of(&root, "b").await;
        let worker = root.worker::<ProcessChild>("b").await.unwrap();
        let hog = worker.send(Call(b"hog".to_vec())).await.unwrap();
        assert_eq!(hog.unwrap(), b"hogging");
        // The guard has seen `b`'s measured RSS once `b` is degraded.
        let deadline = Instant::now() + Duration::from_secs(20);
        while child_info(&root, "b").await.health != HealthStatus::Degraded {
            assert!(Instant::now() < deadline, "b's RSS never reached the guard");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(child_info(&root, "a").await.health, HealthStatus::Healthy);
        // The system runs short: one victim, by measured RSS.
        sampler.set(MemorySample {
            system_available: GIB / 2,
            ..calm
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while pid_of(&root, "b").await == b {
            assert!(Instant::now() < deadline, "b was not restarted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_reaped(b).await;
        let info = child_info(&root, "b").await;
        let critical = HealthCause::Memory(MemoryCause::Critical);
        assert_eq!(info.last_cause, Some(RestartCause::Health(critical)));
        assert_eq!(pid_of(&root, "a").await, a, "a was spared");
        assert_eq!(child_info(&root, "a").await.restarts, 0);
    });
}

fn killing_a_worker_returns_its_memory_to_the_system() {
    run(tree(SupervisorSpec::new("root")), |root| async move {
        let mut system = sysinfo::System::new();
        // Other programs on the machine move available memory too: a
        // round whose recovery they hide is tried again, up to 3 times.
        for round in 1..=3 {
            let pid = worker_pid(&root).await;
            let idle = available(&mut system);
            assert_eq!(call(&root, b"hog").await.unwrap(), b"hogging");
            let rss = rss_of(&mut system, pid);
            assert!(rss >= 150 * MIB, "the worker's RSS is {} MiB", rss / MIB);
            // The kernel's figure may lag (it does on this VM): the lowest
            // reading within a few seconds is the one the hog made.
            let mut hogging = available(&mut system);
            let deadline = Instant::now() + Duration::from_secs(3);
            while hogging + 150 * MIB > idle && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                hogging = hogging.min(available(&mut system));
            }
            kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
            assert_reaped(pid).await;
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut after = available(&mut system);
            while after < hogging + 100 * MIB && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                after = available(&mut system);
            }
            eprintln!(
                "    round {round}: RSS {} MiB; available {} MiB idle, {} MiB hogging, {} MiB after the kill (+{} MiB)",
                rss / MIB,
                idle / MIB,
                hogging / MIB,
                after / MIB,
                after.saturating_sub(hogging) / MIB
            );
            if after >= hogging + 100 * MIB {
                replacement(&root, pid).await;
                return;
            }
        }
        panic!("killing the worker never returned 100 MiB to the system");
    });
}

fn a_worker_exits_when_its_parent_is_killed() {
    let mut parent = std::process::Command::new(std::env::current_exe().unwrap())
        .env("PARENT_HELPER", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let worker: u32 = line.trim().parse().unwrap();
    // Under load the new process may still be finishing its start (`R`):
    // it must settle into waiting for calls (`S`) within a bound. The
    // parent is killed either way, so a failure leaves no process behind
    // to fail the later tests' checks for leftover children.
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(worker) != Some('S') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let settled = state(worker);
    let killed = Instant::now();
    let parent_pid = nix::unistd::Pid::from_raw(parent.id() as i32);
    kill(parent_pid, Signal::SIGKILL).unwrap();
    parent.wait().unwrap();
    assert_eq!(settled, Some('S'), "the worker waits for calls");
    // Gone, or a zombie waiting for whoever inherited it: not running.
    while state(worker).is_some_and(|s| s != 'Z') {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "worker {worker} outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "    worker gone {:?} after its parent was SIGKILLed",
        killed.elapsed()
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// How many restarts the leak test makes (the issue asks for 1,000; the
/// test must stay well under half a minute in debug builds).
const RESTARTS: usize = 1_000;

/// Threads the parent may gain for good and not leak: tokio's blocking
/// pool starts threads on demand and keeps idle ones for 10 s, so a
/// blocking call made by anything in the process may leave a few behind.
const THREAD_SLACK: usize = 4;

fn restarts_leak_no_thread_no_fd_and_no_zombie() {
    run(tree(SupervisorSpec::new("root")), |root| async move {
        // Warm up: the runtime's own descriptors and threads settle first.
        for _ in 0..5 {
            let pid = worker_pid(&root).await;
            kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
            replacement(&root, pid).await;
        }
        let (fds_before, threads_before) = (open_fds(), threads());
        let started = Instant::now();
        let mut pids = Vec::new();
        let mut most_threads = threads_before;
        for _ in 0..RESTARTS {
            let pid = worker_pid(&root).await;
            pids.push(pid);
            kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
            replacement(&root, pid).await;
            most_threads = most_threads.max(threads());
        }
        for pid in &pids {
            assert_reaped(*pid).await;
        }
        let (fds_after, threads_after) = (open_fds(), threads());
        let children = children_of_this_process();
        eprintln!(
            "    {RESTARTS} restarts in {:?}; fds {fds_before} -> {fds_after}; threads {threads_before} -> {threads_after} (at most {most_threads}); children now {children:?}",
            started.elapsed()
        );
        assert!(
            fds_after <= fds_before + 2,
            "fds grew from {fds_before} to {fds_after}"
        );
        assert!(
            threads_after <= threads_before + THREAD_SLACK,
            "threads grew from {threads_before} to {threads_after}"
        );
        // One child: the worker running now; no zombie.
        assert_eq!(children.len(), 1, "{children:?}");
        assert!(children.iter().all(|(_, s)| *s != 'Z'), "{children:?}");
        assert!(root.children().await.unwrap()[0].restarts as usize >= RESTARTS + 5);
    });
    assert_no_child_process_left();
}

/// The test binary as an external service (`SERVICE_MODE`): it listens on
/// `SERVICE_PORT` and, by mode, accepts (`listen`), stops accepting after
/// `CLOSE_AFTER_MS` but keeps running (`close`), or answers HTTP 200 or 500
/// (`http200`, `http500`). It exits by itself after a minute, in case.
fn service(mode: &str) -> ! {
    let port: u16 = std::env::var("SERVICE_PORT").unwrap().parse().unwrap();
    let close_after = std::env::var("CLOSE_AFTER_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    let started = Instant::now();
    // Right after a kill, the port may still be held for a moment.
    let listener = loop {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => break listener,
            Err(e) if started.elapsed() < Duration::from_secs(5) => {
                eprintln!("bind {port}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("bind {port}: {e}"),
        }
    };
    listener.set_nonblocking(true).unwrap();
    println!("service {mode} listening on {port}");
    let mut listener = Some(listener);
    while started.elapsed() < Duration::from_secs(60) {
        if close_after.is_some_and(|after| started.elapsed() >= after) && listener.take().is_some()
        {
            eprintln!("service closed its listener");
        }
        match listener.as_ref().map(std::net::TcpListener::accept) {
            Some(Ok((mut stream, _))) => {
                let status = match mode {
                    "http200" => "200 OK",
                    "http500" => "500 Internal Server Error",
                    _ => continue,
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let answer = format!("HTTP/1.0 {status}\r\nContent-Length: 0\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes());
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    std::process::exit(0)
}

/// A port free a moment ago, for a service to listen on.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn service_command(mode: &str, port: u16) -> ProcessCommand {
    ProcessCommand::new(std::env::current_exe().unwrap())
        .env("SERVICE_MODE", mode)
        .env("SERVICE_PORT", port.to_string())
}

fn service_tree(command: ProcessCommand, probe: Probe) -> SupervisorSpec {
    let options = ServiceOptions::default()
        .grace(Duration::from_millis(300))
        .interval(Duration::from_millis(100))
        .timeout(Duration::from_millis(500));
    supervisor(SupervisorSpec::new("root"))
        .backoff(BackoffConfig {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(50),
            jitter: 0.0,
            ..BackoffConfig::default()
        })
        .child(
            ServiceChild::spec("svc", command, probe, options)
                .shutdown(ShutdownPolicy::Timeout(Duration::from_millis(300))),
        )
}

fn addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// The pid of the running service once its probe passed (one other than
/// `old`, if given).
async fn healthy_service(root: &SupervisorRef, old: Option<u32>) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(service) = root.worker::<ServiceChild>("svc").await {
            if let (Ok(Some(pid)), Ok(report)) =
                (service.send(Pid).await, service.send(ProbeStatus).await)
            {
                if report.passed > 0 && Some(pid) != old {
                    return pid;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no healthy service (other than {old:?}) within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for a service other than `old`, which must be reaped, and checks
/// that liveness restarted it as stuck.
async fn assert_restarted_as_stuck(root: &SupervisorRef, old: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let new = loop {
        if let Ok(service) = root.worker::<ServiceChild>("svc").await {
            if let Ok(Some(pid)) = service.send(Pid).await {
                if pid != old {
                    break pid;
                }
            }
        }
        assert!(Instant::now() < deadline, "{old} not replaced within 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_reaped(old).await;
    let child = root.children().await.unwrap().remove(0);
    assert!(child.restarts >= 1, "{child:?}");
    let stuck = HealthCause::Liveness(candado::LivenessCause::Stuck);
    assert_eq!(
        child.last_cause,
        Some(RestartCause::Health(stuck)),
        "{child:?}"
    );
    new
}

fn a_service_stays_up_while_its_tcp_probe_passes() {
    let port = free_port();
    let tree = service_tree(service_command("listen", port), Probe::Tcp(addr(port)));
    run(tree, |root| async move {
        let pid = healthy_service(&root, None).await;
        // Twice the progress timeout: passing probes keep it alive.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let service = root.worker::<ServiceChild>("svc").await.unwrap();
        assert_eq!(service.send(Pid).await.unwrap(), Some(pid));
        let report = service.send(ProbeStatus).await.unwrap();
        assert!(report.passed >= 10, "{report:?}");
        assert_eq!(report.consecutive_failures, 0);
        assert_eq!(root.children().await.unwrap()[0].restarts, 0);
    });
    assert_no_child_process_left();
}

fn a_service_that_stops_accepting_is_restarted_by_liveness_and_reaped() {
    let port = free_port();
    let command = service_command("close", port).env("CLOSE_AFTER_MS", "1000");
    run(
        service_tree(command, Probe::Tcp(addr(port))),
        |root| async move {
            let old = healthy_service(&root, None).await;
            let new = assert_restarted_as_stuck(&root, old).await;
            // The new one is probed healthy in turn.
            assert_eq!(healthy_service(&root, Some(old)).await, new);
        },
    );
    assert_no_child_process_left();
}

fn a_failing_command_probe_restarts_the_service() {
    let port = free_port();
    let probe = Probe::Command(ProcessCommand::new("false"));
    run(
        service_tree(service_command("listen", port), probe),
        |root| async move {
            let old = service_pid(&root).await;
            assert_restarted_as_stuck(&root, old).await;
        },
    );
    assert_no_child_process_left();
}

/// The pid of the running service, probed or not.
async fn service_pid(root: &SupervisorRef) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(service) = root.worker::<ServiceChild>("svc").await {
            if let Ok(Some(pid)) = service.send(Pid).await {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "no service within 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn an_http_probe_passes_on_200_and_restarts_the_service_on_500() {
    let port = free_port();
    let probe = Probe::http(addr(port), "/health");
    run(
        service_tree(service_command("http200", port), probe),
        |root| async move {
            let pid = healthy_service(&root, None).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let service = root.worker::<ServiceChild>("svc").await.unwrap();
            assert_eq!(service.send(Pid).await.unwrap(), Some(pid));
            assert_eq!(root.children().await.unwrap()[0].restarts, 0);
        },
    );
    let port = free_port();
    let probe = Probe::http(addr(port), "/health");
    run(
        service_tree(service_command("http500", port), probe),
        |root| async move {
            let old = service_pid(&root).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let service = root.worker::<ServiceChild>("svc").await.unwrap();
            let report = service.send(ProbeStatus).await.unwrap();
            assert_eq!(report.passed, 0, "{report:?}");
            assert_restarted_as_stuck(&root, old).await;
        },
    );
    assert_no_child_process_left();
}

fn main() {
    candado_process::run_if_worker(WORKER, handle);
    if let Ok(mode) = std::env::var("ROGUE") {
        rogue(&mode);
    }
    if std::env::var_os("PARENT_HELPER").is_some() {
        parent_helper();
    }
    if let Ok(mode) = std::env::var("SERVICE_MODE") {
        service(&mode);
    }
    let tests: [(&str, fn()); 21] = [
        (
            "round_trips_reach_a_real_process",
            round_trips_reach_a_real_process,
        ),
        (
            "a_stuck_handler_is_killed_reaped_and_replaced",
            a_stuck_handler_is_killed_reaped_and_replaced,
        ),
        (
            "a_frozen_process_is_killed_with_sigkill_reaped_and_replaced",
            a_frozen_process_is_killed_with_sigkill_reaped_and_replaced,
        ),
        (
            "an_abort_names_sigabrt_and_the_worker_is_restarted",
            an_abort_names_sigabrt_and_the_worker_is_restarted,
        ),
        (
            "a_stack_overflow_names_sigabrt_with_the_runtime_message_and_restarts",
            a_stack_overflow_names_sigabrt_with_the_runtime_message_and_restarts,
        ),
        (
            "a_segfault_names_sigsegv_with_the_stderr_tail_and_restarts",
            a_segfault_names_sigsegv_with_the_stderr_tail_and_restarts,
        ),
        (
            "process_exit_3_is_failed_with_exit_code_3_and_restarts",
            process_exit_3_is_failed_with_exit_code_3_and_restarts,
        ),
        ("exit_42_is_the_memory_brake", exit_42_is_the_memory_brake),
        (
            "a_panic_exits_101_with_its_message",
            a_panic_exits_101_with_its_message,
        ),
        (
            "rogue_frames_are_typed_errors_and_the_worker_is_restarted",
            rogue_frames_are_typed_errors_and_the_worker_is_restarted,
        ),
        (
            "a_command_that_never_shakes_hands_fails_its_start_within_the_handshake_timeout",
            a_command_that_never_shakes_hands_fails_its_start_within_the_handshake_timeout,
        ),
        (
            "a_command_that_is_not_a_worker_is_a_typed_start_failure_leaving_nothing_behind",
            a_command_that_is_not_a_worker_is_a_typed_start_failure_leaving_nothing_behind,
        ),
        (
            "measured_rss_feeds_the_memory_guard_which_restarts_the_process",
            measured_rss_feeds_the_memory_guard_which_restarts_the_process,
        ),
        (
            "the_memory_victim_is_the_worker_with_the_largest_measured_rss",
            the_memory_victim_is_the_worker_with_the_largest_measured_rss,
        ),
        (
            "killing_a_worker_returns_its_memory_to_the_system",
            killing_a_worker_returns_its_memory_to_the_system,
        ),
        (
            "a_worker_exits_when_its_parent_is_killed",
            a_worker_exits_when_its_parent_is_killed,
        ),
        (
            "restarts_leak_no_thread_no_fd_and_no_zombie",
            restarts_leak_no_thread_no_fd_and_no_zombie,
        ),
        (
            "a_service_stays_up_while_its_tcp_probe_passes",
            a_service_stays_up_while_its_tcp_probe_passes,
        ),
        (
            "a_service_that_stops_accepting_is_restarted_by_liveness_and_reaped",
            a_service_that_stops_accepting_is_restarted_by_liveness_and_reaped,
        ),
        (
            "a_failing_command_probe_restarts_the_service",
            a_failing_command_probe_restarts_the_service,
        ),
        (
            "an_http_probe_passes_on_200_and_restarts_the_service_on_500",
            an_http_probe_passes_on_200_and_restarts_the_service_on_500,
        ),
    ];
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(test));
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        eprintln!("test {name} ... {verdict} ({:.2?})", started.elapsed());
        if outcome.is_err() {
            failed.push(name);
        }
    }
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
