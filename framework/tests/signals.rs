//! `Runtime::shutdown_on_signals`: SIGTERM shuts every tree down in order.
//! One test in this binary: the signal goes to the whole test process.

mod common;

use std::time::Duration;

use candado::{ChildSpec, Runtime, ShutdownSignal, SignalShutdown, SupervisorSpec};
use common::Echo;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
fn sigterm_shuts_the_runtime_down_gracefully() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let root = runtime
            .start(SupervisorSpec::new("root").child(ChildSpec::worker("echo", Echo::new)))
            .await
            .unwrap();
        assert!(root.is_running());
        let ended = runtime.shutdown_on_signals().unwrap();
        // The handlers are in place before the future is polled: the
        // signal is not lost (nor fatal) even if it comes first.
        kill(Pid::this(), Signal::SIGTERM).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(30), ended)
            .await
            .expect("the signal is seen");
        assert_eq!(ended, SignalShutdown::Graceful(ShutdownSignal::Terminate));
        assert_eq!(ended.exit_code(), 143);
        assert!(!root.is_running(), "the tree was shut down");
    });
}
