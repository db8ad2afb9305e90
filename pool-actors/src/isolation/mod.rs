//! Process isolation: with `isolation = "process"`, each worker incarnation
//! owns one OS process that runs the handler, so a handler that hangs
//! without awaiting, leaks or aborts costs one process, which is killed,
//! measured and replaced (see `docs/process.md`).
//!
//! - `wire` — what travels: a task with its attempt and timeout; its outcome.
//! - `serve` — the worker process's side: [`run_if_process_worker`].
//! - `remote` — the parent's side: a pool worker's attempts through its
//!   process, and the process's news to the worker's supervisor.

mod remote;
mod serve;
mod wire;

pub(crate) use remote::{ProcessEntry, Remote};
pub use serve::run_if_process_worker;
