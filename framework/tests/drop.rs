//! Dropping a running tree without `Runtime::shutdown()` is quiet: no panic on
//! any thread (with `panic = "abort"`, one would abort the process).
//!
//! This binary holds one test, so its panic hook counts only its own panics.

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use actix::{Actor, ActorContext as _, Context};
use candado::{BackoffConfig, ChildSpec, Runtime, SupervisorSpec};
use common::*;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Tells its channel when dropped: kept in a thread-local, it is dropped when
/// its thread exits, after the thread's runtime and actors.
struct OnThreadExit(mpsc::Sender<()>);

impl Drop for OnThreadExit {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static EXIT: RefCell<Option<OnThreadExit>> = const { RefCell::new(None) };
}

fn tree() -> SupervisorSpec {
    SupervisorSpec::new("root")
        .child(ChildSpec::worker("a", Echo::new))
        .child(ChildSpec::supervisor(
            SupervisorSpec::new("db").child(ChildSpec::worker("conn", Echo::new)),
        ))
        .child(ChildSpec::worker("b", Echo::new))
}

/// A permanent worker that stops as soon as it starts: restarted at once,
/// for ever (no backoff, an intensity it never reaches).
struct Quitter;

impl Actor for Quitter {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

fn restart_loop() -> SupervisorSpec {
    SupervisorSpec::new("looping")
        .intensity(u32::MAX, Duration::from_millis(1))
        .backoff(BackoffConfig::none())
        .child(ChildSpec::worker("quitter", |_| Quitter))
}

/// Starts `spec` on a runtime with dedicated threads, lets it run for
/// `running`, then drops the runtime without shutdown and waits until every
/// one of its threads has exited.
fn drop_while_running(spec: SupervisorSpec, running: Duration) {
    let (exited, threads_exit) = mpsc::channel();
    let threads = actix::System::new().block_on(async move {
        let runtime = Runtime::builder().worker_threads(2).build().unwrap();
        let _root = runtime.start(spec).await.unwrap();
        let mut threads = runtime.worker_arbiters();
        threads.push(runtime.control_arbiter());
        for thread in &threads {
            let exited = exited.clone();
            let (armed, on_thread) = tokio::sync::oneshot::channel();
            assert!(thread.spawn_fn(move || {
                EXIT.with(|e| *e.borrow_mut() = Some(OnThreadExit(exited)));
                let _ = armed.send(());
            }));
            on_thread.await.unwrap();
        }
        tokio::time::sleep(running).await;
        threads.len()
        // The runtime and the tree's handle are dropped here, without shutdown.
    });
    for _ in 0..threads {
        threads_exit
            .recv_timeout(Duration::from_secs(30))
            .expect("the runtime's threads exit once it is dropped");
    }
}

#[test]
fn dropping_a_running_tree_without_shutdown_panics_nowhere() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));

    // Everything on the test's own (paused) arbiter: the System is dropped here.
    run_paused(|| async {
        let (_runtime, _events, root) = start_local(tree()).await;
        assert_eq!(root.children().await.unwrap().len(), 3);
    });
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "current-thread runtime");

    // Dedicated control and worker threads, torn down by the runtime's drop.
    drop_while_running(tree(), Duration::ZERO);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "dedicated threads");

    // Dropped while its supervisor restarts a child in a tight loop: a
    // restart that finds every worker thread stopped is a failed start, not
    // a panic of the control thread (it was: "a runtime keeps at least one
    // open worker thread"). Ten drops, each at a different point of the loop.
    for round in 0..10 {
        drop_while_running(restart_loop(), Duration::from_millis(round));
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "dropped mid-restart");
}
