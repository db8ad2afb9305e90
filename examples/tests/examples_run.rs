//! Runs the example programs as a user would: each built binary, in its own
//! process, must finish by itself, succeed and print what it promises.
//!
//! The programs are `[[bin]]` targets (see `Cargo.toml` for why not
//! `[[example]]`s), so cargo builds them before this test and hands their
//! paths over in `CARGO_BIN_EXE_<name>`. Each run is bounded: a program
//! still running after [`LIMIT`] is killed and the test fails.
//!
//! `durable_pool` runs against a throwaway PostgreSQL (the durable store's
//! test cluster) when one is installed, and is skipped with a message
//! otherwise, unless `CANDADO_REQUIRE_POSTGRES` is set; without a URL it
//! must say what it needs and exit with status 2.

use candado_postgres::testing::TestCluster;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The longest a program may run (they take well under ten seconds).
const LIMIT: Duration = Duration::from_secs(60);

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn run(exe: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(exe);
    command
        .args(args)
        .env_remove("CANDADO_EXAMPLE_PG_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the example starts");
    // Read both pipes on threads, so a chatty program never blocks on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{exe} still ran after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn expect_success(exe: &str, args: &[&str], lines: &[&str]) -> Run {
    let run = run(exe, args, &[]);
    assert!(
        run.status.success(),
        "{exe} failed ({}):\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    for line in lines {
        assert!(
            run.stdout.contains(line),
            "{exe} did not print {line:?}:\n{}",
            run.stdout
        );
    }
    run
}

#[test]
fn the_three_level_tree_restarts_the_crashed_group_and_stops_in_order() {
    let run = expect_success(
        env!("CARGO_BIN_EXE_tree"),
        &[],
        &[
            "shard-a answers as incarnation 2",
            "root/predict: Running, 0 restarts",
        ],
    );
    let stopped = run
        .stdout
        .rfind("\"child\":\"shard-a\",\"incarnation\":2,\"reason\":{\"kind\":\"shutdown\"");
    let root_stopped = run
        .stdout
        .rfind("\"child\":\"predict\",\"incarnation\":1,\"reason\":{\"kind\":\"shutdown\"");
    assert!(
        stopped < root_stopped,
        "children stop before their supervisor:\n{}",
        run.stdout
    );
}

#[test]
fn the_pool_retries_dead_letters_and_balances_its_books() {
    expect_success(
        env!("CARGO_BIN_EXE_pool"),
        &[],
        &[
            "urgent batch scored 14",
            "dead-lettered after 3 attempts",
            "the workers live on",
            "balanced (submitted = completed + dead-lettered + returned): true",
        ],
    );
}

#[test]
fn the_dynamic_supervisor_starts_bounds_restarts_and_forgets_children() {
    expect_success(
        env!("CARGO_BIN_EXE_dynamic_supervisor"),
        &[],
        &[
            "is full: it holds its maximum of 3 children",
            "hello ada, from incarnation 2",
            "sessions held: 2 of 3",
            "edsger now fits",
            "started 2000 children of `many`",
            "sessions held after the shutdown: 0",
        ],
    );
}

#[test]
fn the_tested_tree_starts_and_stops() {
    expect_success(
        env!("CARGO_BIN_EXE_tested_tree"),
        &[],
        &["started news with 1 child: poller", "stopped"],
    );
}

#[test]
fn the_process_worker_is_replaced_after_it_aborts() {
    expect_success(
        env!("CARGO_BIN_EXE_process_worker"),
        &[],
        &[
            "answered \"HELLO\"",
            "killed by SIGABRT",
            "answered \"AGAIN\"",
            "restarts of `upper`: 1",
        ],
    );
}

#[test]
fn the_durable_pool_without_a_url_says_what_it_needs() {
    let run = run(env!("CARGO_BIN_EXE_durable_pool"), &[], &[]);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("needs a PostgreSQL server"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn the_durable_pool_runs_its_tasks_on_a_throwaway_postgres() {
    let Some(cluster) = TestCluster::start_or_skip("the durable_pool example") else {
        return;
    };
    let url = cluster.url("postgres");
    let result = std::panic::catch_unwind(|| {
        let run = run(env!("CARGO_BIN_EXE_durable_pool"), &[&url], &[]);
        assert!(
            run.status.success(),
            "durable_pool failed ({}):\n{}\n{}",
            run.status,
            run.stdout,
            run.stderr
        );
        assert!(run.stdout.contains("enqueued 20 tasks"), "{}", run.stdout);
        assert!(run.stdout.contains("done: 19, dead: 1"), "{}", run.stdout);
    });
    cluster.stop();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
