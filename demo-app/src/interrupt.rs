//! Ctrl-C during a run. The first SIGINT (or SIGTERM) stops the task
//! stream: the pool drains as at the scenario's end, the report is printed
//! and the demo exits 130 (143 for SIGTERM). A second signal while it
//! drains ends the demo at once with the same status and no report: the
//! tasks still running are not waited for.

use std::future::Future;

use candado::{ShutdownSignal, ShutdownSignals, SignalError};
use tokio::sync::oneshot;

/// What stderr says when a second signal ends the demo.
pub const FORCED: &str = "candado-demo: second signal: exiting without waiting for the drain";

/// Starts listening for SIGINT and SIGTERM (inside the actix `System`):
/// the future resolves on the first; on the second the process exits.
pub fn on_signals() -> Result<impl Future<Output = ShutdownSignal>, SignalError> {
    let mut signals = ShutdownSignals::listen()?;
    let (first_tx, first_rx) = oneshot::channel();
    actix::spawn(async move {
        let Some(first) = signals.recv().await else {
            return;
        };
        tracing::info!(signal = %first, "interrupted: draining; signal again to stop at once");
        let _ = first_tx.send(first);
        if let Some(second) = signals.recv().await {
            eprintln!("{FORCED} ({second})");
            std::process::exit(i32::from(second.exit_code()));
        }
    });
    Ok(async move {
        match first_rx.await {
            Ok(signal) => signal,
            // Signals stopped coming: the run is never interrupted.
            Err(_) => std::future::pending().await,
        }
    })
}
