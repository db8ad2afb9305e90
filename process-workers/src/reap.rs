//! The task that owns a worker process: signals it on order and always
//! reaps it.

use std::process::ExitStatus;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};

/// An order to the reaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Ask the process to end (SIGTERM).
    Terminate,
}

/// Waits for `child` to exit and reports its status. `Terminate` sends
/// SIGTERM; when the orders' sender is dropped (the process child is gone,
/// or killed after its shutdown timeout) the process gets SIGKILL. Either
/// way it is reaped here: no zombie is left behind.
pub(crate) async fn reap(
    mut child: Child,
    mut orders: mpsc::UnboundedReceiver<Order>,
    exited: oneshot::Sender<std::io::Result<ExitStatus>>,
) {
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            order = orders.recv() => match order {
                Some(Order::Terminate) => {
                    // `id` is `None` once reaped: never signal a reused pid.
                    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                    }
                }
                None => {
                    let _ = child.start_kill();
                    break child.wait().await;
                }
            },
        }
    };
    let _ = exited.send(status);
}
