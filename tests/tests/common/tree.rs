//! Random supervision trees: generators, builders and navigation.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, Context, Handler, Message};
use candado::{
    BackoffConfig, ChildLink, ChildSpec, Restart, Strategy as RestartStrategy, SupervisorRef,
    SupervisorSpec,
};
use proptest::prelude::*;

/// A node of a generated tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// A worker with its restart type.
    Worker(Restart),
    /// A nested supervisor.
    Sup(Tree),
}

/// A generated supervisor and its children (in start order).
#[derive(Debug, Clone)]
pub struct Tree {
    pub strategy: RestartStrategy,
    pub max_restarts: u32,
    pub period_s: u64,
    pub children: Vec<Node>,
}

pub fn strategy() -> impl Strategy<Value = RestartStrategy> {
    prop_oneof![
        Just(RestartStrategy::OneForOne),
        Just(RestartStrategy::OneForAll),
        Just(RestartStrategy::RestForOne)
    ]
}

pub fn restart() -> impl Strategy<Value = Restart> {
    prop_oneof![
        3 => Just(Restart::Permanent),
        1 => Just(Restart::Transient),
        1 => Just(Restart::Temporary),
    ]
}

/// Trees of depth 1–4 with 1–8 children per supervisor.
pub fn tree() -> impl Strategy<Value = Tree> {
    let leaf = restart().prop_map(Node::Worker);
    let node = leaf.prop_recursive(3, 24, 8, |inner| {
        (
            strategy(),
            0u32..4,
            1u64..60,
            prop::collection::vec(inner, 1..=8),
        )
            .prop_map(|(strategy, max_restarts, period_s, children)| {
                Node::Sup(Tree {
                    strategy,
                    max_restarts,
                    period_s,
                    children,
                })
            })
    });
    (
        strategy(),
        0u32..4,
        1u64..60,
        prop::collection::vec(node, 1..=8),
    )
        .prop_map(|(strategy, max_restarts, period_s, children)| Tree {
            strategy,
            max_restarts,
            period_s,
            children,
        })
}

/// Child ids: `w<i>` for workers, `s<i>` for supervisors (`i` = start position).
pub fn child_id(index: usize, node: &Node) -> String {
    match node {
        Node::Worker(_) => format!("w{index}"),
        Node::Sup(_) => format!("s{index}"),
    }
}

/// A worker that counts itself among the living while its actor exists.
pub struct Probe {
    pub link: ChildLink,
    alive: Arc<AtomicI64>,
}

impl Probe {
    pub fn new(link: ChildLink, alive: Arc<AtomicI64>) -> Self {
        alive.fetch_add(1, Ordering::SeqCst);
        Self { link, alive }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Actor for Probe {
    type Context = Context<Self>;
}

/// How a worker is made to exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Panic,
    Fail,
    Normal,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Die(pub Exit);

impl Handler<Die> for Probe {
    type Result = ();
    fn handle(&mut self, Die(exit): Die, ctx: &mut Context<Self>) {
        match exit {
            Exit::Panic => panic!("injected panic"),
            Exit::Fail => self.link.fail(ctx, "injected failure"),
            Exit::Normal => ctx.stop(),
        }
    }
}

/// Builds the spec of `tree` under `id`; `intensity` overrides every level's budget.
pub fn build(
    tree: &Tree,
    id: &str,
    alive: &Arc<AtomicI64>,
    intensity: Option<u32>,
) -> SupervisorSpec {
    let mut spec = SupervisorSpec::new(id)
        .strategy(tree.strategy)
        .intensity(
            intensity.unwrap_or(tree.max_restarts),
            Duration::from_secs(tree.period_s),
        )
        .backoff(BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        });
    for (i, node) in tree.children.iter().enumerate() {
        let child = child_id(i, node);
        spec = spec.child(match node {
            Node::Worker(restart) => {
                let alive = alive.clone();
                ChildSpec::worker(child, move |link| Probe::new(link, alive.clone()))
                    .restart(*restart)
            }
            Node::Sup(sub) => ChildSpec::supervisor(build(sub, &child, alive, intensity)),
        });
    }
    spec
}

/// Every worker leaf: (path of its supervisor as ids from the root, worker id, restart type).
pub fn workers(tree: &Tree) -> Vec<(Vec<String>, String, Restart)> {
    let mut out = Vec::new();
    fn walk(tree: &Tree, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, String, Restart)>) {
        for (i, node) in tree.children.iter().enumerate() {
            match node {
                Node::Worker(r) => out.push((path.clone(), child_id(i, node), *r)),
                Node::Sup(sub) => {
                    path.push(child_id(i, node));
                    walk(sub, path, out);
                    path.pop();
                }
            }
        }
    }
    walk(tree, &mut Vec::new(), &mut out);
    out
}

/// The subtree at `path` (ids below the root).
pub fn subtree<'a>(tree: &'a Tree, path: &[String]) -> &'a Tree {
    let mut t = tree;
    for id in path {
        let index: usize = id[1..].parse().expect("generated id");
        match &t.children[index] {
            Node::Sup(sub) => t = sub,
            Node::Worker(_) => panic!("path goes through a worker"),
        }
    }
    t
}

/// The running supervisor at `path`.
pub async fn resolve(root: &SupervisorRef, path: &[String]) -> Option<SupervisorRef> {
    let mut sup = root.clone();
    for id in path {
        sup = sup.supervisor(id).await.ok()?;
    }
    Some(sup)
}

/// Event path of the supervisor at `path` under root `root_id`.
pub fn event_path(root_id: &str, path: &[String]) -> String {
    std::iter::once(root_id.to_owned())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join("/")
}
