//! Supervised OS processes for Candado: workers that can be killed,
//! measured and restarted.
//!
//! A thread caught in `loop {}` can never be stopped, memory leaked by a
//! handler is never returned by an in-process restart, and `abort()` takes
//! the whole application down. A worker in a process of its own can be
//! killed (SIGTERM, then SIGKILL), its RSS measured by pid, and its crash is
//! one child's exit. [`ProcessChild`] is such a worker: a Candado child like
//! any other (restart types, intensity, backoff, health strategies), whose
//! actor owns one OS process.
//!
//! The parent and the worker speak over the worker's stdin and stdout:
//! length-delimited frames (4-byte big-endian length) with a maximum size,
//! holding [postcard](https://docs.rs/postcard) messages. Postcard is
//! compact, serde-native, and has a documented, stable wire format (1.0),
//! so a worker written in another language can follow it; bincode 2 would
//! do too but moved away from plain serde. The worker heartbeats from a
//! thread of its own, so a stuck handler (no progress) is told apart from a
//! frozen process (no heartbeat), and exits when stdin closes, so it never
//! outlives its parent. See `docs/process.md`.
//!
//! # Layout
//! - [`WorkerProcess`] (`connection.rs`) — one running process and the
//!   parent's end of its pipes: spawn, handshake, pipelined calls,
//!   heartbeats, kill, RSS, exit reason; its news as [`ProcessEvent`]s.
//! - [`ProcessChild`] (`process_child.rs`) — the supervised child that owns
//!   a `WorkerProcess` and turns its news into liveness and memory reports;
//!   `process_child/messages.rs` — what it answers: [`Call`] and [`Pid`]
//!   (`call.rs`).
//! - [`ProcessCommand`], [`ProcessOptions`] (`command.rs`) — what to run, how.
//! - [`run_if_worker`], [`Progress`], [`brake`] (`child.rs`) — the worker's side.
//! - `protocol.rs` — [`ToChild`], [`ToParent`], the handshake, [`to_bytes`],
//!   [`from_bytes`]; `frame.rs` and `blocking.rs` — frames on async and
//!   blocking pipes.
//! - `exit_status.rs` — exit statuses to exit reasons; `stderr.rs` — the
//!   stderr tail; `reap.rs` — signals and reaping.
//! - [`ProtocolError`], [`CallError`] (`error.rs`).
//! - [`ServiceChild`], [`ServiceOptions`], [`ProbeStatus`] (`service.rs`) —
//!   any external command, probed by a [`Probe`] (`probe.rs`: TCP connect,
//!   HTTP status, check command) and restarted by liveness when its probe
//!   keeps failing.
//!
//! # Example
//! ```no_run
//! use candado::{Runtime, SupervisorSpec};
//! use candado_process::{Call, ProcessChild, ProcessCommand, ProcessOptions};
//!
//! fn main() {
//!     // In the worker process, this serves and never returns.
//!     candado_process::run_if_worker("upper", |request, _progress| {
//!         Ok(request.to_ascii_uppercase())
//!     });
//!     actix::System::new().block_on(async {
//!         let runtime = Runtime::builder().build().unwrap();
//!         let command = ProcessCommand::current_exe("upper").unwrap();
//!         let tree = SupervisorSpec::new("root")
//!             .child(ProcessChild::spec("upper", command, ProcessOptions::default()));
//!         let root = runtime.start(tree).await.unwrap();
//!         let worker = root.worker::<ProcessChild>("upper").await.unwrap();
//!         assert_eq!(worker.send(Call(b"hi".to_vec())).await.unwrap().unwrap(), b"HI");
//!         runtime.shutdown().await;
//!     });
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod blocking;
mod call;
mod child;
mod command;
mod connection;
mod error;
mod exit_status;
mod frame;
mod probe;
mod process_child;
mod protocol;
mod reap;
mod service;
mod stderr;

pub use call::{Call, Pid};
pub use child::{brake, run_if_worker, run_if_worker_with, Progress, BRAKE_EXIT_CODE, WORKER_ENV};
pub use command::{ProcessCommand, ProcessOptions};
pub use connection::{ProcessEvent, ProcessEvents, WorkerProcess};
pub use error::{CallError, ProtocolError};
pub use probe::Probe;
pub use process_child::ProcessChild;
pub use protocol::{from_bytes, to_bytes, ToChild, ToParent, DEFAULT_MAX_FRAME, PROTOCOL_VERSION};
pub use service::{ProbeReport, ProbeStatus, ServiceChild, ServiceOptions};
