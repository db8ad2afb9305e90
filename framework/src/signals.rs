//! Graceful shutdown on SIGINT and SIGTERM, a second signal forcing it.
//!
//! On Unix both signals are caught. Elsewhere only Ctrl-C (tokio's
//! `ctrl_c`, i.e. the console's Ctrl-C / Ctrl-Break on Windows) is, and
//! reported as [`ShutdownSignal::Interrupt`]; nothing is ever reported as
//! [`ShutdownSignal::Terminate`] there.

use std::fmt;

use thiserror::Error;

use crate::Runtime;

/// A signal asking the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownSignal {
    /// SIGINT: Ctrl-C in a terminal.
    Interrupt,
    /// SIGTERM: what `kill`, systemd and Kubernetes send first.
    Terminate,
}

impl ShutdownSignal {
    /// The exit status shells give a process this signal ended: 128 + the
    /// signal's number (130 for SIGINT, 143 for SIGTERM). A program that
    /// stops gracefully on the signal exits with it, so its caller still
    /// learns it was interrupted.
    pub fn exit_code(self) -> u8 {
        match self {
            ShutdownSignal::Interrupt => 130,
            ShutdownSignal::Terminate => 143,
        }
    }
}

impl fmt::Display for ShutdownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShutdownSignal::Interrupt => "SIGINT",
            ShutdownSignal::Terminate => "SIGTERM",
        })
    }
}

/// The signal handlers could not be installed (no tokio runtime with its
/// I/O driver, or the OS refused).
#[derive(Debug, Error)]
#[error("cannot listen for shutdown signals: {0}")]
pub struct SignalError(#[from] std::io::Error);

/// SIGINT and SIGTERM, as they arrive. While it lives the signals no longer
/// end the process by default: the program decides.
///
/// ```no_run
/// # actix::System::new().block_on(async {
/// let mut signals = candado::ShutdownSignals::listen().unwrap();
/// let first = signals.recv().await; // Ctrl-C: drain, report...
/// let second = signals.recv().await; // ...unless asked again: stop now.
/// # });
/// ```
#[derive(Debug)]
pub struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Starts listening. Must be called inside a tokio runtime with its I/O
    /// driver (an actix `System` has one).
    pub fn listen() -> Result<Self, SignalError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// The next signal (`None` if the OS stops delivering them).
    pub async fn recv(&mut self) -> Option<ShutdownSignal> {
        #[cfg(unix)]
        {
            tokio::select! {
                got = self.interrupt.recv() => got.map(|()| ShutdownSignal::Interrupt),
                got = self.terminate.recv() => got.map(|()| ShutdownSignal::Terminate),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c()
                .await
                .ok()
                .map(|()| ShutdownSignal::Interrupt)
        }
    }
}

/// How [`Runtime::shutdown_on_signals`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalShutdown {
    /// Every tree shut down in order after this signal.
    Graceful(ShutdownSignal),
    /// A second signal (the one given) came before the orderly shutdown
    /// finished: the runtime was dropped, stopping its threads at once.
    Forced(ShutdownSignal),
}

impl SignalShutdown {
    /// The exit status to end the process with: that of the first signal
    /// for a graceful shutdown, of the second for a forced one.
    pub fn exit_code(self) -> u8 {
        match self {
            SignalShutdown::Graceful(signal) | SignalShutdown::Forced(signal) => signal.exit_code(),
        }
    }
}

impl Runtime {
    /// Waits for SIGINT or SIGTERM, then shuts every tree down in order
    /// ([`Runtime::shutdown`]); a second signal meanwhile forces it (the
    /// runtime is dropped: its threads stop at once, children without their
    /// shutdown). The signal handlers are installed when this is called,
    /// not when it is first polled; it errs if they cannot be.
    ///
    /// ```no_run
    /// # actix::System::new().block_on(async {
    /// let runtime = candado::Runtime::builder().build().unwrap();
    /// // runtime.start(tree).await ...
    /// let ended = runtime.shutdown_on_signals().unwrap().await;
    /// std::process::exit(i32::from(ended.exit_code()));
    /// # });
    /// ```
    pub fn shutdown_on_signals(
        self,
    ) -> Result<impl std::future::Future<Output = SignalShutdown>, SignalError> {
        let mut signals = ShutdownSignals::listen()?;
        Ok(async move {
            let Some(first) = signals.recv().await else {
                // No more signals will come: never shut down on one.
                return std::future::pending().await;
            };
            tracing::info!(signal = %first, "shutting down gracefully; signal again to force");
            let shutdown = self.shutdown();
            tokio::pin!(shutdown);
            tokio::select! {
                () = &mut shutdown => SignalShutdown::Graceful(first),
                Some(second) = signals.recv() => {
                    tracing::warn!(signal = %second, "second signal: shutdown forced");
                    SignalShutdown::Forced(second)
                }
            }
        })
    }
}
