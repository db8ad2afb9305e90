//! Test actors and a paused-time harness shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, Context, Handler, Message, Running};
use candado::{ChildLink, Event, EventKind, EventStream};

/// Runs `body` inside an actix System whose clock is paused (virtual time).
pub fn run_paused<F, Fut>(body: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("test runtime")
    });
    system.block_on(body());
}

/// Asks a worker to answer.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Ping;

/// Makes a worker panic.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Crash(pub &'static str);

/// Makes a worker stop normally.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Quit;

/// Makes a worker fail with a reason (abnormal, no panic).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fail(pub &'static str);

/// A worker that answers pings with its incarnation, and panics, quits or fails on demand.
pub struct Echo {
    pub link: ChildLink,
    /// If set, `stopping()` refuses to stop (a child that ignores its stop).
    pub stubborn: bool,
    /// Counts `stopped()` calls, shared with the test.
    pub stops: Option<Arc<AtomicU64>>,
}

impl Echo {
    pub fn new(link: ChildLink) -> Self {
        Self {
            link,
            stubborn: false,
            stops: None,
        }
    }
}

impl Actor for Echo {
    type Context = Context<Self>;

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        if self.stubborn {
            Running::Continue
        } else {
            Running::Stop
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(stops) = &self.stops {
            stops.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Handler<Ping> for Echo {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.link.incarnation()
    }
}

impl Handler<Crash> for Echo {
    type Result = ();
    fn handle(&mut self, msg: Crash, _: &mut Context<Self>) {
        panic!("{}", msg.0);
    }
}

impl Handler<Quit> for Echo {
    type Result = ();
    fn handle(&mut self, _: Quit, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Fail> for Echo {
    type Result = ();
    fn handle(&mut self, msg: Fail, ctx: &mut Context<Self>) {
        self.link.fail(ctx, msg.0);
    }
}

/// A worker that spins its thread in a CPU loop from `started()` until released.
pub struct Spinner {
    pub release: Arc<AtomicBool>,
    pub entered: Arc<AtomicBool>,
}

impl Actor for Spinner {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.entered.store(true, Ordering::SeqCst);
        while !self.release.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
    }
}

/// Collects every event already queued on `stream`.
pub fn drain(stream: &mut EventStream) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(Some(event)) = stream.try_recv() {
        out.push(event);
    }
    out
}

/// Lets every ready task on the current runtime run (no time passes).
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Advances virtual time by `d`, letting timers fire in order.
pub async fn advance(d: Duration) {
    tokio::time::sleep(d).await;
    settle().await;
}

/// `(supervisor, child)` of every `child_started` event, in order.
pub fn starts(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ChildStarted { child, .. } => Some((e.supervisor.clone(), child.clone())),
            _ => None,
        })
        .collect()
}

/// `(supervisor, child)` of every `child_exited` event, in order.
pub fn exits(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ChildExited { child, .. } => Some((e.supervisor.clone(), child.clone())),
            _ => None,
        })
        .collect()
}

/// Builds a runtime that runs everything on the current (paused) arbiter,
/// subscribes to its events and starts `spec` as a root.
pub async fn start_local(
    spec: candado::SupervisorSpec,
) -> (candado::Runtime, EventStream, candado::SupervisorRef) {
    let runtime = candado::Runtime::builder()
        .current_thread()
        .build()
        .expect("runtime");
    let events = runtime.subscribe();
    let root = runtime.start(spec).await.expect("tree starts");
    (runtime, events, root)
}

/// Starves the worker's context for a while: `ctx.wait` blocks its mailbox and
/// every spawned item (so Candado's heartbeat and pong), like a CPU-bound loop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Starve(pub Duration);

impl Handler<Starve> for Echo {
    type Result = ();
    fn handle(&mut self, msg: Starve, ctx: &mut Context<Self>) {
        use actix::AsyncContext;
        ctx.wait(actix::fut::wrap_future(tokio::time::sleep(msg.0)));
    }
}

/// Begins a unit of work and never reports progress (a stuck task).
#[derive(Message)]
#[rtype(result = "()")]
pub struct BeginWork(pub &'static str);

impl Handler<BeginWork> for Echo {
    type Result = ();
    fn handle(&mut self, msg: BeginWork, _: &mut Context<Self>) {
        self.link.begin_work(msg.0);
    }
}

/// Sets the memory the worker reports in its heartbeats.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReportMemory(pub u64);

impl Handler<ReportMemory> for Echo {
    type Result = ();
    fn handle(&mut self, msg: ReportMemory, _: &mut Context<Self>) {
        self.link.set_memory(msg.0);
    }
}

/// Reports a task outcome, optionally through a dependency.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Outcome(pub Option<&'static str>, pub bool);

impl Handler<Outcome> for Echo {
    type Result = ();
    fn handle(&mut self, msg: Outcome, _: &mut Context<Self>) {
        self.link.report_outcome(msg.0, msg.1);
    }
}

/// The first event matching `pred` among `events`.
pub fn find(events: &[Event], pred: impl Fn(&EventKind) -> bool) -> Option<&Event> {
    events.iter().find(|e| pred(&e.kind))
}
