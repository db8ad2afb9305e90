//! A supervision tree, walked from its root.

use candado::{
    ChildKind, ChildStatus, HealthStatus, SupervisorError, SupervisorInfo, SupervisorRef,
};
use serde::{Deserialize, Serialize};

/// A snapshot of a supervisor and, recursively, of its child supervisors
/// (what `/api/tree` serves, one per tree).
///
/// Serialises as the supervisor's [`SupervisorInfo`] with one more field,
/// `subtrees`: `{"path":"app","strategy":"one_for_one",...,"children":[...],"subtrees":[...]}`.
///
/// ```
/// use actix::{Actor, Context};
/// use candado::{ChildSpec, Runtime, SupervisorSpec};
/// use candado_observe::TreeSnapshot;
///
/// struct Worker;
/// impl Actor for Worker {
///     type Context = Context<Self>;
/// }
///
/// actix::System::new().block_on(async {
///     let runtime = Runtime::builder().worker_threads(1).build().unwrap();
///     let spec = SupervisorSpec::new("app")
///         .child(ChildSpec::worker("cache", |_| Worker))
///         .child(ChildSpec::supervisor(
///             SupervisorSpec::new("db").child(ChildSpec::worker("conn", |_| Worker)),
///         ));
///     let root = runtime.start(spec).await.unwrap();
///     let tree = TreeSnapshot::of(&root).await.unwrap();
///     let paths: Vec<_> = tree.supervisors().map(|s| s.path.as_str()).collect();
///     assert_eq!(paths, ["app", "app/db"]);
///     assert_eq!(tree.subtrees[0].supervisor.children[0].id, "conn");
///     runtime.shutdown().await;
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeSnapshot {
    /// The supervisor and its children.
    #[serde(flatten)]
    pub supervisor: SupervisorInfo,
    /// Its running child supervisors' snapshots, in start order.
    pub subtrees: Vec<TreeSnapshot>,
}

impl TreeSnapshot {
    /// Walks the tree below `root`: one round trip to each supervisor. A
    /// child supervisor that stops during the walk is left out.
    pub async fn of(root: &SupervisorRef) -> Result<Self, SupervisorError> {
        let supervisor = root.info().await?;
        let mut subtrees = Vec::new();
        let running = supervisor
            .children
            .iter()
            .filter(|c| c.kind == ChildKind::Supervisor && c.status == ChildStatus::Running);
        for child in running {
            let Ok(sub) = root.supervisor(&child.id).await else {
                continue;
            };
            if let Ok(tree) = Box::pin(Self::of(&sub)).await {
                subtrees.push(tree);
            }
        }
        Ok(Self {
            supervisor,
            subtrees,
        })
    }

    /// Every supervisor of the tree, depth first, the root first.
    pub fn supervisors(&self) -> impl Iterator<Item = &SupervisorInfo> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let tree = stack.pop()?;
            stack.extend(tree.subtrees.iter().rev());
            Some(&tree.supervisor)
        })
    }

    /// The worst health of any child anywhere in the tree.
    pub fn health(&self) -> HealthStatus {
        self.supervisors()
            .map(|s| s.health)
            .max()
            .unwrap_or_default()
    }
}
