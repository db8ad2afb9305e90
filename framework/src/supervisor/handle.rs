//! The public handle to a running supervisor.

use std::sync::Arc;

use actix::{Actor, Addr};
use tokio::sync::{oneshot, watch};

use super::messages::Request;
use super::Supervisor;
use crate::info::{ChildInfo, SupervisorInfo};
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

    /// Adds and starts a child after the existing ones; returns once it is up.
    pub async fn add_child(&self, spec: ChildSpec) -> Result<(), SupervisorError> {
        self.ask(|tx| Request::Add(spec, tx)).await?
    }

    /// Stops a child (within its shutdown timeout) and forgets it.
    pub async fn remove_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.ask(|tx| Request::Remove(id.to_owned(), tx)).await?
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
