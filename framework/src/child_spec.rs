//! How to build, restart and stop one child.

use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context};
use serde::{Deserialize, Serialize};

use crate::link::{ChildLink, Wiring};
use crate::panic_capture;
use crate::parent::ErasedAddr;
use crate::SupervisorSpec;

/// When a child is restarted after it exits (OTP restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always restarted, whatever the exit reason.
    Permanent,
    /// Restarted only after an abnormal exit ([`ExitReason::is_abnormal`](crate::ExitReason::is_abnormal)).
    Transient,
    /// Never restarted, and removed from its supervisor once it exits
    /// (even when a sibling's failure stopped it under one-for-all or rest-for-one).
    Temporary,
}

/// How long a child gets to stop before it is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownPolicy {
    /// Ask the child to stop, wait at most this long, then kill it. Zero kills at once.
    Timeout(Duration),
    /// Wait as long as it takes. The default for child supervisors, whose
    /// shutdown is itself bounded by their children's timeouts.
    Infinity,
}

/// Kind of child, as reported by introspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    /// A user actor, run on a worker thread.
    Worker,
    /// A nested supervisor, run on the control thread.
    Supervisor,
}

/// Default shutdown timeout of a worker: 5 s, as in OTP.
pub const DEFAULT_WORKER_SHUTDOWN: Duration = Duration::from_secs(5);

/// Specification of one child: its id, how to build it, when to restart it and
/// how long it may take to stop.
///
/// ```
/// use std::time::Duration;
/// use actix::{Actor, Context};
/// use candado::{ChildSpec, Restart, ShutdownPolicy};
///
/// #[derive(Default)]
/// struct Cache;
/// impl Actor for Cache {
///     type Context = Context<Self>;
/// }
///
/// let spec = ChildSpec::worker("cache", |_link| Cache::default())
///     .restart(Restart::Transient)
///     .shutdown(ShutdownPolicy::Timeout(Duration::from_secs(1)));
/// assert_eq!(spec.id(), "cache");
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: Arc<str>,
    pub(crate) restart: Restart,
    pub(crate) shutdown: ShutdownPolicy,
    /// Heartbeats come from [`ChildLink::heartbeat`], not from the
    /// framework's timer inside the child's context.
    pub(crate) external_heartbeats: bool,
    /// Its exit for good may shut its supervisor down (OTP's significant
    /// child; see [`AutoShutdown`](crate::AutoShutdown)).
    pub(crate) significant: bool,
    pub(crate) body: ChildBody,
}

/// What a fallible factory ([`ChildSpec::try_worker`]) decided for one start.
///
/// The OTP start results: `{ok, Pid}`, `ignore`, `{error, Reason}`. A
/// `Result` converts into it (`Ok` runs, `Err` fails with the error's text).
///
/// ```
/// use candado::StartResult;
/// # struct Conn;
/// let failed: StartResult<Conn> = Err::<Conn, _>("connection refused").into();
/// assert!(matches!(failed, StartResult::Fail(reason) if reason == "connection refused"));
/// ```
#[derive(Debug)]
pub enum StartResult<A> {
    /// Run this actor.
    Run(A),
    /// Do not run now (OTP's `ignore`): the child is not running, its spec
    /// is kept (a temporary child's is dropped), and its supervisor goes on.
    /// [`ChildInfo::ignored`](crate::ChildInfo::ignored) shows it;
    /// [`SupervisorRef::restart_child`](crate::SupervisorRef::restart_child)
    /// tries again.
    Ignore,
    /// The start failed with this reason (OTP's `{error, Reason}`): an
    /// [`ExitReason::StartFailed`](crate::ExitReason::StartFailed), logged
    /// as such, with no panic and no backtrace.
    Fail(String),
}

impl<A, E: fmt::Display> From<Result<A, E>> for StartResult<A> {
    fn from(result: Result<A, E>) -> Self {
        match result {
            Ok(actor) => StartResult::Run(actor),
            Err(e) => StartResult::Fail(e.to_string()),
        }
    }
}

#[derive(Clone)]
pub(crate) enum ChildBody {
    Worker(Arc<dyn WorkerFactory>),
    Supervisor(Box<SupervisorSpec>),
}

impl ChildSpec {
    /// A worker child built by `factory`, which is called on the child's worker
    /// thread for every start and restart. Permanent, 5 s shutdown timeout.
    pub fn worker<A, F>(id: impl Into<String>, factory: F) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: Fn(ChildLink) -> A + Send + Sync + 'static,
    {
        Self::try_worker(id, move |link| StartResult::Run(factory(link)))
    }

    /// A worker whose factory may decline to start or fail without a panic
    /// (OTP's `ignore` and `{error, Reason}`), called like
    /// [`worker`](Self::worker)'s on the child's worker thread for every
    /// start and restart. Permanent, 5 s shutdown timeout.
    ///
    /// A failed start is an [`ExitReason::StartFailed`](crate::ExitReason::StartFailed)
    /// with the factory's reason. During the supervisor's first start it
    /// fails that start (the children already up are stopped and
    /// [`Runtime::start`](crate::Runtime::start) returns
    /// [`SupervisorError::StartFailed`](crate::SupervisorError::StartFailed),
    /// as OTP's `start_link` returns the error); in
    /// [`add_child`](crate::SupervisorRef::add_child) and
    /// [`restart_child`](crate::SupervisorRef::restart_child) the call
    /// returns that error; on a restart after a failure it is one more
    /// failure: it counts toward the intensity and is retried after the
    /// child's backoff delay.
    ///
    /// ```
    /// use actix::{Actor, Context};
    /// use candado::{ChildSpec, StartResult};
    ///
    /// struct Reader;
    /// impl Actor for Reader {
    ///     type Context = Context<Self>;
    /// }
    ///
    /// let spec = ChildSpec::try_worker("reader", |_link| match std::env::var("READ_FROM") {
    ///     Ok(_) => StartResult::Run(Reader),
    ///     // Nothing to read: not an error, just nothing to run.
    ///     Err(_) => StartResult::Ignore,
    /// });
    /// assert_eq!(spec.id(), "reader");
    /// ```
    pub fn try_worker<A, F>(id: impl Into<String>, factory: F) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: Fn(ChildLink) -> StartResult<A> + Send + Sync + 'static,
    {
        Self {
            id: id.into().into(),
            restart: Restart::Permanent,
            shutdown: ShutdownPolicy::Timeout(DEFAULT_WORKER_SHUTDOWN),
            external_heartbeats: false,
            significant: false,
            body: ChildBody::Worker(Arc::new(FnFactory {
                factory,
                _actor: PhantomData,
            })),
        }
    }

    /// A nested supervisor: the child's id is the supervisor's id. Permanent,
    /// infinite shutdown timeout.
    pub fn supervisor(spec: SupervisorSpec) -> Self {
        Self {
            id: spec.id.clone(),
            restart: Restart::Permanent,
            shutdown: ShutdownPolicy::Infinity,
            external_heartbeats: false,
            significant: false,
            body: ChildBody::Supervisor(Box::new(spec)),
        }
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets the shutdown policy.
    pub fn shutdown(mut self, shutdown: ShutdownPolicy) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Marks the child significant (OTP): when it exits for good, not to be
    /// restarted (a transient child's normal exit, any exit of a temporary
    /// one), its supervisor may shut itself down, as its
    /// [`AutoShutdown`](crate::AutoShutdown) says. A permanent child cannot
    /// be significant, and a supervisor whose `auto_shutdown` is
    /// [`Never`](crate::AutoShutdown::Never) takes no significant child:
    /// [`SupervisorSpec::validate`] and
    /// [`add_child`](crate::SupervisorRef::add_child) reject both
    /// ([`SpecError::SignificantPermanent`](crate::SpecError::SignificantPermanent),
    /// [`SpecError::SignificantWithoutAutoShutdown`](crate::SpecError::SignificantWithoutAutoShutdown)).
    ///
    /// ```
    /// use actix::{Actor, Context};
    /// use candado::{AutoShutdown, ChildSpec, Restart, SupervisorSpec};
    ///
    /// struct Job;
    /// impl Actor for Job {
    ///     type Context = Context<Self>;
    /// }
    /// // The supervisor (and the job's helpers) go when the job is done.
    /// let spec = SupervisorSpec::new("job")
    ///     .auto_shutdown(AutoShutdown::AnySignificant)
    ///     .child(ChildSpec::worker("run", |_| Job).restart(Restart::Transient).significant(true));
    /// assert!(spec.validate().is_ok());
    /// ```
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// Whether the child is [significant](Self::significant).
    pub fn is_significant(&self) -> bool {
        self.significant
    }

    /// The shutdown policy.
    pub fn shutdown_policy(&self) -> ShutdownPolicy {
        self.shutdown
    }

    /// Takes this worker's heartbeats from [`ChildLink::heartbeat`] instead
    /// of the framework's timer (off by default).
    ///
    /// For a child that stands for something outside its actor, a process or
    /// a connection, whose own liveness is what counts. The framework's timer
    /// runs inside the actor's context, so it shows that the *actor* is alive:
    /// a proxy for a frozen process (SIGSTOP) would keep beating. With
    /// external heartbeats the child beats when the thing it stands for
    /// shows a sign of life, and [`Liveness`](crate::Liveness) restarts it
    /// as [`Silent`](crate::LivenessCause::Silent) after a heartbeat timeout
    /// without one (a handler that beats but makes no progress is still
    /// [`Stuck`](crate::LivenessCause::Stuck)). Beat at least every
    /// `heartbeat_interval` of the supervisor's strategies, or the child
    /// shows as degraded (late) before it is silent. The metrics set on the
    /// link travel with these heartbeats. Everything else is unchanged:
    /// pings are answered from the actor's context, and stop and kill
    /// orders reach it there.
    ///
    /// Only workers: a child supervisor's link is its own, so
    /// [`SupervisorSpec::validate`] rejects it
    /// ([`SpecError::ExternalHeartbeatsOnSupervisor`](crate::SpecError::ExternalHeartbeatsOnSupervisor)).
    ///
    /// ```
    /// use actix::{Actor, Context};
    /// use candado::{ChildLink, ChildSpec, Liveness, LivenessConfig, SupervisorSpec};
    ///
    /// /// Stands for a remote peer: alive while the peer's keepalives arrive.
    /// struct Peer {
    ///     link: ChildLink,
    /// }
    /// impl Actor for Peer {
    ///     type Context = Context<Self>;
    ///     fn started(&mut self, _: &mut Context<Self>) {
    ///         let link = self.link.clone();
    ///         // A thread that reads the peer's keepalives.
    ///         std::thread::spawn(move || {
    ///             for _keepalive in keepalives() {
    ///                 link.heartbeat();
    ///             }
    ///         });
    ///     }
    /// }
    /// # fn keepalives() -> impl Iterator<Item = ()> { std::iter::empty() }
    ///
    /// let peer = ChildSpec::worker("peer", |link| Peer { link }).external_heartbeats();
    /// assert!(peer.has_external_heartbeats());
    /// let spec = SupervisorSpec::new("peers")
    ///     .health(Liveness::new(LivenessConfig::default()).unwrap())
    ///     .child(peer);
    /// assert!(spec.validate().is_ok());
    /// ```
    pub fn external_heartbeats(mut self) -> Self {
        self.external_heartbeats = true;
        self
    }

    /// Whether its heartbeats come from [`ChildLink::heartbeat`].
    pub fn has_external_heartbeats(&self) -> bool {
        self.external_heartbeats
    }

    /// The child's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Worker or supervisor.
    pub fn kind(&self) -> ChildKind {
        match self.body {
            ChildBody::Worker(_) => ChildKind::Worker,
            ChildBody::Supervisor(_) => ChildKind::Supervisor,
        }
    }

    /// The restart type.
    pub fn restart_type(&self) -> Restart {
        self.restart
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("ChildSpec");
        s.field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("external_heartbeats", &self.external_heartbeats)
            .field("significant", &self.significant);
        match &self.body {
            ChildBody::Worker(factory) => s.field("worker", &factory.actor_type()),
            ChildBody::Supervisor(spec) => s.field("supervisor", spec),
        };
        s.finish()
    }
}

/// What a worker's start left: its result for the acknowledgement, and its
/// wiring when no actor took it (dropped only after the acknowledgement, so
/// its exit report finds the child already down and is ignored).
pub(crate) type Outcome = (Result<Option<Box<dyn ErasedAddr>>, String>, Option<Wiring>);

/// Builds worker incarnations on a worker thread.
pub(crate) trait WorkerFactory: Send + Sync + 'static {
    /// Builds and starts one incarnation on the current (worker) thread.
    /// The caller acknowledges it ([`crate::start_batch`]).
    fn start(&self, link: ChildLink, wiring: Wiring) -> Outcome;
    /// Name of the actor type, for errors and debugging.
    fn actor_type(&self) -> &'static str;
}

struct FnFactory<F, A> {
    factory: F,
    _actor: PhantomData<fn() -> A>,
}

impl<F, A> WorkerFactory for FnFactory<F, A>
where
    A: Actor<Context = Context<A>>,
    F: Fn(ChildLink) -> StartResult<A> + Send + Sync + 'static,
{
    fn start(&self, link: ChildLink, wiring: Wiring) -> Outcome {
        // User code: the factory may panic; that is a failed start, not a
        // lost thread.
        match catch_unwind(AssertUnwindSafe(|| (self.factory)(link))) {
            Ok(StartResult::Run(actor)) => {
                let addr: Addr<A> = crate::task::spawn(actor, wiring);
                (Ok(Some(Box::new(addr) as Box<dyn ErasedAddr>)), None)
            }
            Ok(StartResult::Ignore) => (Ok(None), Some(wiring)),
            Ok(StartResult::Fail(reason)) => (Err(reason), Some(wiring)),
            Err(payload) => {
                // The hook recorded it too; drop that copy.
                let _ = panic_capture::take();
                let message = panic_capture::payload_message(&*payload);
                // Its drop may panic too: that must not lose the ack.
                panic_capture::drop_quietly(payload);
                (Err(format!("factory panicked: {message}")), Some(wiring))
            }
        }
    }

    fn actor_type(&self) -> &'static str {
        std::any::type_name::<A>()
    }
}
