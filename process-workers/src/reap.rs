//! The task that owns a worker process: signals it on order and always
//! reaps it.

use std::future::Future;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};

/// How long an exit waits for the last output lines once the process is gone.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Hands `child` to a reaper task. Returns the reaper's orders (dropping
/// them kills the process) and a future of its exit status, which resolves
/// once it is reaped and its output drained (`drained`, bounded by a grace).
pub(crate) fn start(
    child: Child,
    drained: Vec<tokio::task::JoinHandle<()>>,
) -> (
    mpsc::UnboundedSender<Order>,
    impl Future<Output = std::io::Result<ExitStatus>> + 'static,
) {
    let (orders, order_inbox) = mpsc::unbounded_channel();
    let (exited, exit) = oneshot::channel();
    actix::spawn(reap(child, order_inbox, exited));
    let status = async move {
        let status = exit
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the reaper is gone")));
        let _ = tokio::time::timeout(OUTPUT_GRACE, futures_util::future::join_all(drained)).await;
        status
    };
    (orders, status)
}

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
async fn reap(
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
