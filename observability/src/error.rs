//! Errors of the observer.

use std::time::Duration;

use thiserror::Error;

/// Why an observer could not be built, served, or proven alive.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ObserveError {
    /// [`ObserverBuilder::build`](crate::ObserverBuilder::build) ran outside
    /// an actix `System`: the observer's thread is an actix arbiter.
    #[error("the observer must be built inside an actix System")]
    NoSystem,
    /// The control thread did not run a probe within the timeout: it is
    /// stalled (or overloaded), and supervisors cannot act.
    #[error("the control thread did not answer within {0:?}")]
    ControlThreadStalled(Duration),
    /// The control thread is gone: the runtime was dropped.
    #[error("the control thread is gone")]
    ControlThreadGone,
    /// The HTTP server could not bind its address.
    #[error("cannot serve on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// No watched pool has this name.
    #[error("no pool named `{0}` is watched")]
    UnknownPool(String),
    /// A pool refused an operation (a replay: no such dead task, the
    /// queue is full, the pool has stopped).
    #[error("pool `{pool}`: {source}")]
    Pool {
        /// The pool's name.
        pool: String,
        /// Why it refused.
        source: candado_pool::PoolError,
    },
}
