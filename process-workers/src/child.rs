//! The worker's side: serve calls on stdin/stdout, heartbeat from a thread
//! of its own, and die with the parent.
//!
//! Stdout belongs to the protocol. Before serving, the worker moves its
//! frames to a private copy of the stdout descriptor and points descriptor 1
//! at stderr, so a stray `println!` in user code lands in the parent's
//! stderr log instead of corrupting a frame. Still, log with `eprintln!` or
//! `tracing` to stderr: that is what the parent keeps.

use std::fs::File;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag};

use crate::blocking::{encode_frame, read_frame, write_frame};
use crate::error::ProtocolError;
use crate::protocol::{ToChild, ToParent, DEFAULT_MAX_FRAME, PROTOCOL_VERSION};

/// The environment variable that makes a process a worker: its value is the
/// name of the entry point to serve (see [`run_if_worker`]).
pub const WORKER_ENV: &str = "CANDADO_PROCESS_WORKER";

/// The exit code of a worker that asks for a restart with fresh memory
/// (see [`brake`]); the parent reports it as a memory brake.
pub const BRAKE_EXIT_CODE: i32 = 42;

/// The exit code of a worker whose parent broke the protocol.
const PROTOCOL_EXIT_CODE: i32 = 3;

/// Ends this worker process with [`BRAKE_EXIT_CODE`], asking its supervisor
/// for a fresh process (e.g. after repeated memory brakes).
pub fn brake() -> ! {
    let _ = io::stderr().flush();
    std::process::exit(BRAKE_EXIT_CODE)
}

/// The handler's way to say it is not stuck on the current call.
#[derive(Debug, Clone)]
pub struct Progress {
    id: u64,
    out: Arc<Output>,
}

impl Progress {
    /// Reports progress on the current call; a handler that reports none
    /// within the supervisor's progress timeout is judged stuck.
    pub fn report(&self) {
        self.out.send(&ToParent::Progress { id: self.id });
    }
}

/// The frame channel to the parent, shared by the heartbeat thread and the
/// handler.
#[derive(Debug)]
struct Output {
    file: Mutex<File>,
    max_frame: usize,
}

impl Output {
    /// Sends a message. If the parent is gone, so is the point of living:
    /// the process exits.
    fn send(&self, message: &ToParent) {
        let frame = match encode_frame(message, self.max_frame) {
            Ok(frame) => frame,
            Err(e) => {
                // Only a reply can be too large: say so instead.
                let ToParent::Reply { id, .. } = message else {
                    return;
                };
                let error = ToParent::Reply {
                    id: *id,
                    result: Err(e.to_string()),
                };
                match encode_frame(&error, self.max_frame) {
                    Ok(frame) => frame,
                    Err(_) => return,
                }
            }
        };
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if write_frame(&mut *file, &frame).is_err() {
            std::process::exit(0);
        }
    }
}

/// If this process was started as worker `name` (the [`WORKER_ENV`] variable
/// says so), serves calls with `handler` until the parent closes stdin, then
/// exits; otherwise returns at once. Call it first thing in `main`.
///
/// The handler gets each request's bytes and a [`Progress`] handle, and
/// answers bytes or an error message. Requests are served one at a time. A
/// panic in the handler ends the process with exit code 101, as a panic in
/// `main` would, and the parent reports it with its message.
///
/// ```no_run
/// // First thing in `main`:
/// candado_process::run_if_worker("upper", |request, _progress| {
///     Ok(request.to_ascii_uppercase())
/// });
/// // The application's own main goes on here.
/// ```
pub fn run_if_worker<F>(name: &str, handler: F)
where
    F: FnMut(&[u8], &Progress) -> Result<Vec<u8>, String> + Send + 'static,
{
    run_if_worker_with(name, move || handler);
}

/// Like [`run_if_worker`], for a handler that is not `Send` (it holds a
/// runtime, an `Rc`, a thread-bound client): `make` builds it on the thread
/// that serves the calls, once the handshake is done.
///
/// ```no_run
/// use std::rc::Rc;
///
/// candado_process::run_if_worker_with("count", || {
///     let seen = Rc::new(std::cell::Cell::new(0u64));
///     move |_request: &[u8], _progress: &candado_process::Progress| {
///         seen.set(seen.get() + 1);
///         Ok(seen.get().to_be_bytes().to_vec())
///     }
/// });
/// ```
pub fn run_if_worker_with<M, F>(name: &str, make: M)
where
    M: FnOnce() -> F + Send + 'static,
    F: FnMut(&[u8], &Progress) -> Result<Vec<u8>, String> + 'static,
{
    if std::env::var_os(WORKER_ENV).is_none_or(|value| value != name) {
        return;
    }
    let code = match serve(make) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("candado-process worker `{name}`: {e}");
            PROTOCOL_EXIT_CODE
        }
    };
    let _ = io::stderr().flush();
    std::process::exit(code)
}

/// Takes stdout for frames and points descriptor 1 at stderr.
fn take_stdout() -> io::Result<File> {
    io::stdout().flush()?;
    let frames = nix::unistd::dup(io::stdout())?;
    // Programs the worker runs must not hold the parent's pipe open.
    let cloexec = FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC);
    nix::fcntl::fcntl(&frames, cloexec)?;
    nix::unistd::dup2_stdout(io::stderr())?;
    Ok(File::from(frames))
}

fn serve<M, F>(make: M) -> Result<(), ProtocolError>
where
    M: FnOnce() -> F + Send + 'static,
    F: FnMut(&[u8], &Progress) -> Result<Vec<u8>, String> + 'static,
{
    let file = take_stdout().map_err(|e| ProtocolError::Io(e.to_string()))?;
    let mut stdin = io::stdin().lock();
    let (heartbeat_ms, max_frame) = match read_frame(&mut stdin, DEFAULT_MAX_FRAME) {
        Ok(ToChild::Hello {
            heartbeat_ms,
            max_frame,
            ..
        }) => (
            heartbeat_ms.max(1),
            usize::try_from(max_frame).unwrap_or(usize::MAX),
        ),
        // The parent left before saying hello.
        Err(ProtocolError::Closed) => return Ok(()),
        Err(e) => return Err(e),
        Ok(other) => {
            return Err(ProtocolError::Unexpected {
                expected: "Hello",
                got: format!("{other:?}"),
            })
        }
    };
    let out = Arc::new(Output {
        file: Mutex::new(file),
        max_frame,
    });
    // A mismatched parent learns our version and decides; it closes stdin.
    out.send(&ToParent::Ready {
        version: PROTOCOL_VERSION,
        pid: std::process::id(),
    });

    let beat = out.clone();
    std::thread::Builder::new()
        .name("candado-heartbeat".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(heartbeat_ms));
            beat.send(&ToParent::Heartbeat);
        })
        .map_err(|e| ProtocolError::Io(e.to_string()))?;

    let (calls, inbox) = mpsc::channel::<(u64, Vec<u8>)>();
    let replies = out.clone();
    std::thread::Builder::new()
        .name("candado-handler".into())
        .spawn(move || {
            // A factory that panics ends the process as a handler's panic does.
            let Ok(mut handler) = catch_unwind(AssertUnwindSafe(make)) else {
                let _ = io::stderr().flush();
                std::process::exit(101);
            };
            for (id, payload) in inbox {
                let progress = Progress {
                    id,
                    out: replies.clone(),
                };
                match catch_unwind(AssertUnwindSafe(|| handler(&payload, &progress))) {
                    Ok(result) => replies.send(&ToParent::Reply { id, result }),
                    // The panic hook printed the message to stderr; die as
                    // a panicking `main` would.
                    Err(_) => {
                        let _ = io::stderr().flush();
                        std::process::exit(101);
                    }
                }
            }
        })
        .map_err(|e| ProtocolError::Io(e.to_string()))?;

    // This thread watches stdin: when the parent goes (closes it, or dies,
    // even by SIGKILL), the process exits, whatever the handler is doing.
    loop {
        match read_frame(&mut stdin, max_frame) {
            Ok(ToChild::Call { id, payload }) => {
                if calls.send((id, payload)).is_err() {
                    return Ok(());
                }
            }
            Ok(ToChild::Hello { .. }) => {}
            Err(ProtocolError::Closed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
