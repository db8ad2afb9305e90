//! What to run: the current binary as a worker, or any command.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::child::WORKER_ENV;
use crate::protocol::DEFAULT_MAX_FRAME;

/// The program a process child runs, with its arguments, environment and
/// working directory.
///
/// ```no_run
/// use candado_process::ProcessCommand;
/// // The current binary, re-executed as worker "resize" (its `main` calls
/// // `candado_process::run_if_worker("resize", ...)`).
/// let worker = ProcessCommand::current_exe("resize").unwrap();
/// // Any program that speaks the protocol.
/// let external = ProcessCommand::new("/usr/local/bin/resizer")
///     .arg("--fast")
///     .env("RUST_LOG", "info")
///     .current_dir("/tmp");
/// # let _ = (worker, external);
/// ```
#[derive(Debug, Clone)]
pub struct ProcessCommand {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
}

impl ProcessCommand {
    /// Runs `program`.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
        }
    }

    /// Runs the current executable as worker `name` (the procspawn pattern):
    /// it must call [`run_if_worker`](crate::run_if_worker) with that name
    /// early in `main`.
    pub fn current_exe(name: &str) -> io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?).env(WORKER_ENV, name))
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable (the rest is inherited).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The program.
    pub fn program(&self) -> &std::path::Path {
        &self.program
    }

    /// A tokio command with piped stdio; dropped unreaped, it is killed.
    pub(crate) fn to_tokio(&self) -> tokio::process::Command {
        self.to_tokio_with(Stdio::piped(), Stdio::piped(), Stdio::piped())
    }

    /// A tokio command with the given stdio; dropped unreaped, it is killed.
    pub(crate) fn to_tokio_with(
        &self,
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }
}

/// How a process child talks to and watches its process.
///
/// The shutdown timeout (SIGTERM, then SIGKILL) is the child spec's
/// [`ShutdownPolicy`](candado::ShutdownPolicy), as for any worker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessOptions {
    /// How often the worker heartbeats from its own thread (default 1 s).
    /// Keep it well under the supervisor's `Liveness` progress timeout.
    pub heartbeat_interval: Duration,
    /// The largest frame either side may send (default [`DEFAULT_MAX_FRAME`]).
    pub max_frame: usize,
    /// How long the worker has to answer the handshake (default 10 s); past
    /// it the start fails (`StartFailed("no handshake within …")`) and the
    /// process is killed and reaped.
    pub handshake_timeout: Duration,
    /// How often the parent measures the worker's RSS (default 1 s).
    pub memory_interval: Duration,
    /// How many of the worker's last stderr lines are kept for exit reasons
    /// (default 20).
    pub stderr_lines: usize,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(10),
            memory_interval: Duration::from_secs(1),
            stderr_lines: 20,
        }
    }
}

impl ProcessOptions {
    /// Sets the heartbeat interval.
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.heartbeat_interval = every;
        self
    }

    /// Sets the maximum frame size.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Sets the handshake timeout.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets how often RSS is measured.
    pub fn memory_interval(mut self, every: Duration) -> Self {
        self.memory_interval = every;
        self
    }

    /// Sets how many stderr lines are kept.
    pub fn stderr_lines(mut self, lines: usize) -> Self {
        self.stderr_lines = lines;
        self
    }
}
