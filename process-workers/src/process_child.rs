//! `ProcessChild`: a supervised child that owns one worker process, and
//! tells its supervisor what the process does.

use actix::prelude::*;
use candado::{ChildLink, ChildSpec, ExitReason};

use crate::command::{ProcessCommand, ProcessOptions};
use crate::connection::{ProcessEvent, WorkerProcess};

/// A supervised child that owns an OS process: it spawns it, shakes hands,
/// forwards its heartbeats and progress to the supervisor, measures its RSS,
/// answers [`Call`](crate::Call)s through it, and stops, kills and reaps it.
///
/// Liveness sees the process itself: the child's heartbeats are the
/// process's own ([`ChildSpec::external_heartbeats`]), sent from a thread of
/// the process, and during a call the handler's progress is the child's
/// progress on the work `"call"`. So a frozen process (SIGSTOP, no
/// heartbeat) is restarted by `Liveness`'s heartbeat timeout with cause
/// `silent`, and a stuck handler (heartbeats, no progress) by its progress
/// timeout with cause `stuck`. Measured RSS goes to
/// [`ChildLink::set_memory`], for `MemoryGuard`.
///
/// On stop it closes the process's stdin and sends SIGTERM (SIGKILL at once
/// to a process that missed three heartbeats: a frozen process cannot act
/// on SIGTERM); if the supervisor kills it after the shutdown timeout, the
/// process gets SIGKILL. Either way the process is reaped.
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
    /// The running process; `None` before the spawn and once it exited.
    process: Option<WorkerProcess>,
    /// The supervisor asked for a stop: the exit is a shutdown.
    stopping: bool,
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
            process: None,
            stopping: false,
        })
        .external_heartbeats()
    }

    /// The process is gone (reaped): the child ends with `reason`.
    fn exited(&mut self, ctx: &mut Context<Self>, reason: ExitReason) {
        self.process = None;
        if self.stopping {
            ctx.stop();
        } else {
            self.link.exit(ctx, reason);
        }
    }

    /// Liveness watches the handler's progress while a call is in flight.
    pub(crate) fn watch(&self) {
        if self.process.as_ref().is_some_and(|p| p.in_flight() > 0) {
            self.link.begin_work("call");
        } else {
            self.link.end_work();
        }
    }

    fn measure(&mut self) {
        if let Some(rss) = self.process.as_mut().and_then(WorkerProcess::rss) {
            self.link.set_memory(rss);
        }
    }

    pub(crate) fn process(&self) -> Option<&WorkerProcess> {
        self.process.as_ref().filter(|_| !self.stopping)
    }

    fn on_event(&mut self, event: ProcessEvent, ctx: &mut Context<Self>) {
        match event {
            ProcessEvent::Ready => {
                self.watch();
                self.measure();
                let every = self.options.memory_interval;
                ctx.run_interval(every, |act, _| act.measure());
            }
            ProcessEvent::Heartbeat => self.link.heartbeat(),
            ProcessEvent::Progress => self.link.progress(),
            ProcessEvent::Replied => {
                self.link.add_tasks_done(1);
                self.watch();
            }
            ProcessEvent::Exited(reason) => self.exited(ctx, reason),
        }
    }
}

impl StreamHandler<ProcessEvent> for ProcessChild {
    fn handle(&mut self, event: ProcessEvent, ctx: &mut Context<Self>) {
        self.on_event(event, ctx);
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // `Exited` came last.
    }
}

impl Actor for ProcessChild {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        match WorkerProcess::spawn(&self.command, &self.options, self.link.id()) {
            Ok((process, events)) => {
                self.link.set_counter("pid", u64::from(process.pid()));
                self.process = Some(process);
                ctx.add_stream(events);
            }
            Err(reason) => self.link.exit(ctx, reason),
        }
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        let Some(process) = &self.process else {
            return Running::Stop;
        };
        // Asked to stop: close stdin and send SIGTERM (SIGKILL if it is
        // frozen), then wait for the exit (the supervisor kills this actor
        // after the shutdown timeout).
        if !std::mem::replace(&mut self.stopping, true) {
            process.stop();
        }
        Running::Continue
    }
}

mod messages;
