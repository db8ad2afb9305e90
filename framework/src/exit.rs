//! Why a child stopped.

use serde::{Deserialize, Serialize};

use crate::{HealthCause, RestartCause};

/// The reason a child (worker or supervisor) exited.
///
/// OTP's rule decides restarts: [`Normal`](ExitReason::Normal),
/// [`Shutdown`](ExitReason::Shutdown) and
/// [`ShutdownWith`](ExitReason::ShutdownWith) (OTP's `{shutdown, Term}`) are
/// *normal* exits, everything else is *abnormal* (see
/// [`ExitReason::is_abnormal`]). A transient child is restarted only after an
/// abnormal exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ExitReason {
    /// The child stopped itself (`ctx.stop()`).
    Normal,
    /// The child stopped because its supervisor asked it to, or it stopped
    /// itself with [`ChildLink::shutdown`](crate::ChildLink::shutdown).
    Shutdown,
    /// The child shut itself down with a detail of its own
    /// ([`ChildLink::shutdown_with`](crate::ChildLink::shutdown_with)), OTP's
    /// `{shutdown, Term}`: a normal exit, so a transient child is not restarted.
    ShutdownWith(String),
    /// The child did not stop within its shutdown timeout and was killed
    /// (or abandoned, if its thread was blocked).
    Killed,
    /// A handler, hook or timer of the child panicked; carries the panic message.
    Panic(String),
    /// The child reported a failure through [`ChildLink::fail`](crate::ChildLink::fail).
    Failed(String),
    /// The child could not be built or initialised (its factory panicked, its
    /// thread was gone, or a child supervisor failed to start its children).
    StartFailed(String),
    /// A health strategy ordered the restart (or stop) of this incarnation.
    Unhealthy {
        /// The strategy.
        strategy: String,
        /// What it found, typed (its verdict's cause). Read this, not the
        /// reason text, to tell causes apart.
        #[serde(default)]
        cause: HealthCause,
        /// Its reason, for people.
        reason: String,
    },
    /// A supervisor exceeded its restart intensity, stopped its children and
    /// escalated. Unlike OTP's `shutdown` this counts as abnormal, so the
    /// parent always acts on it.
    Escalated {
        /// The child whose failure crossed the limit.
        child: String,
        /// Restarts counted in the intensity period when the limit was crossed.
        restarts: u32,
    },
}

impl ExitReason {
    /// Whether this exit is abnormal (anything except `Normal`, `Shutdown`
    /// and `ShutdownWith`).
    ///
    /// ```
    /// use candado::ExitReason;
    /// assert!(!ExitReason::Normal.is_abnormal());
    /// assert!(!ExitReason::ShutdownWith("drained".into()).is_abnormal());
    /// assert!(ExitReason::Panic("boom".into()).is_abnormal());
    /// ```
    pub fn is_abnormal(&self) -> bool {
        !matches!(
            self,
            ExitReason::Normal | ExitReason::Shutdown | ExitReason::ShutdownWith(_)
        )
    }

    /// The typed cause of this exit; its [`key`](RestartCause::key) is a
    /// stable metric name.
    ///
    /// ```
    /// use candado::{ExitReason, RestartCause};
    /// assert_eq!(ExitReason::Killed.cause(), RestartCause::Killed);
    /// assert_eq!(ExitReason::StartFailed("no db".into()).cause().key(), "start_failed");
    /// ```
    pub fn cause(&self) -> RestartCause {
        match self {
            ExitReason::Normal => RestartCause::Normal,
            ExitReason::Shutdown | ExitReason::ShutdownWith(_) => RestartCause::Shutdown,
            ExitReason::Killed => RestartCause::Killed,
            ExitReason::Panic(_) => RestartCause::Panic,
            ExitReason::Failed(_) => RestartCause::Failed,
            ExitReason::StartFailed(_) => RestartCause::StartFailed,
            ExitReason::Unhealthy { cause, .. } => RestartCause::Health(*cause),
            ExitReason::Escalated { .. } => RestartCause::Escalated,
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::ShutdownWith(detail) => write!(f, "shutdown: {detail}"),
            ExitReason::Killed => f.write_str("killed after shutdown timeout"),
            ExitReason::Panic(msg) => write!(f, "panic: {msg}"),
            ExitReason::Failed(msg) => write!(f, "failed: {msg}"),
            ExitReason::StartFailed(msg) => write!(f, "start failed: {msg}"),
            ExitReason::Unhealthy {
                strategy, reason, ..
            } => write!(f, "unhealthy ({strategy}): {reason}"),
            ExitReason::Escalated { child, restarts } => write!(
                f,
                "escalated: restart intensity exceeded by child `{child}` ({restarts} restarts in period)"
            ),
        }
    }
}
