//! The messages a process child answers.

use actix::Message;

use crate::error::CallError;

/// A request for the worker process: its bytes go to the handler, whose
/// answer comes back. Use [`to_bytes`](crate::to_bytes) and
/// [`from_bytes`](crate::from_bytes) for typed values.
///
/// ```no_run
/// # async fn demo(worker: actix::Addr<candado_process::ProcessChild>) {
/// use candado_process::Call;
/// let reply = worker.send(Call(b"hello".to_vec())).await;
/// # let _ = reply;
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call(pub Vec<u8>);

impl Message for Call {
    type Result = Result<Vec<u8>, CallError>;
}

/// Asks for the pid of the running worker process (`None` before it
/// started or after it exited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pid;

impl Message for Pid {
    type Result = Option<u32>;
}
