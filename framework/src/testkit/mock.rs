//! A worker that misbehaves on command.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, Running};

use crate::ChildLink;

/// Asks a [`MockChild`] for its incarnation (1 for the first start).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "u64")]
pub struct Ping;

/// Makes a [`MockChild`] panic with this message (a crash).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Crash(pub &'static str);

/// Makes a [`MockChild`] stop normally.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Quit;

/// Makes a [`MockChild`] exit with this reason (abnormal, no panic).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Fail(pub &'static str);

/// Makes a [`MockChild`] hang for good: its context waits on a future that
/// never completes, which blocks its mailbox, its heartbeats and its pongs,
/// like a thread stuck in a blocking call. Only a kill ends it.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Hang;

/// Starves a [`MockChild`]'s context for a while (as [`Hang`], then it
/// recovers): a CPU-bound stretch.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Starve(pub Duration);

/// Makes a [`MockChild`] begin a unit of work and never report progress (a
/// stuck task, for the liveness strategy's progress timeout).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct BeginWork(pub &'static str);

/// Sets the memory a [`MockChild`] reports in its heartbeats.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ReportMemory(pub u64);

/// Makes a [`MockChild`] leak: the memory it reports grows by this many
/// bytes and stays grown until the incarnation ends. Nothing is really
/// allocated; the memory strategy sees what the child reports.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Leak(pub u64);

/// Makes a [`MockChild`] report a task outcome, optionally through a
/// dependency (for the circuit breakers).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Outcome(pub Option<&'static str>, pub bool);

/// A worker that answers [`Ping`] with its incarnation and panics, hangs,
/// stops, fails or leaks on command.
///
/// Start it with [`MockChild::factory`] to get a [`MockHandle`] that reaches
/// the current incarnation and counts starts and stops, or with
/// [`MockChild::new`] inside a factory of your own.
#[derive(Debug)]
pub struct MockChild {
    link: ChildLink,
    handle: Option<MockHandle>,
    /// Refuses to stop when asked (a child that ignores its stop).
    stubborn: bool,
    /// Memory reported so far by [`Leak`] and [`ReportMemory`].
    memory: u64,
}

impl MockChild {
    /// A mock child on `link`, not tracked by any handle.
    pub fn new(link: ChildLink) -> Self {
        Self {
            link,
            handle: None,
            stubborn: false,
            memory: 0,
        }
    }

    /// A factory for [`ChildSpec::worker`](crate::ChildSpec::worker) and the
    /// handle that tracks what it starts.
    pub fn factory() -> (
        impl Fn(ChildLink) -> MockChild + Clone + Send + Sync + 'static,
        MockHandle,
    ) {
        let handle = MockHandle::default();
        let tracked = handle.clone();
        (move |link| tracked.child(link), handle)
    }

    /// Makes this child refuse to stop when asked: its supervisor must kill
    /// it after its shutdown timeout.
    pub fn stubborn(mut self) -> Self {
        self.stubborn = true;
        self
    }

    /// The child's link to its supervisor.
    pub fn link(&self) -> &ChildLink {
        &self.link
    }
}

impl Actor for MockChild {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = &self.handle {
            handle.shared.starts.fetch_add(1, Ordering::SeqCst);
            *handle.lock() = Some(ctx.address());
        }
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        if self.stubborn {
            Running::Continue
        } else {
            Running::Stop
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(handle) = &self.handle {
            handle.shared.stops.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Handler<Ping> for MockChild {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.link.incarnation()
    }
}

impl Handler<Crash> for MockChild {
    type Result = ();
    fn handle(&mut self, msg: Crash, _: &mut Context<Self>) {
        panic!("{}", msg.0);
    }
}

impl Handler<Quit> for MockChild {
    type Result = ();
    fn handle(&mut self, _: Quit, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Fail> for MockChild {
    type Result = ();
    fn handle(&mut self, msg: Fail, ctx: &mut Context<Self>) {
        self.link.fail(ctx, msg.0);
    }
}

impl Handler<Hang> for MockChild {
    type Result = ();
    fn handle(&mut self, _: Hang, ctx: &mut Context<Self>) {
        ctx.wait(actix::fut::wrap_future(std::future::pending::<()>()));
    }
}

impl Handler<Starve> for MockChild {
    type Result = ();
    fn handle(&mut self, msg: Starve, ctx: &mut Context<Self>) {
        ctx.wait(actix::fut::wrap_future(tokio::time::sleep(msg.0)));
    }
}

impl Handler<BeginWork> for MockChild {
    type Result = ();
    fn handle(&mut self, msg: BeginWork, _: &mut Context<Self>) {
        self.link.begin_work(msg.0);
    }
}

impl Handler<ReportMemory> for MockChild {
    type Result = ();
    fn handle(&mut self, msg: ReportMemory, _: &mut Context<Self>) {
        self.memory = msg.0;
        self.link.set_memory(msg.0);
    }
}

impl Handler<Leak> for MockChild {
    type Result = ();
    fn handle(&mut self, msg: Leak, _: &mut Context<Self>) {
        self.memory = self.memory.saturating_add(msg.0);
        self.link.set_memory(self.memory);
    }
}

impl Handler<Outcome> for MockChild {
    type Result = ();
    fn handle(&mut self, msg: Outcome, _: &mut Context<Self>) {
        self.link.report_outcome(msg.0, msg.1);
    }
}

/// What a [`MockChild::factory`] started: the latest incarnation's address
/// and how many incarnations started and stopped. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct MockHandle {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    addr: Mutex<Option<Addr<MockChild>>>,
    starts: AtomicU64,
    stops: AtomicU64,
}

impl MockHandle {
    /// A child tracked by this handle (for a factory of your own, e.g.
    /// `move |link| handle.child(link).stubborn()`).
    pub fn child(&self, link: ChildLink) -> MockChild {
        MockChild {
            handle: Some(self.clone()),
            ..MockChild::new(link)
        }
    }

    /// The address of the latest incarnation that started, if any.
    pub fn addr(&self) -> Option<Addr<MockChild>> {
        self.lock().clone()
    }

    /// Incarnations started.
    pub fn starts(&self) -> u64 {
        self.shared.starts.load(Ordering::SeqCst)
    }

    /// Incarnations whose actor stopped (a hung or killed one may never).
    pub fn stops(&self) -> u64 {
        self.shared.stops.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Addr<MockChild>>> {
        self.shared.addr.lock().unwrap_or_else(|p| p.into_inner())
    }
}
