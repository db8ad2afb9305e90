//! What can go wrong talking to the store.

use thiserror::Error;

/// An error of the durable store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No connection could be had from the pool (the server is down or
    /// unreachable, or every connection is busy past the wait timeout).
    #[error("no database connection: {0}")]
    Connection(String),
    /// The database refused a statement.
    #[error("database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// A task or an output could not be encoded as JSON.
    #[error("cannot encode as JSON: {0}")]
    Encode(String),
    /// A stored payload does not decode as the handler's task type.
    #[error("task {id}: its stored payload does not decode: {problem}")]
    Decode {
        /// The task.
        id: i64,
        /// What serde said.
        problem: String,
    },
    /// A setting the store cannot work with.
    #[error("invalid setting `{field}`: {problem}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// No task with this id in this queue (or not in the state asked for).
    #[error("no {state} task {id} in queue `{queue}`")]
    NotFound {
        /// The queue.
        queue: String,
        /// The task.
        id: i64,
        /// The state it was looked for in.
        state: &'static str,
    },
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        StoreError::Connection(error.to_string())
    }
}
