//! [`WorkerProcess`]: one running worker process and the parent's end of
//! its pipes: spawn, handshake, calls, heartbeats, exit. Whoever owns it
//! (a [`ProcessChild`](crate::ProcessChild), a pool worker) decides what
//! the process's news mean for supervision.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitStatus;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use candado::ExitReason;
use futures_util::{Stream, StreamExt};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::sync::{mpsc, oneshot};

use crate::command::{ProcessCommand, ProcessOptions};
use crate::error::{CallError, ProtocolError};
use crate::exit_status::{exit_reason, Program};
use crate::frame::{FrameReader, FrameWriter};
use crate::protocol::{handshake, ToChild, ToParent};
use crate::reap::{self, Order};
use crate::stderr::{drain, StderrTail};

type Reply = oneshot::Sender<Result<Vec<u8>, CallError>>;

/// What a worker process says or does, in order. [`Exited`](Self::Exited)
/// comes last, once the process is reaped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessEvent {
    /// The process answered the handshake: it serves calls now.
    Ready,
    /// The process heartbeat (from a thread of its own).
    Heartbeat,
    /// The handler reported progress on a call in flight.
    Progress,
    /// A call was answered.
    Replied,
    /// The process is gone and reaped; the reason its exit status (or the
    /// parent's decision, see [`WorkerProcess::kill`]) gives.
    Exited(ExitReason),
}

/// The news of one [`WorkerProcess`], as a stream.
#[derive(Debug)]
pub struct ProcessEvents(mpsc::UnboundedReceiver<ProcessEvent>);

impl ProcessEvents {
    /// The next event; `None` after [`ProcessEvent::Exited`].
    pub async fn recv(&mut self) -> Option<ProcessEvent> {
        self.0.recv().await
    }
}

impl Stream for ProcessEvents {
    type Item = ProcessEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ProcessEvent>> {
        self.get_mut().0.poll_recv(cx)
    }
}

/// A running worker process: the parent's end of its stdin and stdout, its
/// reaper and its stderr tail. Calls are pipelined: several may be in
/// flight; the worker answers them in order.
///
/// Dropping it kills the process (SIGKILL); it is always reaped. It lives
/// on the thread (actix arbiter) that spawned it.
///
/// ```no_run
/// use candado_process::{ProcessCommand, ProcessEvent, ProcessOptions, WorkerProcess};
///
/// # actix::System::new().block_on(async {
/// let command = ProcessCommand::current_exe("upper").unwrap();
/// let (worker, mut events) =
///     WorkerProcess::spawn(&command, &ProcessOptions::default(), "upper").unwrap();
/// assert_eq!(worker.call(b"hi".to_vec()).await.unwrap(), b"HI");
/// worker.terminate();
/// while let Some(event) = events.recv().await {
///     if let ProcessEvent::Exited(reason) = event {
///         println!("exited: {reason}");
///     }
/// }
/// # });
/// ```
#[derive(Debug)]
pub struct WorkerProcess {
    pid: u32,
    max_frame: usize,
    heartbeat_interval: Duration,
    state: Rc<RefCell<State>>,
    system: System,
}

#[derive(Debug)]
struct State {
    /// Requests for the writer task; dropping it closes the process's stdin.
    requests: Option<mpsc::UnboundedSender<ToChild>>,
    /// Orders for the reaper; dropping it kills the process (SIGKILL).
    orders: Option<mpsc::UnboundedSender<Order>>,
    /// Calls sent and not answered, by id.
    pending: BTreeMap<u64, Reply>,
    next_id: u64,
    /// The process answered the handshake: until then, any exit is a
    /// failed start.
    ready: bool,
    /// The exit reason decided while the process still ran.
    decided: Option<ExitReason>,
    /// It was asked to end (stdin closed, SIGTERM): however it exits, by
    /// the signal or on its own, that is the stop it was asked for.
    terminating: bool,
    last_heartbeat: Option<Instant>,
    events: mpsc::UnboundedSender<ProcessEvent>,
    /// For the logs.
    name: String,
}

impl State {
    fn fail_pending(&mut self, error: &CallError) {
        for (_, reply) in std::mem::take(&mut self.pending) {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// Decides the exit reason (unless one was) and kills the process.
    fn kill(&mut self, reason: ExitReason) {
        if self.decided.is_some() || self.orders.is_none() {
            return;
        }
        self.fail_pending(&CallError::Exited(reason.to_string()));
        self.decided = Some(reason);
        self.requests = None;
        self.orders = None;
    }

    fn protocol_failure(&mut self, error: ProtocolError) {
        tracing::warn!(child = %self.name, %error, "worker broke the protocol; killing it");
        self.fail_pending(&CallError::Protocol(error.clone()));
        self.kill(ExitReason::Failed(format!("protocol error: {error}")));
    }

    fn on_frame(&mut self, item: Result<ToParent, ProtocolError>) {
        let event = match item {
            Ok(ToParent::Heartbeat) => {
                self.last_heartbeat = Some(Instant::now());
                ProcessEvent::Heartbeat
            }
            Ok(ToParent::Progress { id }) if self.pending.contains_key(&id) => {
                ProcessEvent::Progress
            }
            Ok(ToParent::Progress { .. }) => return,
            Ok(ToParent::Reply { id, result }) => {
                let Some(reply) = self.pending.remove(&id) else {
                    return;
                };
                let _ = reply.send(result.map_err(CallError::Handler));
                ProcessEvent::Replied
            }
            Ok(ToParent::Ready { .. }) => {
                return self.protocol_failure(ProtocolError::Unexpected {
                    expected: "Heartbeat, Progress or Reply",
                    got: "Ready".into(),
                })
            }
            // The pipe closed or broke: the process's exit says why.
            Err(ProtocolError::Closed | ProtocolError::Io(_)) => return,
            Err(e) => return self.protocol_failure(e),
        };
        let _ = self.events.send(event);
    }

    fn on_exit(&mut self, status: std::io::Result<ExitStatus>, tail: &StderrTail) -> ExitReason {
        self.orders = None;
        self.requests = None;
        let reason = match self.decided.take() {
            Some(reason) => {
                tracing::info!(child = %self.name, ?status, %reason, "worker process killed and reaped");
                reason
            }
            None if self.terminating && self.ready => {
                tracing::info!(child = %self.name, ?status, "worker process stopped as asked");
                ExitReason::Shutdown
            }
            None => {
                let reason = match status {
                    Ok(status) => {
                        exit_reason(Program::Worker, status, &tail.lines(), &tail.panic())
                    }
                    Err(e) => ExitReason::Failed(format!("waiting for the worker failed: {e}")),
                };
                let reason = before_handshake(self.ready, reason);
                tracing::info!(child = %self.name, %reason, "worker process exited");
                reason
            }
        };
        self.fail_pending(&CallError::Exited(reason.to_string()));
        reason
    }
}

/// A program that exits before its handshake (even with 0, like
/// `sh -c 'echo garbage'`) never was a worker: its start failed.
fn before_handshake(ready: bool, reason: ExitReason) -> ExitReason {
    match reason {
        reason if ready => reason,
        ExitReason::Normal => {
            ExitReason::StartFailed("the worker exited with code 0 before its handshake".into())
        }
        reason => {
            ExitReason::StartFailed(format!("the worker ended before its handshake: {reason}"))
        }
    }
}

impl WorkerProcess {
    /// Spawns `command` and starts the handshake; `name` labels its logs.
    /// Calls made before the handshake wait for it. The events report the
    /// handshake, heartbeats, progress, replies and, last, the exit.
    ///
    /// A process that cannot be spawned is `Err(StartFailed)`.
    pub fn spawn(
        command: &ProcessCommand,
        options: &ProcessOptions,
        name: &str,
    ) -> Result<(Self, ProcessEvents), ExitReason> {
        let mut child = command.to_tokio().spawn().map_err(|e| {
            let program = command.program().display();
            ExitReason::StartFailed(format!("cannot spawn {program}: {e}"))
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ExitReason::StartFailed(
                "the worker's pipes are missing".into(),
            ));
        };
        let pid = child.id().unwrap_or_default();
        tracing::debug!(child = %name, pid, "worker process spawned");
        let tail = StderrTail::default();
        let stderr_done = actix::spawn(drain(
            stderr,
            tail.clone(),
            options.stderr_lines,
            name.to_owned(),
            pid,
        ));
        let (orders, exit) = reap::start(child, vec![stderr_done]);
        let (requests, request_inbox) = mpsc::unbounded_channel();
        let (events, news) = mpsc::unbounded_channel();
        let state = Rc::new(RefCell::new(State {
            requests: Some(requests),
            orders: Some(orders),
            pending: BTreeMap::new(),
            next_id: 0,
            ready: false,
            decided: None,
            terminating: false,
            last_heartbeat: None,
            events,
            name: format!("{name} (pid {pid})"),
        }));

        let watcher = state.clone();
        actix::spawn(async move {
            let status = exit.await;
            let mut state = watcher.borrow_mut();
            let reason = state.on_exit(status, &tail);
            let _ = state.events.send(ProcessEvent::Exited(reason));
        });

        let speaker = state.clone();
        let (max, timeout) = (options.max_frame, options.handshake_timeout);
        let heartbeat_ms =
            u64::try_from(options.heartbeat_interval.as_millis()).unwrap_or(u64::MAX);
        actix::spawn(async move {
            let mut reader = FrameReader::new(stdout, max);
            let mut writer = FrameWriter::new(stdin, max);
            let shaken = tokio::time::timeout(
                timeout,
                handshake(&mut reader, &mut writer, heartbeat_ms, max),
            )
            .await;
            match shaken {
                Ok(Ok(_)) => {
                    {
                        let mut state = speaker.borrow_mut();
                        state.ready = true;
                        let _ = state.events.send(ProcessEvent::Ready);
                    }
                    actix::spawn(write_requests(writer, request_inbox));
                    let mut frames = std::pin::pin!(reader.into_stream::<ToParent>());
                    while let Some(frame) = frames.next().await {
                        speaker.borrow_mut().on_frame(frame);
                    }
                }
                // A process that died before its handshake: its exit says why.
                Ok(Err(ProtocolError::Closed | ProtocolError::Io(_))) => {}
                Ok(Err(e)) => {
                    let mut state = speaker.borrow_mut();
                    state.fail_pending(&CallError::Protocol(e.clone()));
                    state.kill(ExitReason::StartFailed(format!("handshake failed: {e}")));
                }
                Err(_) => {
                    let reason = format!("no handshake within {timeout:?}");
                    speaker.borrow_mut().kill(ExitReason::StartFailed(reason));
                }
            }
        });
        let worker = Self {
            pid,
            max_frame: max,
            heartbeat_interval: options.heartbeat_interval,
            state,
            system: System::new(),
        };
        Ok((worker, ProcessEvents(news)))
    }

    /// The OS pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `payload` to the worker's handler; resolves to its answer.
    /// Fails at once with [`CallError::TooLarge`] or
    /// [`CallError::NotRunning`] (stopping, or exited).
    pub fn call(
        &self,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, CallError>> + 'static {
        let sent = self.send(payload);
        async move { sent?.await.unwrap_or(Err(CallError::NotRunning)) }
    }

    fn send(
        &self,
        payload: Vec<u8>,
    ) -> Result<oneshot::Receiver<Result<Vec<u8>, CallError>>, CallError> {
        // The id and the enum's tags take at most 16 bytes.
        if payload.len().saturating_add(16) > self.max_frame {
            return Err(CallError::TooLarge {
                len: payload.len(),
                max: self.max_frame,
            });
        }
        let mut state = self.state.borrow_mut();
        let id = state.next_id;
        let requests = match &state.requests {
            Some(requests) if state.decided.is_none() => requests,
            _ => return Err(CallError::NotRunning),
        };
        requests
            .send(ToChild::Call { id, payload })
            .map_err(|_| CallError::NotRunning)?;
        state.next_id += 1;
        let (reply, answer) = oneshot::channel();
        state.pending.insert(id, reply);
        Ok(answer)
    }

    /// Whether it takes calls: not asked to end, not killed, not exited.
    pub fn is_serving(&self) -> bool {
        let state = self.state.borrow();
        state.requests.is_some() && state.decided.is_none()
    }

    /// Calls sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.state.borrow().pending.len()
    }

    /// How long since the process last heartbeat (`None` before its first).
    pub fn silence(&self) -> Option<Duration> {
        self.state.borrow().last_heartbeat.map(|at| at.elapsed())
    }

    /// Asks the process to end: its stdin is closed and it gets SIGTERM.
    /// Calls in flight may still be answered; new ones are refused.
    pub fn terminate(&self) {
        let mut state = self.state.borrow_mut();
        state.terminating = true;
        state.requests = None;
        if let Some(orders) = &state.orders {
            let _ = orders.send(Order::Terminate);
        }
    }

    /// Stops the process: a process that still heartbeats is asked to end
    /// ([`terminate`](Self::terminate)); one that missed three heartbeats
    /// (frozen, e.g. SIGSTOPped, or never heard from) cannot act on a
    /// SIGTERM and gets SIGKILL at once. Returns whether it was frozen.
    pub fn stop(&self) -> bool {
        let silence = self.silence();
        let frozen = silence.is_none_or(|s| s > self.heartbeat_interval.saturating_mul(3));
        tracing::info!(
            pid = self.pid,
            ?silence,
            frozen,
            "stopping a worker process: {}",
            if frozen {
                "SIGKILL"
            } else {
                "stdin closed, SIGTERM"
            }
        );
        if frozen {
            self.kill(ExitReason::Killed);
        } else {
            self.terminate();
        }
        frozen
    }

    /// Kills the process (SIGKILL) with `reason` as its exit reason, unless
    /// one was decided already; calls in flight fail with it.
    /// [`ProcessEvent::Exited`] follows once it is reaped.
    pub fn kill(&self, reason: ExitReason) {
        self.state.borrow_mut().kill(reason);
    }

    /// Measures the process's resident memory (RSS) in bytes, by pid;
    /// `None` if it is gone.
    pub fn rss(&mut self) -> Option<u64> {
        let pid = sysinfo::Pid::from_u32(self.pid);
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        self.system.process(pid).map(sysinfo::Process::memory)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let mut state = self.state.borrow_mut();
        // Dropping the orders makes the reaper SIGKILL and reap what is left.
        state.orders = None;
        state.requests = None;
        if state.decided.is_none() {
            state.fail_pending(&CallError::Exited("the worker process was dropped".into()));
        }
    }
}

async fn write_requests<W>(
    mut writer: FrameWriter<W>,
    mut requests: mpsc::UnboundedReceiver<ToChild>,
) where
    W: tokio::io::AsyncWrite + Unpin,
{
    while let Some(request) = requests.recv().await {
        if writer.send(&request).await.is_err() {
            break;
        }
    }
}
