//! The template of a dynamic supervisor's children, and its knobs.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context};

use super::handle::{DynamicSupervisor, Place};
use super::slots::Slots;
use super::DynamicError;
use crate::{
    BackoffConfig, ChildLink, ChildSpec, HealthStrategy, Restart, Runtime, ShutdownPolicy,
    SpecError, StartResult, Strategy, SupervisorRef, SupervisorSpec, DEFAULT_WORKER_SHUTDOWN,
};

/// Builds a child from its link and the arguments it was started with.
pub(super) type Factory<A, Args> = Arc<dyn Fn(ChildLink, Args) -> StartResult<A> + Send + Sync>;

/// What a dynamic supervisor's children share: the factory, the restart type
/// and shutdown policy, and the bound on their number.
pub(super) struct Template<A, Args> {
    pub(super) id: Arc<str>,
    pub(super) factory: Factory<A, Args>,
    pub(super) restart: Restart,
    pub(super) shutdown: ShutdownPolicy,
    pub(super) slots: Arc<Slots>,
    /// The next child's id; ids are never reused, so a late report about a
    /// terminated child cannot be taken for a newer one.
    pub(super) next: AtomicU64,
}

/// Specification of a dynamic supervisor: one template for every child
/// (built by `factory` from the arguments given to
/// [`start_child`](DynamicSupervisor::start_child), on every start and
/// restart), `max_children`, and the supervisor's restart intensity, backoff
/// and health strategies. Its strategy is always one-for-one.
///
/// Start it as a root with [`start`](Self::start), or put
/// [`child_spec`](Self::child_spec) into a tree and [`attach`](Self::attach)
/// to it once the tree runs; there it is a child supervisor like any other
/// (shutdown order, escalation to its parent). Its children are not
/// restarted when the dynamic supervisor itself is: they are gone with it,
/// as in OTP.
///
/// ```
/// use actix::{Actor, Context};
/// use candado::{DynamicSpec, Restart, Runtime, SupervisorSpec};
///
/// struct Session {
///     user: String,
/// }
/// impl Actor for Session {
///     type Context = Context<Self>;
/// }
///
/// actix::System::new().block_on(async {
///     let runtime = Runtime::builder().worker_threads(1).build().unwrap();
///     let sessions = DynamicSpec::new("sessions", |_link, user: String| Session { user })
///         .restart(Restart::Transient)
///         .max_children(10_000);
///     let tree = SupervisorSpec::new("root").child(sessions.child_spec());
///     let root = runtime.start(tree).await.unwrap();
///     let sessions = sessions.attach(&root);
///     let alice = sessions.start_child("alice".to_owned()).await.unwrap();
///     assert!(alice.addr().is_some());
///     assert_eq!(sessions.count_children(), 1);
///     sessions.terminate_child(alice.id()).await.unwrap();
///     assert_eq!(sessions.count_children(), 0);
///     runtime.shutdown().await;
/// });
/// ```
pub struct DynamicSpec<A, Args> {
    supervisor: SupervisorSpec,
    factory: Factory<A, Args>,
    restart: Restart,
    shutdown: ShutdownPolicy,
    slots: Arc<Slots>,
}

impl<A, Args> DynamicSpec<A, Args>
where
    A: Actor<Context = Context<A>>,
    Args: Clone + Send + Sync + 'static,
{
    /// A dynamic supervisor `id` whose children `factory` builds, on the
    /// child's worker thread, from its link and its arguments (cloned for
    /// every restart). Children are permanent with a 5 s shutdown timeout;
    /// there is no bound on their number.
    pub fn new<F>(id: impl Into<String>, factory: F) -> Self
    where
        F: Fn(ChildLink, Args) -> A + Send + Sync + 'static,
    {
        Self::try_new(id, move |link, args| StartResult::Run(factory(link, args)))
    }

    /// Like [`new`](Self::new), with a factory that may fail or decline
    /// (anything that converts into a [`StartResult`], such as a
    /// `Result<A, E: Display>`). A failed start is
    /// [`SupervisorError::StartFailed`](crate::SupervisorError::StartFailed)
    /// with its reason (no panic, no backtrace), and frees its slot; a
    /// declined one ([`StartResult::Ignore`]) adds nothing, as OTP's
    /// `ignore` in a `simple_one_for_one` supervisor: `start_child` returns
    /// a child with no address, and the slot is free again. At a restart,
    /// a failure counts toward the intensity and a declined start forgets
    /// the child.
    ///
    /// ```
    /// use actix::{Actor, Context};
    /// use candado::{DynamicSpec, DynamicError, Runtime, SupervisorError};
    ///
    /// struct Session;
    /// impl Actor for Session {
    ///     type Context = Context<Self>;
    /// }
    ///
    /// actix::System::new().block_on(async {
    ///     let runtime = Runtime::builder().worker_threads(1).build().unwrap();
    ///     let spec = DynamicSpec::try_new("sessions", |_link, user: String| {
    ///         if user.is_empty() { Err("no user name") } else { Ok(Session) }
    ///     });
    ///     let sessions = spec.start(&runtime).await.unwrap();
    ///     assert!(sessions.start_child("ada".into()).await.unwrap().addr().is_some());
    ///     let refused = sessions.start_child(String::new()).await.unwrap_err();
    ///     assert!(matches!(
    ///         refused,
    ///         DynamicError::Supervisor(SupervisorError::StartFailed { .. })
    ///     ));
    ///     assert_eq!(sessions.count_children(), 1);
    ///     runtime.shutdown().await;
    /// });
    /// ```
    pub fn try_new<F, R>(id: impl Into<String>, factory: F) -> Self
    where
        F: Fn(ChildLink, Args) -> R + Send + Sync + 'static,
        R: Into<StartResult<A>>,
    {
        let mut supervisor = SupervisorSpec::new(id).strategy(Strategy::OneForOne);
        supervisor.forget_stopped = true;
        Self {
            supervisor,
            factory: Arc::new(move |link, args| factory(link, args).into()),
            restart: Restart::Permanent,
            shutdown: ShutdownPolicy::Timeout(DEFAULT_WORKER_SHUTDOWN),
            slots: Slots::new(usize::MAX),
        }
    }

    /// The restart type of every child (OTP's rules: a temporary child is
    /// never restarted, a transient one only after an abnormal exit). A
    /// child that is not restarted is forgotten and frees its slot.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// How long each child gets to stop before it is killed.
    pub fn shutdown(mut self, shutdown: ShutdownPolicy) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// At most `max` children held at once, running or waiting for a
    /// restart; one more start is [`DynamicError::Full`]. `0` refuses every
    /// start; `usize::MAX` (the default) is no bound.
    pub fn max_children(mut self, max: usize) -> Self {
        self.slots = Slots::new(max);
        self
    }

    /// The restart budget shared by all children: at most `max_restarts`
    /// within `period`, then the supervisor gives up and escalates
    /// ([`SupervisorSpec::intensity`]).
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.supervisor = self.supervisor.intensity(max_restarts, period);
        self
    }

    /// The restart backoff ([`SupervisorSpec::backoff`]).
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.supervisor = self.supervisor.backoff(backoff);
        self
    }

    /// The housekeeping tick ([`SupervisorSpec::tick_interval`]).
    pub fn tick_interval(mut self, tick: Duration) -> Self {
        self.supervisor = self.supervisor.tick_interval(tick);
        self
    }

    /// Adds a health strategy watching every child ([`SupervisorSpec::health`]).
    pub fn health<S: HealthStrategy + Clone>(mut self, strategy: S) -> Self {
        self.supervisor = self.supervisor.health(strategy);
        self
    }

    /// The dynamic supervisor's id.
    pub fn id(&self) -> &str {
        self.supervisor.id()
    }

    /// Checks the supervisor's knobs (id, intensity period, backoff, tick).
    pub fn validate(&self) -> Result<(), SpecError> {
        self.supervisor.validate()
    }

    /// The dynamic supervisor as a child of an ordinary supervisor (started
    /// with no children; permanent, infinite shutdown timeout, as any child
    /// supervisor). Then [`attach`](Self::attach) to the running parent.
    pub fn child_spec(&self) -> ChildSpec {
        ChildSpec::supervisor(self.supervisor.clone())
    }

    /// The handle of this dynamic supervisor running under `parent` (put
    /// there with [`child_spec`](Self::child_spec)). It finds the supervisor
    /// through `parent` again after the parent restarted it.
    pub fn attach(self, parent: &SupervisorRef) -> DynamicSupervisor<A, Args> {
        let place = Place::under(parent.clone(), self.id());
        DynamicSupervisor::new(self.template(), place)
    }

    /// Starts the dynamic supervisor as a root of `runtime`.
    pub async fn start(
        self,
        runtime: &Runtime,
    ) -> Result<DynamicSupervisor<A, Args>, DynamicError> {
        let root = runtime.start(self.supervisor.clone()).await?;
        Ok(DynamicSupervisor::new(self.template(), Place::Root(root)))
    }

    fn template(self) -> Arc<Template<A, Args>> {
        Arc::new(Template {
            id: self.supervisor.id().into(),
            factory: self.factory,
            restart: self.restart,
            shutdown: self.shutdown,
            slots: self.slots,
            next: AtomicU64::new(1),
        })
    }
}

impl<A, Args> fmt::Debug for DynamicSpec<A, Args> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicSpec")
            .field("supervisor", &self.supervisor)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("max_children", &self.slots.max())
            .finish_non_exhaustive()
    }
}
