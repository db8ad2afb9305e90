//! `ProcessChild`: the actor that owns one worker process: spawn,
//! handshake, exit, stop.

use std::collections::BTreeMap;
use std::process::ExitStatus;
use std::time::Instant;

use actix::prelude::*;
use candado::{ChildLink, ChildSpec, ExitReason};
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

/// A supervised child that owns an OS process: it spawns it, shakes hands,
/// forwards its heartbeats and progress to the supervisor, measures its RSS,
/// answers [`Call`](crate::Call)s through it, and stops, kills and reaps it.
///
/// Liveness sees the process through the child's work reports: while no
/// call is in flight, each process heartbeat is progress on the work
/// `"idle"`; during a call, only the handler's progress counts. So a frozen
/// process (no heartbeat) and a stuck handler (heartbeats, no progress) both
/// stop making progress, and `Liveness`'s progress timeout restarts them.
/// Measured RSS goes to [`ChildLink::set_memory`], for `MemoryGuard`.
///
/// On stop it closes the process's stdin and sends SIGTERM; if the
/// supervisor kills it after the shutdown timeout, the process gets SIGKILL.
/// Either way the process is reaped.
///
/// ```no_run
/// use candado::{Runtime, SupervisorSpec};
/// use candado_process::{Call, ProcessChild, ProcessCommand, ProcessOptions};
///
/// actix::System::new().block_on(async {
///     let runtime = Runtime::builder().build().unwrap();
///     let command = ProcessCommand::current_exe("upper").unwrap();
///     let tree = SupervisorSpec::new("root")
///         .child(ProcessChild::spec("upper", command, ProcessOptions::default()));
///     let root = runtime.start(tree).await.unwrap();
///     let worker = root.worker::<ProcessChild>("upper").await.unwrap();
///     let reply = worker.send(Call(b"hi".to_vec())).await.unwrap();
///     assert_eq!(reply.unwrap(), b"HI");
///     runtime.shutdown().await;
/// });
/// ```
#[derive(Debug)]
pub struct ProcessChild {
    link: ChildLink,
    command: ProcessCommand,
    options: ProcessOptions,
    /// The OS pid, from the spawn; cleared when the process exits.
    pid: Option<u32>,
    /// Requests for the writer task; dropping it closes the process's stdin.
    requests: Option<mpsc::UnboundedSender<ToChild>>,
    /// Orders for the reaper; dropping it kills the process (SIGKILL).
    orders: Option<mpsc::UnboundedSender<Order>>,
    /// Calls sent and not answered, by id.
    pending: BTreeMap<u64, Reply>,
    next_id: u64,
    tail: StderrTail,
    /// The supervisor asked for a stop: the exit is a shutdown.
    stopping: bool,
    /// The exit reason is decided; later news changes nothing.
    ending: bool,
    /// The process answered the handshake: until then, any exit is a
    /// failed start.
    ready: bool,
    /// The exit reason decided while the process still ran: reported once
    /// it is reaped.
    decided: Option<ExitReason>,
    /// When the process last heartbeat: tells a frozen process from a
    /// stuck handler in the logs of a stop.
    last_heartbeat: Option<Instant>,
    system: System,
}

impl ProcessChild {
    /// A child spec (permanent, 5 s shutdown timeout, as any worker) whose
    /// every incarnation runs `command` in a fresh process.
    pub fn spec(
        id: impl Into<String>,
        command: ProcessCommand,
        options: ProcessOptions,
    ) -> ChildSpec {
        ChildSpec::worker(id, move |link| ProcessChild {
            link,
            command: command.clone(),
            options: options.clone(),
            pid: None,
            requests: None,
            orders: None,
            pending: BTreeMap::new(),
            next_id: 0,
            tail: StderrTail::default(),
            stopping: false,
            ending: false,
            ready: false,
            decided: None,
            last_heartbeat: None,
            system: System::new(),
        })
    }

    /// Ends the child with `reason`, unless a reason was decided already.
    /// A process still running is killed and reaped first: the child
    /// reports its exit only once its process is gone, so no shutdown that
    /// follows can drop the reaper and leave a zombie behind.
    fn end(&mut self, ctx: &mut Context<Self>, reason: ExitReason) {
        if std::mem::replace(&mut self.ending, true) {
            return;
        }
        self.fail_pending(&CallError::Exited(reason.to_string()));
        if self.pid.is_some() && self.orders.is_some() {
            // Dropping the orders makes the reaper SIGKILL and reap;
            // `on_exit` then reports the reason decided here.
            self.decided = Some(reason);
            self.requests = None;
            self.orders = None;
            return;
        }
        self.report(ctx, reason);
    }

    fn report(&mut self, ctx: &mut Context<Self>, reason: ExitReason) {
        if self.stopping {
            ctx.stop();
        } else {
            self.link.exit(ctx, reason);
        }
    }

    fn fail_pending(&mut self, error: &CallError) {
        for (_, reply) in std::mem::take(&mut self.pending) {
            let _ = reply.send(Err(error.clone()));
        }
    }

    fn protocol_failure(&mut self, ctx: &mut Context<Self>, error: ProtocolError) {
        tracing::warn!(child = %self.link.id(), pid = ?self.pid, %error, "worker broke the protocol; killing it");
        self.fail_pending(&CallError::Protocol(error.clone()));
        let reason = format!("protocol error: {error}");
        self.end(ctx, ExitReason::Failed(reason));
    }

    fn on_exit(&mut self, ctx: &mut Context<Self>, status: std::io::Result<ExitStatus>) {
        let pid = self.pid.take();
        self.orders = None;
        self.requests = None;
        if let Some(reason) = self.decided.take() {
            tracing::info!(child = %self.link.id(), pid, ?status, %reason, "worker process killed and reaped");
            return self.report(ctx, reason);
        }
        let reason = match status {
            Ok(status) => exit_reason(
                Program::Worker,
                status,
                &self.tail.lines(),
                &self.tail.panic(),
            ),
            Err(e) => ExitReason::Failed(format!("waiting for the worker failed: {e}")),
        };
        // A program that exits before its handshake (even with 0, like
        // `sh -c 'echo garbage'`) never was a worker: its start failed.
        let reason = match reason {
            reason if self.ready => reason,
            ExitReason::Normal => {
                ExitReason::StartFailed("the worker exited with code 0 before its handshake".into())
            }
            reason => {
                ExitReason::StartFailed(format!("the worker ended before its handshake: {reason}"))
            }
        };
        tracing::info!(child = %self.link.id(), pid, %reason, "worker process exited");
        self.end(ctx, reason);
    }

    /// Liveness watches the handler during a call, the process otherwise.
    fn watch(&self) {
        self.link.begin_work(if self.pending.is_empty() {
            "idle"
        } else {
            "call"
        });
    }

    fn measure(&mut self) {
        let Some(pid) = self.pid else { return };
        let pid = sysinfo::Pid::from_u32(pid);
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        if let Some(process) = self.system.process(pid) {
            self.link.set_memory(process.memory());
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

impl Actor for ProcessChild {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let mut child = match self.command.to_tokio().spawn() {
            Ok(child) => child,
            Err(e) => {
                let program = self.command.program().display().to_string();
                return self.end(
                    ctx,
                    ExitReason::StartFailed(format!("cannot spawn {program}: {e}")),
                );
            }
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return self.end(
                ctx,
                ExitReason::StartFailed("the worker's pipes are missing".into()),
            );
        };
        let os_pid = child.id().unwrap_or_default();
        self.pid = Some(os_pid);
        self.link.set_counter("pid", u64::from(os_pid));
        let id = self.link.id().to_owned();
        tracing::debug!(child = %id, pid = os_pid, "worker process spawned");
        let stderr_done = actix::spawn(drain(
            stderr,
            self.tail.clone(),
            self.options.stderr_lines,
            id,
            os_pid,
        ));

        let (orders, exit) = reap::start(child, vec![stderr_done]);
        self.orders = Some(orders);
        ctx.spawn(
            exit.into_actor(self)
                .map(|status, act, ctx| act.on_exit(ctx, status)),
        );

        let (requests, request_inbox) = mpsc::unbounded_channel();
        self.requests = Some(requests);
        let max = self.options.max_frame;
        let heartbeat_ms =
            u64::try_from(self.options.heartbeat_interval.as_millis()).unwrap_or(u64::MAX);
        let timeout = self.options.handshake_timeout;
        ctx.spawn(
            async move {
                let mut reader = FrameReader::new(stdout, max);
                let mut writer = FrameWriter::new(stdin, max);
                let shaken = tokio::time::timeout(
                    timeout,
                    handshake(&mut reader, &mut writer, heartbeat_ms, max),
                )
                .await;
                (shaken, reader, writer)
            }
            .into_actor(self)
            .map(move |(shaken, reader, writer), act, ctx| match shaken {
                Ok(Ok(_)) => {
                    act.ready = true;
                    act.watch();
                    act.measure();
                    actix::spawn(write_requests(writer, request_inbox));
                    ctx.add_stream(reader.into_stream::<ToParent>());
                    let every = act.options.memory_interval;
                    ctx.run_interval(every, |act, _| act.measure());
                }
                // A process that died before its handshake: its exit says why.
                Ok(Err(ProtocolError::Closed | ProtocolError::Io(_))) => {}
                Ok(Err(e)) => {
                    act.fail_pending(&CallError::Protocol(e.clone()));
                    let reason = format!("handshake failed: {e}");
                    act.end(ctx, ExitReason::StartFailed(reason));
                }
                Err(_) => {
                    let reason = format!("no handshake within {timeout:?}");
                    act.end(ctx, ExitReason::StartFailed(reason));
                }
            }),
        );
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        if self.ending || self.pid.is_none() {
            return Running::Stop;
        }
        // Asked to stop: close stdin, send SIGTERM and wait for the exit
        // (the supervisor kills this actor after the shutdown timeout).
        if !std::mem::replace(&mut self.stopping, true) {
            let silence = self.last_heartbeat.map(|at| at.elapsed());
            // Three heartbeats missed: the process itself is frozen; else
            // only its handler (if anything) is stuck.
            let frozen = silence.is_none_or(|s| s > self.options.heartbeat_interval * 3);
            tracing::info!(
                child = %self.link.id(), pid = ?self.pid, ?silence, frozen,
                "stopping the worker process: stdin closed, SIGTERM"
            );
            self.requests = None;
            if let Some(orders) = &self.orders {
                let _ = orders.send(Order::Terminate);
            }
        }
        Running::Continue
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // Dropping the orders makes the reaper SIGKILL and reap what is left.
        self.orders = None;
        self.requests = None;
        self.fail_pending(&CallError::Exited("the process child stopped".into()));
    }
}

mod messages;
