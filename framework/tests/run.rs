//! `RuntimeBuilder::run` (the entry point: the application on a worker
//! thread) and `Runtime::spawn` (futures spread over the worker threads).
//! Real threads: where code runs is the point.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use actix::{Actor, ArbiterHandle, Context};
use candado::{ChildSpec, JoinError, RunError, Runtime, RuntimeError, SupervisorSpec};

/// A worker that sets its flag when it stops.
struct Flagged(Arc<AtomicBool>);

impl Actor for Flagged {
    type Context = Context<Self>;
    fn stopped(&mut self, _: &mut Context<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn flagged_tree(stopped: &Arc<AtomicBool>) -> SupervisorSpec {
    let flag = stopped.clone();
    SupervisorSpec::new("app").child(ChildSpec::worker("w", move |_| Flagged(flag.clone())))
}

/// The id of the thread behind `arbiter`.
async fn thread_of(arbiter: &ArbiterHandle) -> ThreadId {
    let (tx, rx) = tokio::sync::oneshot::channel();
    assert!(arbiter.spawn(async move {
        let _ = tx.send(std::thread::current().id());
    }));
    rx.await.expect("the thread answers")
}

#[test]
fn the_application_runs_on_a_worker_thread_never_on_the_control_thread() {
    let (app, workers, control) = Runtime::builder()
        .worker_threads(2)
        .run(async |runtime| {
            let mut workers = Vec::new();
            for arbiter in runtime.worker_arbiters() {
                workers.push(thread_of(&arbiter).await);
            }
            let control = thread_of(&runtime.control_arbiter()).await;
            (std::thread::current().id(), workers, control)
        })
        .expect("runs");
    assert!(workers.contains(&app), "{app:?} is not one of {workers:?}");
    assert_ne!(app, control);
    assert_ne!(app, std::thread::current().id());
}

#[test]
fn run_returns_after_shutting_down_every_tree_the_application_left_running() {
    let stopped = Arc::new(AtomicBool::new(false));
    let tree = flagged_tree(&stopped);
    let started = Runtime::builder()
        .worker_threads(1)
        .run(async move |runtime| runtime.start(tree).await.is_ok())
        .expect("runs");
    assert!(started);
    assert!(stopped.load(Ordering::SeqCst), "the child was not stopped");
}

#[test]
fn a_panicking_application_is_a_typed_error_after_the_same_orderly_shutdown() {
    let stopped = Arc::new(AtomicBool::new(false));
    let tree = flagged_tree(&stopped);
    let out: Result<(), RunError> =
        Runtime::builder()
            .worker_threads(1)
            .run(async move |runtime| {
                runtime.start(tree).await.expect("starts");
                panic!("the application gave up");
            });
    match out {
        Err(RunError::Panicked(message)) => assert!(message.contains("gave up"), "{message}"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert!(stopped.load(Ordering::SeqCst), "the child was not stopped");
}

#[test]
fn run_inside_an_async_runtime_is_a_typed_error_not_a_nested_runtime_panic() {
    let inside_actix =
        actix::System::new().block_on(async { Runtime::builder().run(async |_| ()) });
    assert_eq!(inside_actix, Err(RunError::InsideRuntime));
    let inside_tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async { Runtime::builder().run(async |_| ()) });
    assert_eq!(inside_tokio, Err(RunError::InsideRuntime));
    // And the thread can still run one afterwards.
    assert_eq!(Runtime::builder().worker_threads(1).run(async |_| 7), Ok(7));
}

#[test]
fn bad_builder_values_are_build_errors() {
    assert_eq!(
        Runtime::builder().worker_threads(0).run(async |_| ()),
        Err(RunError::Build(RuntimeError::ZeroWorkerThreads))
    );
    assert!(matches!(
        Runtime::builder()
            .worker_threads(usize::MAX)
            .run(async |_| ()),
        Err(RunError::Build(RuntimeError::TooManyWorkerThreads { .. }))
    ));
    assert_eq!(
        Runtime::builder().event_capacity(0).run(async |_| ()),
        Err(RunError::Build(RuntimeError::ZeroEventCapacity))
    );
}

#[test]
fn spawn_spreads_futures_over_every_worker_thread_and_never_the_control_thread() {
    let (seen, workers, control) = Runtime::builder()
        .worker_threads(2)
        .run(async |runtime| {
            let handles: Vec<_> = (0..8)
                .map(|_| runtime.spawn(async { std::thread::current().id() }))
                .collect();
            let mut seen = Vec::new();
            for handle in handles {
                seen.push(handle.await.expect("finishes"));
            }
            let mut workers = Vec::new();
            for arbiter in runtime.worker_arbiters() {
                workers.push(thread_of(&arbiter).await);
            }
            (seen, workers, thread_of(&runtime.control_arbiter()).await)
        })
        .expect("runs");
    for worker in &workers {
        assert_eq!(seen.iter().filter(|t| *t == worker).count(), 4, "{seen:?}");
    }
    assert!(!seen.contains(&control));
}

/// A panic payload whose `Drop` panics too.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the payload's drop panicked");
    }
}

#[test]
fn a_panicking_spawned_future_is_a_join_error_and_its_thread_lives_on() {
    let (plain, hostile, after) = Runtime::builder()
        .worker_threads(1)
        .run(async |runtime| {
            let plain = runtime.spawn(async { panic!("task failed") }).await;
            let hostile = runtime
                .spawn(async { std::panic::panic_any(PanicsOnDrop) })
                .await;
            let after = runtime.spawn(async { 5 }).await;
            (plain, hostile, after)
        })
        .expect("runs");
    assert!(
        matches!(&plain, Err(JoinError::Panicked(m)) if m.contains("task failed")),
        "{plain:?}"
    );
    assert_eq!(
        hostile,
        Err(JoinError::Panicked("non-string panic payload".into()))
    );
    assert_eq!(after, Ok(5));
}

#[test]
fn a_spawned_future_cut_off_by_the_shutdown_reads_stopped() {
    let pending = Runtime::builder()
        .worker_threads(1)
        .run(async |runtime| runtime.spawn(std::future::pending::<()>()))
        .expect("runs");
    let got = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), pending).await })
        .expect("the stopped thread dropped the future");
    assert_eq!(got, Err(JoinError::Stopped));
}

#[test]
fn supervisors_answer_while_application_code_blocks_a_worker_thread() {
    let answered = Runtime::builder()
        .worker_threads(2)
        .run(async |runtime| {
            let stopped = Arc::new(AtomicBool::new(false));
            let root = runtime.start(flagged_tree(&stopped)).await.expect("starts");
            // Round robin from the first thread: the second future lands on
            // the other worker thread, and blocks it until released.
            let (release, blocked) = std::sync::mpsc::channel::<()>();
            let (entered, on_entry) = tokio::sync::oneshot::channel();
            let _first = runtime.spawn(async {});
            let blocker = runtime.spawn(async move {
                let _ = entered.send(std::thread::current().id());
                let _ = blocked.recv();
            });
            let blocked_thread = on_entry.await.expect("the blocker runs");
            assert_ne!(blocked_thread, std::thread::current().id());
            // The supervisor lives on the control thread: it answers.
            let children = root.children().await.expect("the supervisor answers");
            release.send(()).expect("the blocker waits");
            blocker.await.expect("the blocker ends");
            children.len()
        })
        .expect("runs");
    assert_eq!(answered, 1);
}

#[test]
fn two_applications_run_at_once_and_one_returning_stops_only_its_own_trees() {
    let (a_stopped, b_stopped) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (a_returned, a_done) = tokio::sync::oneshot::channel::<()>();
    let (a_tree, b_tree) = (flagged_tree(&a_stopped), flagged_tree(&b_stopped));
    let a = std::thread::spawn(move || {
        Runtime::builder()
            .worker_threads(2)
            .run(async move |runtime| {
                runtime.start(a_tree).await.expect("starts");
                let parts: Vec<_> = (0..100u64)
                    .map(|n| runtime.spawn(async move { n }))
                    .collect();
                let mut sum = 0;
                for part in parts {
                    sum += part.await.expect("joins");
                }
                sum
            })
    });
    let watch = a_stopped.clone();
    let own = b_stopped.clone();
    let b = std::thread::spawn(move || {
        Runtime::builder()
            .worker_threads(2)
            .run(async move |runtime| {
                runtime.start(b_tree).await.expect("starts");
                // Wait until the other application has returned and shut its
                // trees down (a guard against a hang, not a speed assertion).
                let done = tokio::time::timeout(Duration::from_secs(60), a_done).await;
                done.expect("in time")
                    .expect("the other application returns");
                assert!(watch.load(Ordering::SeqCst), "the other tree is stopped");
                let parts: Vec<_> = (0..100u64)
                    .map(|n| runtime.spawn(async move { n * 2 }))
                    .collect();
                let mut sum = 0;
                for part in parts {
                    sum += part.await.expect("joins");
                }
                // Checked here, while this application still runs: once it
                // returns, its own tree stops, as it should.
                assert!(
                    !own.load(Ordering::SeqCst),
                    "one application's return stopped the other's tree"
                );
                sum
            })
    });
    let a = a.join().expect("no panic");
    a_returned.send(()).expect("b waits");
    assert_eq!(a, Ok(4950));
    assert_eq!(b.join().expect("no panic"), Ok(9900));
    assert!(a_stopped.load(Ordering::SeqCst) && b_stopped.load(Ordering::SeqCst));
}
