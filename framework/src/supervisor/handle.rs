//! The public handle to a running supervisor.

use std::sync::Arc;

use actix::{Actor, Addr};
use tokio::sync::{oneshot, watch};

use super::messages::Request;
use super::Supervisor;
use crate::info::{ChildCount, ChildInfo, SupervisorInfo};
use crate::{ChildKind, ChildSpec, ChildStatus, ExitReason, HealthStatus, SupervisorError};

/// A handle to a running supervisor: introspection, dynamic children, lookup
/// of children's addresses, and shutdown. Cheap to clone.
///
/// ```
/// use actix::{Actor, Context};
/// use candado::{ChildSpec, ChildStatus, Runtime, SupervisorSpec};
///
/// struct Worker;
/// impl Actor for Worker {
///     type Context = Context<Self>;
/// }
///
/// actix::System::new().block_on(async {
///     let runtime = Runtime::builder().worker_threads(1).build().unwrap();
///     let root = runtime.start(SupervisorSpec::new("root")).await.unwrap();
///     root.add_child(ChildSpec::worker("w", |_| Worker)).await.unwrap();
///     let children = root.children().await.unwrap();
///     assert_eq!(children[0].status, ChildStatus::Running);
///     root.remove_child("w").await.unwrap();
///     assert!(root.children().await.unwrap().is_empty());
///     runtime.shutdown().await;
/// });
/// ```
#[derive(Debug, Clone)]
pub struct SupervisorRef {
    addr: Addr<Supervisor>,
    path: Arc<str>,
    exit: watch::Receiver<Option<ExitReason>>,
}

impl SupervisorRef {
    pub(super) fn new(
        addr: Addr<Supervisor>,
        path: Arc<str>,
        exit: watch::Receiver<Option<ExitReason>>,
    ) -> Self {
        Self { addr, path, exit }
    }

    /// The supervisor's path, e.g. `root/db`.
    pub fn path(&self) -> &str {
        &self.path
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, SupervisorError> {
        let (tx, rx) = oneshot::channel();
        self.addr.do_send(make(tx));
        rx.await.map_err(|_| self.stopped())
    }

    fn stopped(&self) -> SupervisorError {
        SupervisorError::Stopped(self.path.to_string())
    }

    /// A snapshot of the supervisor and its children.
    pub async fn info(&self) -> Result<SupervisorInfo, SupervisorError> {
        self.ask(Request::Inspect).await
    }

    /// Its children in start order: state, restart count, last exit reason, uptime.
    pub async fn children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        Ok(self.info().await?.children)
    }

    /// The worst health anywhere below this supervisor: its own children's
    /// and, recursively, its child supervisors' (healthy / degraded / critical).
    pub async fn tree_health(&self) -> Result<HealthStatus, SupervisorError> {
        let info = self.info().await?;
        let mut worst = info.health;
        let subtrees = info
            .children
            .iter()
            .filter(|c| c.kind == ChildKind::Supervisor && c.status == ChildStatus::Running);
        for child in subtrees {
            // A subtree that stops meanwhile has nothing left to report.
            if let Ok(sub) = self.supervisor(&child.id).await {
                if let Ok(health) = Box::pin(sub.tree_health()).await {
                    worst = worst.max(health);
                }
            }
        }
        Ok(worst)
    }

    /// Adds and starts a child after the existing ones; returns once it is
    /// up (OTP's `start_child`).
    ///
    /// If its factory declines to start ([`StartResult::Ignore`](crate::StartResult::Ignore))
    /// it returns `Ok` and the child is kept, not running
    /// ([`ChildInfo::ignored`]); a temporary one is dropped. If the start
    /// fails, the spec is dropped and the error returned
    /// ([`SupervisorError::StartFailed`]). An id already taken is
    /// [`SupervisorError::AlreadyStarted`] when that child runs and
    /// [`SupervisorError::AlreadyPresent`] when only its spec is kept.
    pub async fn add_child(&self, spec: ChildSpec) -> Result<(), SupervisorError> {
        self.ask(|tx| Request::Add(spec, false, tx)).await??;
        Ok(())
    }

    /// [`add_child`](Self::add_child), answered with the address of the
    /// child's first incarnation (`None` if it is not running by then): one
    /// request where a lookup would be a second.
    pub(crate) async fn add_child_with_addr(
        &self,
        spec: ChildSpec,
    ) -> Result<Option<Box<dyn std::any::Any + Send>>, SupervisorError> {
        self.ask(|tx| Request::Add(spec, true, tx)).await?
    }

    /// Stops a child (within its shutdown timeout) and forgets it: OTP's
    /// `terminate_child` then `delete_child` in one call.
    pub async fn remove_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.ask(|tx| Request::Remove(id.to_owned(), tx)).await?
    }

    /// Stops a child within its shutdown policy and keeps its spec, as OTP's
    /// `terminate_child`: it shows as [`Stopped`](ChildStatus::Stopped) until
    /// [`restart_child`](Self::restart_child) starts it again or
    /// [`delete_child`](Self::delete_child) forgets it. A temporary child's
    /// spec is dropped. Not a failure: no restart, nothing counted toward
    /// the intensity, and a significant child's termination does not shut
    /// the supervisor down. A child already stopped is `Ok`; a child being
    /// restarted is taken over (its restart does not happen).
    ///
    /// ```
    /// use actix::{Actor, Context};
    /// use candado::{ChildSpec, ChildStatus, Runtime, SupervisorError, SupervisorSpec};
    ///
    /// struct Worker;
    /// impl Actor for Worker {
    ///     type Context = Context<Self>;
    /// }
    ///
    /// actix::System::new().block_on(async {
    ///     let runtime = Runtime::builder().worker_threads(1).build().unwrap();
    ///     let spec = SupervisorSpec::new("root").child(ChildSpec::worker("w", |_| Worker));
    ///     let root = runtime.start(spec).await.unwrap();
    ///     root.terminate_child("w").await.unwrap();
    ///     assert_eq!(root.children().await.unwrap()[0].status, ChildStatus::Stopped);
    ///     assert_eq!(root.count_children().await.unwrap().active, 0);
    ///     root.restart_child("w").await.unwrap();
    ///     assert!(matches!(
    ///         root.delete_child("w").await,
    ///         Err(SupervisorError::Running { .. })
    ///     ));
    ///     root.terminate_child("w").await.unwrap();
    ///     root.delete_child("w").await.unwrap();
    ///     assert_eq!(root.count_children().await.unwrap().specs, 0);
    ///     runtime.shutdown().await;
    /// });
    /// ```
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.ask(|tx| Request::Terminate(id.to_owned(), tx)).await?
    }

    /// Starts a child that is not running again from its kept spec (OTP's
    /// `restart_child`): one terminated, ignored, or stopped for good.
    /// Returns once it is up (or its factory declined again). An order, not
    /// a failure: it counts toward no intensity. Errors:
    /// [`SupervisorError::Running`] (terminate it first),
    /// [`SupervisorError::Restarting`] (a restart is already scheduled),
    /// [`SupervisorError::UnknownChild`], and
    /// [`SupervisorError::StartFailed`] (the child stays stopped).
    pub async fn restart_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.ask(|tx| Request::Restart(id.to_owned(), tx)).await?
    }

    /// Forgets the spec of a child that is not running (OTP's
    /// `delete_child`). Errors: [`SupervisorError::Running`],
    /// [`SupervisorError::Restarting`], [`SupervisorError::UnknownChild`].
    pub async fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.ask(|tx| Request::Delete(id.to_owned(), tx)).await?
    }

    /// How many children it has: specs kept, running, supervisors and
    /// workers (OTP's `count_children`). Cheaper than
    /// [`children`](Self::children) for large supervisors.
    pub async fn count_children(&self) -> Result<ChildCount, SupervisorError> {
        self.ask(Request::Count).await
    }

    async fn lookup_any(&self, id: &str) -> Result<Box<dyn std::any::Any + Send>, SupervisorError> {
        self.ask(|tx| Request::Lookup(id.to_owned(), tx)).await?
    }

    /// The address of the running incarnation of worker `id`. Addresses change
    /// with every restart: look up again after one.
    pub async fn worker<A: Actor>(&self, id: &str) -> Result<Addr<A>, SupervisorError> {
        let any = self.lookup_any(id).await?;
        any.downcast::<Addr<A>>()
            .map(|addr| *addr)
            .map_err(|_| SupervisorError::WrongType {
                id: id.to_owned(),
                expected: std::any::type_name::<A>(),
            })
    }

    /// The handle of child supervisor `id`.
    pub async fn supervisor(&self, id: &str) -> Result<SupervisorRef, SupervisorError> {
        let any = self.lookup_any(id).await?;
        any.downcast::<SupervisorRef>()
            .map(|s| *s)
            .map_err(|_| SupervisorError::WrongType {
                id: id.to_owned(),
                expected: "supervisor",
            })
    }

    /// Whether the supervisor is still running.
    pub fn is_running(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// Waits until the supervisor has stopped and returns why.
    pub async fn join(&self) -> ExitReason {
        let mut exit = self.exit.clone();
        let reason = match exit.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(ExitReason::Killed),
            // The sender lives in the actor: dropped without a value means the
            // actor vanished without running `stopped`.
            Err(_) => ExitReason::Killed,
        };
        reason
    }

    /// Stops every child in reverse start order (each within its shutdown
    /// timeout, then killed), stops the supervisor, and returns when the tree
    /// below it is down.
    pub async fn shutdown(&self) -> ExitReason {
        self.addr.do_send(Request::Shutdown);
        self.join().await
    }
}
