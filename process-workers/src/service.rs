//! `ServiceChild`: a supervised external command with a health probe.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use actix::prelude::*;
use candado::{ChildLink, ChildSpec, ExitReason};
use tokio::sync::mpsc;

use crate::call::Pid;
use crate::command::ProcessCommand;
use crate::exit_status::{exit_reason, Program};
use crate::probe::Probe;
use crate::reap::{self, Order};
use crate::stderr::{drain_stream, StderrTail};

/// How a service child runs and probes its command.
///
/// The shutdown timeout (SIGTERM, then SIGKILL) is the child spec's
/// [`ShutdownPolicy`](candado::ShutdownPolicy), as for any worker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceOptions {
    /// How often the probe runs once the grace period is over (default 1 s).
    pub interval: Duration,
    /// How long one probe may take (default 1 s); past it, it failed.
    pub timeout: Duration,
    /// How long the service has to start before the first probe (default
    /// 5 s); liveness watches it from then on.
    pub grace: Duration,
    /// How many of the service's last stderr lines are kept for exit
    /// reasons (default 20).
    pub stderr_lines: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            grace: Duration::from_secs(5),
            stderr_lines: 20,
        }
    }
}

impl ServiceOptions {
    /// Sets the probe interval.
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every;
        self
    }

    /// Sets the probe timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the start-up grace period.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets how many stderr lines are kept.
    pub fn stderr_lines(mut self, lines: usize) -> Self {
        self.stderr_lines = lines;
        self
    }
}

/// Asks a service child how its probe fares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeStatus;

/// The answer to [`ProbeStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, MessageResponse)]
#[non_exhaustive]
pub struct ProbeReport {
    /// Probes passed by this incarnation.
    pub passed: u64,
    /// Probes failed in a row (0 after a pass).
    pub consecutive_failures: u64,
}

impl Message for ProbeStatus {
    type Result = ProbeReport;
}

/// A supervised child that runs any external command (stdin null, stdout
/// and stderr lines to `tracing`) and probes it every
/// [`interval`](ServiceOptions::interval) with a [`Probe`].
///
/// Liveness sees the service through the child's work reports: once the
/// [`grace`](ServiceOptions::grace) period is over the child begins the work
/// `"probe"`, and each probe that passes is progress on it. A service whose
/// probe keeps failing makes no progress, and `Liveness`'s progress timeout
/// restarts it (under the supervisor's intensity, backoff and heal limit).
/// A service that exits on its own ends the child with its exit status
/// mapped as for a [`ProcessChild`](crate::ProcessChild).
///
/// On stop it sends SIGTERM; if the supervisor kills it after the shutdown
/// timeout, the process gets SIGKILL. Either way the process is reaped.
///
/// ```no_run
/// use candado::{Liveness, LivenessConfig, SupervisorSpec};
/// use candado_process::{Probe, ProcessCommand, ServiceChild, ServiceOptions};
///
/// let addr = "127.0.0.1:6379".parse().unwrap();
/// let redis = ProcessCommand::new("redis-server").arg("--port").arg("6379");
/// let tree = SupervisorSpec::new("root")
///     .health(Liveness::new(LivenessConfig::default()).unwrap())
///     .child(ServiceChild::spec("redis", redis, Probe::Tcp(addr), ServiceOptions::default()));
/// # let _ = tree;
/// ```
#[derive(Debug)]
pub struct ServiceChild {
    link: ChildLink,
    command: ProcessCommand,
    probe: Probe,
    options: ServiceOptions,
    /// The OS pid, from the spawn; cleared when the process exits.
    pid: Option<u32>,
    /// Orders for the reaper; dropping it kills the process (SIGKILL).
    orders: Option<mpsc::UnboundedSender<Order>>,
    tail: StderrTail,
    /// The supervisor asked for a stop: the exit is a shutdown.
    stopping: bool,
    /// The exit reason is decided; later news changes nothing.
    ending: bool,
    /// The exit reason decided while the process still ran.
    decided: Option<ExitReason>,
    /// A probe is running: the next tick skips.
    probing: bool,
    report: ProbeReport,
}

impl ServiceChild {
    /// A child spec (permanent, 5 s shutdown timeout, as any worker) whose
    /// every incarnation runs `command` in a fresh process, probed by `probe`.
    pub fn spec(
        id: impl Into<String>,
        command: ProcessCommand,
        probe: Probe,
        options: ServiceOptions,
    ) -> ChildSpec {
        ChildSpec::worker(id, move |link| ServiceChild {
            link,
            command: command.clone(),
            probe: probe.clone(),
            options: options.clone(),
            pid: None,
            orders: None,
            tail: StderrTail::default(),
            stopping: false,
            ending: false,
            decided: None,
            probing: false,
            report: ProbeReport::default(),
        })
    }

    /// Ends the child with `reason`, unless one was decided already; a
    /// process still running is killed and reaped first.
    fn end(&mut self, ctx: &mut Context<Self>, reason: ExitReason) {
        if std::mem::replace(&mut self.ending, true) {
            return;
        }
        if self.pid.is_some() && self.orders.is_some() {
            self.decided = Some(reason);
            self.orders = None;
            return;
        }
        self.finish(ctx, reason);
    }

    fn finish(&mut self, ctx: &mut Context<Self>, reason: ExitReason) {
        if self.stopping {
            ctx.stop();
        } else {
            self.link.exit(ctx, reason);
        }
    }

    fn on_exit(&mut self, ctx: &mut Context<Self>, status: std::io::Result<ExitStatus>) {
        let pid = self.pid.take();
        self.orders = None;
        if let Some(reason) = self.decided.take() {
            tracing::info!(child = %self.link.id(), pid, ?status, %reason, "service process killed and reaped");
            return self.finish(ctx, reason);
        }
        let reason = match status {
            Ok(status) => exit_reason(
                Program::Service,
                status,
                &self.tail.lines(),
                &self.tail.panic(),
            ),
            Err(e) => ExitReason::Failed(format!("waiting for the service failed: {e}")),
        };
        tracing::info!(child = %self.link.id(), pid, %reason, "service process exited");
        self.end(ctx, reason);
    }

    fn run_probe(&mut self, ctx: &mut Context<Self>) {
        if self.probing || self.ending || self.stopping {
            return;
        }
        self.probing = true;
        let probe = self.probe.clone();
        let timeout = self.options.timeout;
        ctx.spawn(
            async move { probe.check(timeout).await }
                .into_actor(self)
                .map(|result, act, _| act.on_probe(result)),
        );
    }

    fn on_probe(&mut self, result: Result<(), String>) {
        self.probing = false;
        if self.ending || self.stopping {
            return;
        }
        match result {
            Ok(()) => {
                if self.report.consecutive_failures > 0 {
                    tracing::info!(
                        child = %self.link.id(), pid = ?self.pid, probe = %self.probe,
                        failures = self.report.consecutive_failures,
                        "service probe passes again"
                    );
                }
                self.report.passed += 1;
                self.report.consecutive_failures = 0;
                self.link.progress();
            }
            Err(error) => {
                self.report.consecutive_failures += 1;
                tracing::warn!(
                    child = %self.link.id(), pid = ?self.pid, probe = %self.probe,
                    consecutive_failures = self.report.consecutive_failures, %error,
                    "service probe failed"
                );
            }
        }
        self.link
            .set_counter("probe_failures", self.report.consecutive_failures);
    }
}

impl Actor for ServiceChild {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let spawned = self
            .command
            .to_tokio_with(Stdio::null(), Stdio::piped(), Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let program = self.command.program().display().to_string();
                return self.end(
                    ctx,
                    ExitReason::StartFailed(format!("cannot spawn {program}: {e}")),
                );
            }
        };
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return self.end(
                ctx,
                ExitReason::StartFailed("the service's pipes are missing".into()),
            );
        };
        let os_pid = child.id().unwrap_or_default();
        self.pid = Some(os_pid);
        self.link.set_counter("pid", u64::from(os_pid));
        let id = self.link.id().to_owned();
        tracing::debug!(child = %id, pid = os_pid, probe = %self.probe, "service process spawned");
        let keep = self.options.stderr_lines;
        let drained = vec![
            actix::spawn(drain_stream(
                stdout,
                "stdout",
                StderrTail::default(),
                0,
                id.clone(),
                os_pid,
            )),
            actix::spawn(drain_stream(
                stderr,
                "stderr",
                self.tail.clone(),
                keep,
                id,
                os_pid,
            )),
        ];
        let (orders, exit) = reap::start(child, drained);
        self.orders = Some(orders);
        ctx.spawn(
            exit.into_actor(self)
                .map(|status, act, ctx| act.on_exit(ctx, status)),
        );
        ctx.run_later(self.options.grace, |act, ctx| {
            if act.ending || act.stopping {
                return;
            }
            // From here on, no passing probe within the progress timeout
            // is a stuck service.
            act.link.begin_work("probe");
            act.run_probe(ctx);
            ctx.run_interval(act.options.interval, |act, ctx| act.run_probe(ctx));
        });
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        if self.ending || self.pid.is_none() {
            return Running::Stop;
        }
        // Asked to stop: SIGTERM, and wait for the exit (the supervisor
        // kills this actor after the shutdown timeout).
        if !std::mem::replace(&mut self.stopping, true) {
            tracing::info!(child = %self.link.id(), pid = ?self.pid, "stopping the service process: SIGTERM");
            if let Some(orders) = &self.orders {
                let _ = orders.send(Order::Terminate);
            }
        }
        Running::Continue
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // Dropping the orders makes the reaper SIGKILL and reap what is left.
        self.orders = None;
    }
}

impl Handler<Pid> for ServiceChild {
    type Result = Option<u32>;

    fn handle(&mut self, _: Pid, _ctx: &mut Context<Self>) -> Option<u32> {
        self.pid
    }
}

impl Handler<ProbeStatus> for ServiceChild {
    type Result = ProbeReport;

    fn handle(&mut self, _: ProbeStatus, _ctx: &mut Context<Self>) -> ProbeReport {
        self.report
    }
}
