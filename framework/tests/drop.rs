//! Dropping a running tree without `Runtime::shutdown()` is quiet: no panic on
//! any thread (with `panic = "abort"`, one would abort the process).
//!
//! This binary holds one test, so its panic hook counts only its own panics.

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use candado::{ChildSpec, Runtime, SupervisorSpec};
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
    let (exited, threads_exit) = mpsc::channel();
    let threads = actix::System::new().block_on(async move {
        let runtime = Runtime::builder().worker_threads(2).build().unwrap();
        let root = runtime.start(tree()).await.unwrap();
        assert_eq!(root.children().await.unwrap().len(), 3);
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
        threads.len()
        // The runtime and the tree's handle are dropped here, without shutdown.
    });
    for _ in 0..threads {
        threads_exit
            .recv_timeout(Duration::from_secs(30))
            .expect("the runtime's threads exit once it is dropped");
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "dedicated threads");
}
