//! What can go wrong when asking a dynamic supervisor.

use thiserror::Error;

use crate::{SpecError, SupervisorError};

/// A request to a [`DynamicSupervisor`](crate::DynamicSupervisor) failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DynamicError {
    /// `max_children` children are already held (running or restarting).
    #[error("dynamic supervisor `{supervisor}` is full: it holds its maximum of {max} children")]
    Full {
        /// The dynamic supervisor's id.
        supervisor: String,
        /// Its `max_children`.
        max: usize,
    },
    /// The dynamic supervisor has stopped (or is shutting down), or its
    /// parent no longer runs it.
    #[error("dynamic supervisor `{0}` is not running")]
    Stopped(String),
    /// The template or the supervisor's knobs were rejected.
    #[error("invalid dynamic supervisor specification: {0}")]
    InvalidSpec(#[from] SpecError),
    /// Any other answer of the supervisor: an unknown child, a failed start
    /// (the factory panicked), a child not running.
    #[error(transparent)]
    Supervisor(SupervisorError),
}

impl From<SupervisorError> for DynamicError {
    fn from(e: SupervisorError) -> Self {
        match e {
            SupervisorError::Stopped(path) => DynamicError::Stopped(path),
            SupervisorError::InvalidSpec(spec) => DynamicError::InvalidSpec(spec),
            other => DynamicError::Supervisor(other),
        }
    }
}
