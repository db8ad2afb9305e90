//! The child's side of supervision: its link to the parent and its exit guard.
//!
//! Every supervised actor gets a hidden *control item* spawned into its actix
//! context. The item
//! - receives stop/kill orders from the supervisor and applies them from
//!   inside the actor's own context (so any `Actor` type works, no `Handler`
//!   bound is needed), and
//! - owns the *exit guard*, which is dropped exactly when the actor's context
//!   is dropped: after `stopped()`, or during unwinding when a handler panics.
//!   The guard then reports the exit, with its reason, to the supervisor.
//!
//! The supervisor is known here only as a [`Parent`]: the reports go through
//! that seam, and orders and heartbeats through the shared [`Pulse`].

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{self, Poll};
use std::time::Duration;

use actix::{Actor, ActorContext, ActorFuture, AsyncContext, Context};
use futures_util::task::AtomicWaker;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::exit::ExitReason;
use crate::health::{Metrics, Signal};
use crate::panic_capture;
use crate::parent::{ChildExited, ChildSignal, ChildStarted, ErasedAddr, Parent};

/// An order from a supervisor to one child incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Stop gracefully (`stopping()` runs and may delay the stop).
    Stop,
    /// Stop at once (`stopping()` is skipped).
    Kill,
    /// Answer with a pong carrying this sequence number.
    Ping(u64),
}

/// What is known about an incarnation's exit before its guard drops.
#[derive(Debug, Default)]
struct ExitNote {
    /// The message of a panic that crashed the child's task: it wins over
    /// anything else (the context is dropped after the panic was caught).
    crashed: Option<String>,
    /// A reason the child (or supervisor machinery) set explicitly (boxed:
    /// rare, and there is one note per incarnation).
    reason: Option<Box<ExitReason>>,
    /// The supervisor asked it to stop.
    stop_requested: bool,
    /// The supervisor killed it.
    killed: bool,
}

/// One incarnation's shared record: who it is and where it reports, its
/// heartbeats and metrics, its control line and its exit note. One
/// allocation per incarnation, shared by the supervisor (through
/// [`ControlSender`] and its record of the child), the child's
/// [`ChildLink`] and its control item.
///
/// Heartbeats and metrics are left here by the child for its supervisor to
/// collect on its next tick: a heartbeat is a clock read and an atomic
/// increment on the child's thread, never a message. Orders from the
/// supervisor are atomic flags, the child's control item woken through
/// `waker`.
#[derive(Debug)]
pub(crate) struct Pulse {
    /// The supervisor, shared by all its children's incarnations.
    parent: Arc<dyn Parent>,
    /// The child's key in its supervisor.
    key: u64,
    id: Arc<str>,
    /// The incarnation number: 1 for the first start.
    number: u64,
    /// Heartbeats and pongs so far (the supervisor compares it to what it saw).
    news: AtomicU64,
    /// Pending orders: [`STOP`], [`KILL`], and [`CLOSED`] once the
    /// supervisor's end is gone.
    orders: AtomicU8,
    /// The highest ping sent.
    ping: AtomicU64,
    /// The child's control item, to wake when an order arrives.
    waker: AtomicWaker,
    state: Mutex<PulseState>,
}

const STOP: u8 = 1;
const KILL: u8 = 2;
const CLOSED: u8 = 4;

/// The supervisor's end of an incarnation's control line. Dropping it tells
/// the child its supervisor is gone (an orphan then stops itself).
#[derive(Debug)]
pub(crate) struct ControlSender(Arc<Pulse>);

impl ControlSender {
    /// Gives the child an order; it applies it from inside its own context.
    pub(crate) fn send(&self, order: Control) {
        match order {
            Control::Stop => {
                self.0.orders.fetch_or(STOP, Ordering::AcqRel);
            }
            Control::Kill => {
                self.0.orders.fetch_or(KILL, Ordering::AcqRel);
            }
            Control::Ping(seq) => {
                self.0.ping.fetch_max(seq, Ordering::AcqRel);
            }
        }
        self.0.waker.wake();
    }
}

impl Drop for ControlSender {
    fn drop(&mut self) {
        self.0.orders.fetch_or(CLOSED, Ordering::AcqRel);
        self.0.waker.wake();
    }
}

/// What the child leaves for its supervisor, and its exit note. The rare
/// or large parts are boxed: there is one per incarnation.
#[derive(Debug, Default)]
struct PulseState {
    last_beat: Option<Instant>,
    /// The highest ping answered, and when.
    pong: Option<(u64, Instant)>,
    /// The unit of work in progress, if any.
    work: WorkSlot,
    /// `work` changed since the supervisor last looked.
    work_changed: bool,
    /// `None` until the child sets one (the default metrics).
    metrics: Option<Box<Metrics>>,
    note: ExitNote,
}

/// The unit of work in progress. Its record is boxed (most children never
/// report work) and kept once made: a worker that begins a unit of work per
/// task allocates it once, not per task.
#[derive(Debug, Default)]
struct WorkSlot {
    record: Option<Box<Work>>,
    /// Whether `record` is work in progress (else it is a finished one).
    active: bool,
}

impl WorkSlot {
    fn current(&self) -> Option<&Work> {
        self.record.as_deref().filter(|_| self.active)
    }

    fn begin(&mut self, label: &str, now: Instant) {
        match &mut self.record {
            Some(work) => {
                // The label's buffer is kept: beginning work allocates once.
                work.label.clear();
                work.label.push_str(label);
                work.started = now;
                work.progress = now;
            }
            None => {
                self.record = Some(Box::new(Work {
                    label: label.to_owned(),
                    started: now,
                    progress: now,
                }));
            }
        }
        self.active = true;
    }

    fn progress(&mut self, now: Instant) {
        if let Some(work) = self.record.as_deref_mut().filter(|_| self.active) {
            work.progress = now;
        }
    }

    fn end(&mut self) {
        self.active = false;
    }
}

impl PulseState {
    fn metrics(&mut self) -> &mut Metrics {
        self.metrics.get_or_insert_with(Box::default)
    }
}

/// A unit of work in progress: its label, start and last progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Work {
    pub(crate) label: String,
    pub(crate) started: Instant,
    pub(crate) progress: Instant,
}

/// What a child left in its [`Pulse`] since the supervisor last looked.
#[derive(Debug, Default)]
pub(crate) struct PulseNews {
    /// The latest heartbeat: when, and the metrics then.
    pub(crate) beat: Option<(Instant, Metrics)>,
    /// The highest ping answered, and when.
    pub(crate) pong: Option<(u64, Instant)>,
    /// The work state, if it changed: `Some(None)` means no work now.
    pub(crate) work: Option<Option<Work>>,
}

impl Pulse {
    fn lock(&self) -> MutexGuard<'_, PulseState> {
        // A poisoned lock only means some thread panicked while holding it;
        // the data is still a plain record.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn beat(&self, at: Instant) {
        self.lock().last_beat = Some(at);
        self.news.fetch_add(1, Ordering::Release);
    }

    fn update_work(&self, change: impl FnOnce(&mut WorkSlot)) {
        let mut state = self.lock();
        change(&mut state.work);
        state.work_changed = true;
        drop(state);
        self.news.fetch_add(1, Ordering::Release);
    }

    fn pong(&self, seq: u64, at: Instant) {
        let mut state = self.lock();
        if state.pong.is_none_or(|(s, _)| s < seq) {
            state.pong = Some((seq, at));
        }
        drop(state);
        self.news.fetch_add(1, Ordering::Release);
    }

    /// What came since the supervisor had seen `seen` pieces of news (none
    /// if nothing did); updates `seen`. Taken heartbeats and pongs are not
    /// reported twice.
    pub(crate) fn collect(&self, seen: &mut u64) -> Option<PulseNews> {
        let news = self.news.load(Ordering::Acquire);
        if news == *seen {
            return None;
        }
        *seen = news;
        let mut state = self.lock();
        let beat = state.last_beat.take().map(|at| {
            let metrics = state.metrics.as_deref().cloned().unwrap_or_default();
            (at, metrics)
        });
        let work = std::mem::take(&mut state.work_changed).then(|| state.work.current().cloned());
        Some(PulseNews {
            beat,
            pong: state.pong.take(),
            work,
        })
    }
}

/// Identity of one incarnation of one child, as seen by its supervisor, and
/// where it reports: a handle on the incarnation's shared record, one
/// pointer wide.
#[derive(Debug, Clone)]
pub(crate) struct Incarnation(Arc<Pulse>);

impl Incarnation {
    /// A new incarnation `number` of child `key` (`id`) under `parent`.
    pub(crate) fn new(parent: Arc<dyn Parent>, key: u64, id: Arc<str>, number: u64) -> Self {
        Self(Arc::new(Pulse {
            parent,
            key,
            id,
            number,
            news: AtomicU64::new(0),
            orders: AtomicU8::new(0),
            ping: AtomicU64::new(0),
            waker: AtomicWaker::new(),
            state: Mutex::default(),
        }))
    }

    /// The incarnation's shared record, for its supervisor to collect.
    pub(crate) fn pulse(&self) -> &Arc<Pulse> {
        &self.0
    }
}

/// A supervised child's link to its supervisor, handed to the child's factory.
///
/// Keep it in the actor if the actor may need to fail with a reason without
/// panicking. Cheap to clone; `Send`.
///
/// ```
/// use actix::{Actor, Context};
/// use candado::{ChildLink, ChildSpec};
///
/// struct Fetcher {
///     link: ChildLink,
/// }
/// impl Actor for Fetcher {
///     type Context = Context<Self>;
///     fn started(&mut self, ctx: &mut Context<Self>) {
///         if std::env::var("FETCH_URL").is_err() {
///             // An abnormal exit: restarted even if the child is transient.
///             self.link.fail(ctx, "FETCH_URL is not set");
///         }
///     }
/// }
/// let spec = ChildSpec::worker("fetcher", |link| Fetcher { link });
/// assert_eq!(spec.id(), "fetcher");
/// ```
#[derive(Debug, Clone)]
pub struct ChildLink {
    incarnation: Incarnation,
}

impl ChildLink {
    /// The child's id within its supervisor.
    pub fn id(&self) -> &str {
        &self.incarnation.0.id
    }

    /// Which incarnation this is: 1 for the first start, +1 per restart.
    pub fn incarnation(&self) -> u64 {
        self.incarnation.0.number
    }

    /// Stops the child normally ([`ExitReason::Normal`], OTP's `normal`):
    /// a permanent child is restarted, a transient or temporary one is not.
    /// The same as `ctx.stop()`, said explicitly.
    ///
    /// ```
    /// use actix::{Actor, Context};
    /// use candado::{ChildLink, ChildSpec, Restart};
    ///
    /// /// Runs once, then is done for good.
    /// struct Migration {
    ///     link: ChildLink,
    /// }
    /// impl Actor for Migration {
    ///     type Context = Context<Self>;
    ///     fn started(&mut self, ctx: &mut Context<Self>) {
    ///         // ... migrate ...
    ///         self.link.stop(ctx);
    ///     }
    /// }
    /// let spec = ChildSpec::worker("migrate", |link| Migration { link }).restart(Restart::Transient);
    /// # assert_eq!(spec.id(), "migrate");
    /// ```
    pub fn stop<C: ActorContext>(&self, ctx: &mut C) {
        self.set_reason(ExitReason::Normal);
        ctx.stop();
    }

    /// Stops the child with [`ExitReason::Shutdown`] (OTP's `shutdown`): a
    /// normal exit, so only a permanent child is restarted.
    pub fn shutdown<C: ActorContext>(&self, ctx: &mut C) {
        self.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }

    /// Stops the child with [`ExitReason::ShutdownWith`] (OTP's
    /// `{shutdown, Term}`): a normal exit that says why, so only a permanent
    /// child is restarted.
    pub fn shutdown_with<C: ActorContext>(&self, ctx: &mut C, detail: impl Into<String>) {
        self.set_reason(ExitReason::ShutdownWith(detail.into()));
        ctx.stop();
    }

    /// Stops the child with an abnormal [`ExitReason::Failed`], a reason of
    /// its own (OTP's `exit(Reason)`): restarted unless it is temporary.
    pub fn fail<C: ActorContext>(&self, ctx: &mut C, reason: impl Into<String>) {
        self.set_reason(ExitReason::Failed(reason.into()));
        ctx.stop();
    }

    /// Stops the child with the given exit reason, for a child that knows
    /// better than `fail` why it ends: e.g. a child that owns an OS process
    /// reports that process's exit (a panic, a signal, a memory brake) as
    /// its own. The reason decides the restart like any other
    /// ([`Restart`](crate::Restart)).
    ///
    /// ```
    /// use actix::{Actor, Context};
    /// use candado::{ChildLink, ExitReason};
    ///
    /// struct Wrapper {
    ///     link: ChildLink,
    /// }
    /// impl Actor for Wrapper {
    ///     type Context = Context<Self>;
    ///     fn started(&mut self, ctx: &mut Context<Self>) {
    ///         self.link.exit(ctx, ExitReason::Panic("the wrapped process panicked".into()));
    ///     }
    /// }
    /// ```
    pub fn exit<C: ActorContext>(&self, ctx: &mut C, reason: ExitReason) {
        self.set_reason(reason);
        ctx.stop();
    }

    /// Records a heartbeat now, for a child whose spec says its heartbeats
    /// are [external](crate::ChildSpec::external_heartbeats): call it when
    /// whatever the child stands for shows it is alive (a process's own
    /// heartbeat, a connection's keepalive). It carries the metrics set on
    /// this link, like the framework's timer's heartbeats.
    ///
    /// It costs what the timer's does, a clock read and an atomic add, no
    /// message, and may be called from any thread. On a child with the
    /// framework's heartbeats it is one more beat, and harmless.
    pub fn heartbeat(&self) {
        self.incarnation.0.beat(Instant::now());
    }

    /// Sets the memory this child attributes to itself (sent with heartbeats).
    pub fn set_memory(&self, bytes: u64) {
        self.incarnation.0.lock().metrics().memory_bytes = Some(bytes);
    }

    /// Sets the number of work units in progress (sent with heartbeats).
    pub fn set_in_flight(&self, n: u64) {
        self.incarnation.0.lock().metrics().in_flight = n;
    }

    /// Adds `n` finished work units (sent with heartbeats).
    pub fn add_tasks_done(&self, n: u64) {
        let mut state = self.incarnation.0.lock();
        let metrics = state.metrics();
        metrics.tasks_done = metrics.tasks_done.saturating_add(n);
    }

    /// Sets an application counter (sent with heartbeats).
    pub fn set_counter(&self, name: &str, value: u64) {
        self.incarnation
            .0
            .lock()
            .metrics()
            .counters
            .insert(name.to_owned(), value);
    }

    /// A snapshot of the metrics the next heartbeat will carry.
    pub fn metrics(&self) -> Metrics {
        let state = self.incarnation.0.lock();
        state.metrics.as_deref().cloned().unwrap_or_default()
    }

    /// Reports that a long-running unit of work began. Liveness then expects
    /// [`progress`](Self::progress) within its progress timeout.
    ///
    /// Like heartbeats, work reports are left in the incarnation's shared
    /// record (no message each) and collected on the supervisor's tick.
    ///
    /// The label is anything printable (`"probe"`, `format_args!("task
    /// {id}")`): it is written into a buffer the link keeps, so beginning
    /// work, as a pool worker does for every task it takes while idle,
    /// allocates nothing once warm. It is printed before the link's lock is
    /// taken: a `Display` that panics leaves the link as it was.
    pub fn begin_work(&self, label: impl std::fmt::Display) {
        use std::fmt::Write;
        thread_local! {
            static LABEL: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let now = Instant::now();
        let begin = |buffer: &mut String| {
            buffer.clear();
            // Writing into a `String` fails only if `Display` itself does.
            let _ = write!(buffer, "{label}");
            let label = buffer.as_str();
            self.incarnation
                .0
                .update_work(|work| work.begin(label, now));
        };
        // A `Display` that begins work itself finds the buffer taken, and
        // gets a buffer of its own.
        LABEL.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffer) => begin(&mut buffer),
            Err(_) => begin(&mut String::new()),
        });
    }

    /// Reports progress on the current unit of work.
    pub fn progress(&self) {
        let now = Instant::now();
        self.incarnation.0.update_work(|work| work.progress(now));
    }

    /// Reports that the current unit of work finished.
    pub fn end_work(&self) {
        self.incarnation.0.update_work(WorkSlot::end);
    }

    /// Reports a task outcome, optionally through a named dependency (feeds
    /// circuit breakers).
    pub fn report_outcome(&self, dependency: Option<&str>, success: bool) {
        self.signal(Signal::Outcome {
            dependency: dependency.map(str::to_owned),
            success,
        });
    }

    fn signal(&self, signal: Signal) {
        self.incarnation.signal(signal);
    }

    /// Whether its supervisor killed it (or died, leaving it an orphan).
    pub(crate) fn kill_requested(&self) -> bool {
        self.incarnation.0.lock().note.killed
    }

    /// Records the exit reason the guard will report (used by supervisors to escalate).
    pub(crate) fn set_reason(&self, reason: ExitReason) {
        self.incarnation.0.lock().note.reason = Some(Box::new(reason));
    }
}

impl Incarnation {
    /// Sends a signal that must not wait for the supervisor's tick.
    pub(crate) fn signal(&self, signal: Signal) {
        let pulse = &self.0;
        pulse.parent.signal(ChildSignal {
            key: pulse.key,
            incarnation: pulse.number,
            signal,
        });
    }

    /// Tells the supervisor whether this incarnation started.
    pub(crate) fn report_start(&self, result: Result<Option<Box<dyn ErasedAddr>>, String>) {
        self.0.parent.started(self.start_report(result));
    }

    /// The report that this incarnation started (or why not), to send later.
    pub(crate) fn start_report(
        &self,
        result: Result<Option<Box<dyn ErasedAddr>>, String>,
    ) -> ChildStarted {
        ChildStarted {
            key: self.0.key,
            incarnation: self.0.number,
            result,
        }
    }

    /// Where this incarnation reports.
    pub(crate) fn parent(&self) -> &Arc<dyn Parent> {
        &self.0.parent
    }
}

/// Creates the link for an incarnation, the control channel and the item
/// that must be spawned into the child's context. With `heartbeat`, the item
/// sends a heartbeat on that interval from inside the child's context.
pub(crate) fn wire(
    incarnation: Incarnation,
    heartbeat: Option<Duration>,
) -> (ChildLink, ControlSender, Wiring) {
    let link = ChildLink {
        incarnation: incarnation.clone(),
    };
    let control = ControlSender(incarnation.0.clone());
    let guard = ExitGuard { incarnation };
    let wiring = Wiring {
        guard,
        heartbeat,
        kill_stops: false,
    };
    (link, control, wiring)
}

/// Where a worker's task records the panic that crashed it, for the exit
/// guard to report.
#[derive(Debug)]
pub(crate) struct CrashNote(Arc<Pulse>);

impl CrashNote {
    /// Records the crash; the exit guard reports it as `Panic(message)`.
    pub(crate) fn record(&self, message: String) {
        self.0.lock().note.crashed = Some(message);
    }
}

/// The parts that must travel to the child's thread.
#[derive(Debug)]
pub(crate) struct Wiring {
    guard: ExitGuard,
    heartbeat: Option<Duration>,
    /// A kill stops the actor instead of terminating it: a supervisor's
    /// `stopping()` turns it into the kill of its whole subtree.
    kill_stops: bool,
}

impl Wiring {
    /// Wires a supervisor: killed (or orphaned), it is stopped, not
    /// terminated, so it can kill its children before it exits.
    pub(crate) fn for_supervisor(mut self) -> Self {
        self.kill_stops = true;
        self
    }

    /// The incarnation's crash record, for the task that runs the actor.
    pub(crate) fn crash_note(&self) -> CrashNote {
        CrashNote(self.guard.incarnation.0.clone())
    }

    /// Spawns the control item into a freshly created actor's context.
    pub(crate) fn attach<A>(self, ctx: &mut Context<A>)
    where
        A: Actor<Context = Context<A>>,
    {
        // The first heartbeat goes one interval after the start (the start
        // itself is acknowledged separately).
        let heartbeat = self.heartbeat.map(|period| {
            let period = crate::clock::period(period);
            let first = crate::clock::after(tokio::time::Instant::now(), period);
            let mut interval = tokio::time::interval_at(first, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        ctx.spawn(ControlItem {
            pinged: 0,
            guard: self.guard,
            heartbeat,
            closed: false,
            kill_stops: self.kill_stops,
        });
    }
}

/// Reports the exit of an incarnation when dropped.
#[derive(Debug)]
struct ExitGuard {
    incarnation: Incarnation,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let pulse = &self.incarnation.0;
        let mut state = pulse.lock();
        let note = &mut state.note;
        let reason = if let Some(message) = note.crashed.take() {
            // The crash itself, not a later panic of the actor's drop.
            let _ = panic_capture::take();
            ExitReason::Panic(message)
        } else if std::thread::panicking() {
            ExitReason::Panic(panic_capture::take().unwrap_or_else(|| "panic".to_owned()))
        } else {
            match note.reason.take() {
                Some(reason) => *reason,
                None if note.killed => ExitReason::Killed,
                None if note.stop_requested => ExitReason::Shutdown,
                None => ExitReason::Normal,
            }
        };
        drop(state);
        // A report never panics, even if the supervisor is gone: this runs
        // during unwinding, where a second panic would abort the process.
        pulse.parent.exited(ChildExited {
            key: pulse.key,
            incarnation: pulse.number,
            reason,
        });
    }
}

/// Applies supervisor orders inside the child's context and holds the guard.
#[derive(Debug)]
struct ControlItem {
    /// The highest ping answered.
    pinged: u64,
    guard: ExitGuard,
    /// Runs inside the child's context: a starved context sends no heartbeat.
    heartbeat: Option<Interval>,
    /// The supervisor is gone; the actor was already killed.
    closed: bool,
    /// See [`Wiring::for_supervisor`].
    kill_stops: bool,
}

impl<A> ActorFuture<A> for ControlItem
where
    A: Actor<Context = Context<A>>,
{
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        _actor: &mut A,
        ctx: &mut Context<A>,
        task: &mut task::Context<'_>,
    ) -> Poll<()> {
        let this = self.get_mut();
        if !this.closed {
            let line = &this.guard.incarnation.0;
            // Register first, so an order sent after the checks still wakes us.
            line.waker.register(task.waker());
            let orders = line.orders.fetch_and(CLOSED, Ordering::AcqRel);
            if orders & STOP != 0 {
                line.lock().note.stop_requested = true;
                ctx.stop();
            }
            // An orphan dies with its supervisor, as in OTP: killed, since a
            // stop it could refuse, and the kill deadline that would follow
            // it lived in the supervisor that is gone.
            let orphaned = orders & CLOSED != 0;
            if orders & KILL != 0 || orphaned {
                this.closed = orphaned;
                line.lock().note.killed = true;
                if this.kill_stops {
                    ctx.stop();
                } else {
                    ctx.terminate();
                }
            }
            let ping = line.ping.load(Ordering::Acquire);
            if ping > this.pinged {
                this.pinged = ping;
                line.pong(ping, Instant::now());
            }
        }
        if let Some(heartbeat) = &mut this.heartbeat {
            while heartbeat.poll_tick(task).is_ready() {
                this.guard.incarnation.0.beat(Instant::now());
            }
        }
        // Never completes: the guard must live exactly as long as the actor.
        Poll::Pending
    }
}
