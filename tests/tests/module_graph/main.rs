//! The module import graphs of the framework and of the pool: which source
//! files import which, the rings (strongly connected components) they form,
//! and the seams that keep two sides of a crate from importing each other.
//!
//! `cargo test -p candado-tests --test module_graph -- --nocapture` prints
//! the rings.

mod graph;

use graph::Graph;

// The framework (`framework/src`).

fn is_supervisor(file: &str) -> bool {
    file == "supervisor.rs" || file.starts_with("supervisor/")
}

/// The largest ring before the seam: `link.rs` and `child_spec.rs` sent
/// their reports to the `Supervisor` actor itself, which closed a ring of 14
/// files (child_spec, event, info, link, runtime, runtime/threads, supervisor
/// and five of its files, supervisor_spec, task).
const LARGEST_RING_BEFORE_THE_SEAM: usize = 14;

#[test]
fn the_child_side_knows_its_supervisor_only_through_the_seam() {
    let graph = Graph::of("framework");
    for file in ["link.rs", "child_spec.rs", "task.rs", "parent.rs"] {
        assert!(graph.edges.contains_key(file), "{file} exists");
        let reached: Vec<_> = graph
            .reach(file)
            .into_iter()
            .filter(|f| is_supervisor(f))
            .collect();
        assert!(
            reached.is_empty(),
            "{file} reaches the supervisor through its imports: {reached:?}"
        );
    }
}

#[test]
fn the_largest_ring_is_smaller_than_before_the_seam() {
    let graph = Graph::of("framework");
    let rings = graph.rings();
    for ring in &rings {
        println!("{} files: {}", ring.len(), ring.join(" "));
    }
    let largest = rings.first().map_or(0, Vec::len);
    assert!(
        largest < LARGEST_RING_BEFORE_THE_SEAM,
        "a ring of {largest} files: {rings:?}"
    );
    for ring in &rings {
        for file in ["parent.rs", "link.rs", "task.rs"] {
            assert!(
                !ring.iter().any(|f| f == file),
                "{file} is in a ring: {ring:?}"
            );
        }
    }
}

/// Guards the two tests above against a parser that finds nothing.
#[test]
fn the_graph_sees_imports_known_to_exist() {
    let graph = Graph::of("framework");
    let imports = |from: &str, to: &str| graph.edges[from].contains(to);
    // `use crate::link::{self, …}`, a re-export followed to its file, an
    // inline `crate::` path, `super::`, a child module.
    assert!(imports("supervisor/plan.rs", "link.rs"));
    assert!(imports("info.rs", "child_spec.rs"));
    assert!(imports("supervisor/health.rs", "health/strategy.rs"));
    assert!(imports("supervisor.rs", "clock.rs"));
    assert!(imports("supervisor/plan.rs", "supervisor.rs"));
    assert!(imports("supervisor.rs", "supervisor/plan.rs"));
    assert!(imports("health.rs", "health/signal.rs"));
    assert!(graph.reach("runtime.rs").contains("supervisor/plan.rs"));
    assert!(!imports("lib.rs", "lib.rs"));
}

// The pool (`pool-actors/src`).

fn is_router(file: &str) -> bool {
    file.starts_with("router/")
}

fn is_worker(file: &str) -> bool {
    file == "worker.rs" || file.starts_with("worker/")
}

/// Prints the pool's import graph: every file's imports, and the rings.
fn pool_graph() -> Graph {
    let graph = Graph::of("pool-actors");
    let imports: usize = graph.edges.values().map(|to| to.len()).sum();
    println!("{} files, {imports} imports", graph.edges.len());
    for (file, to) in &graph.edges {
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        println!("{file} -> {}", to.join(" "));
    }
    for ring in graph.rings() {
        println!("ring of {} files: {}", ring.len(), ring.join(" "));
    }
    graph
}

/// Before the messages of the task path had a module of their own, the
/// router named the worker actor (its address, `Run`, `Cancel`) and the
/// worker the router's types (`Done`, `Effect`, `Caller`, `WorkerKey`): 34
/// files, 129 imports, and the router and the worker in one ring of 4 files
/// (router/mod, router/news, router/shared, worker).
#[test]
fn the_router_does_not_import_the_worker() {
    let graph = pool_graph();
    let router: Vec<&String> = graph.edges.keys().filter(|f| is_router(f)).collect();
    assert!(router.len() > 1, "router/ exists: {router:?}");
    for file in router {
        let reached: Vec<_> = graph
            .reach(file)
            .into_iter()
            .filter(|f| is_worker(f))
            .collect();
        assert!(
            reached.is_empty(),
            "{file} reaches the worker through its imports: {reached:?}"
        );
    }
    // The messages both use import neither.
    assert!(
        graph.edges.contains_key("messages.rs"),
        "messages.rs exists"
    );
    let reached: Vec<_> = graph
        .reach("messages.rs")
        .into_iter()
        .filter(|f| is_router(f) || is_worker(f))
        .collect();
    assert!(reached.is_empty(), "messages.rs reaches {reached:?}");
    // A ring stays within one folder (a module's own files), never
    // spanning two of the pool's parts.
    for ring in graph.rings() {
        let folder = |f: &String| f.split_once('/').map(|(dir, _)| dir.to_owned());
        assert!(
            ring.iter()
                .all(|f| folder(f).is_some() && folder(f) == folder(&ring[0])),
            "a ring across folders: {ring:?}"
        );
    }
}

#[test]
fn the_task_store_knows_neither_the_router_nor_the_worker() {
    let graph = Graph::of("pool-actors");
    let store: Vec<&String> = graph
        .edges
        .keys()
        .filter(|f| f.starts_with("store/"))
        .collect();
    assert!(store.len() > 1, "store/ exists: {store:?}");
    for file in store {
        let reached: Vec<_> = graph
            .reach(file)
            .into_iter()
            .filter(|f| is_router(f) || is_worker(f) || f.starts_with("pool/"))
            .collect();
        assert!(reached.is_empty(), "{file} reaches {reached:?}");
    }
    assert!(graph.edges["router/mod.rs"].contains("store/mod.rs"));
}

/// Guards the tests above against a parser that finds nothing.
#[test]
fn the_pool_graph_sees_imports_known_to_exist() {
    let graph = Graph::of("pool-actors");
    let imports = |from: &str, to: &str| graph.edges[from].contains(to);
    assert!(imports("router/shared.rs", "router/mod.rs"));
    assert!(imports("pool/builder.rs", "router/routers.rs"));
    assert!(imports("forwarder.rs", "router/news.rs"));
    assert!(graph.reach("pool/mod.rs").iter().any(|f| is_worker(f)));
    assert!(graph.edges.keys().any(|f| is_worker(f)));
    assert!(graph
        .edges
        .iter()
        .any(|(from, to)| is_worker(from) && to.iter().any(|f| is_router(f))));
}
