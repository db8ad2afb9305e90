//! The errors of the protocol and of calls.

use thiserror::Error;

/// What went wrong on the pipe between a parent and its worker process.
///
/// Every one of these ends the worker: a parent cannot trust a stream that
/// carried a bad frame, so the process is killed and its supervisor restarts it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// A frame announced more bytes than the maximum frame size.
    #[error("a frame is larger than the maximum of {max} bytes")]
    Oversized {
        /// The maximum frame size in force.
        max: usize,
    },
    /// A frame of a valid size whose bytes are not a message.
    #[error("an undecodable frame: {0}")]
    Garbled(String),
    /// The two sides speak different protocol versions.
    #[error("protocol version mismatch: the parent speaks {parent}, the child {child}")]
    VersionMismatch {
        /// The parent's version.
        parent: u32,
        /// The child's version.
        child: u32,
    },
    /// A valid message that has no place at this point of the conversation.
    #[error("unexpected message: expected {expected}, got {got}")]
    Unexpected {
        /// What the protocol expected.
        expected: &'static str,
        /// What came instead.
        got: String,
    },
    /// The other side closed the stream.
    #[error("the stream closed")]
    Closed,
    /// Reading or writing the pipe failed.
    #[error("i/o error on the pipe: {0}")]
    Io(String),
}

/// Why a [`Call`](crate::Call) got no reply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    /// No process runs now (it has not started, or has exited).
    #[error("the worker process is not running")]
    NotRunning,
    /// The process exited (or was killed) before it replied; carries the exit reason.
    #[error("the worker process exited during the call: {0}")]
    Exited(String),
    /// The process broke the protocol; it is killed and restarted.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The request is larger than the maximum frame size; it was not sent.
    #[error("the request of {len} bytes does not fit in a frame of at most {max} bytes")]
    TooLarge {
        /// The payload's size.
        len: usize,
        /// The maximum frame size.
        max: usize,
    },
    /// The child's handler returned an error (the process lives on).
    #[error("the handler failed: {0}")]
    Handler(String),
}
