//! A three-level supervision tree: a crash in the bottom level restarts
//! that level's group (one-for-all) and nothing else, then everything stops
//! in order, children before parents.
//!
//! Run: `cargo run -p candado-examples --bin tree`
//!
//! ```text
//! root (one-for-one) ─┬─ cache
//!                     └─ predict (rest-for-one) ─┬─ engine-0
//!                                                └─ shards (one-for-all) ─┬─ shard-a
//!                                                                         └─ shard-b
//! ```

use std::time::Duration;

use actix::{Actor, Context, Handler, Message};
use candado::{BackoffConfig, ChildLink, ChildSpec, Runtime, Strategy, SupervisorSpec};
use candado_examples::{restarted, show_queued, show_until};

/// A worker that answers `Ping` with its incarnation number and panics on `Crash`.
struct Engine {
    link: ChildLink,
}

impl Actor for Engine {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "u64")]
struct Ping;

#[derive(Message)]
#[rtype(result = "()")]
struct Crash;

impl Handler<Ping> for Engine {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.link.incarnation()
    }
}

impl Handler<Crash> for Engine {
    type Result = ();
    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("shard-a hit a bug");
    }
}

fn engine(id: &str) -> ChildSpec {
    ChildSpec::worker(id, |link| Engine { link })
}

fn main() -> anyhow::Result<()> {
    // The panic is the point of the example: keep its report to one line.
    std::panic::set_hook(Box::new(|info| eprintln!("(a child panicked: {info})")));
    // The application runs on a worker thread, beside its children.
    Runtime::builder()
        .worker_threads(2)
        .run(async |runtime| -> anyhow::Result<()> {
            let mut events = runtime.subscribe();
            let quick = BackoffConfig {
                base: Duration::from_millis(50),
                ..BackoffConfig::default()
            };
            let tree = SupervisorSpec::new("root")
                .strategy(Strategy::OneForOne)
                .child(engine("cache"))
                .child(ChildSpec::supervisor(
                    SupervisorSpec::new("predict")
                        .strategy(Strategy::RestForOne)
                        .child(engine("engine-0"))
                        .child(ChildSpec::supervisor(
                            SupervisorSpec::new("shards")
                                .strategy(Strategy::OneForAll)
                                .backoff(quick)
                                .child(engine("shard-a"))
                                .child(engine("shard-b")),
                        )),
                ));
            println!("starting the tree (children start in order, level by level):");
            let root = runtime.start(tree).await?;
            show_queued(&mut events);

            let shards = root
                .supervisor("predict")
                .await?
                .supervisor("shards")
                .await?;
            let shard = shards.worker::<Engine>("shard-a").await?;
            println!(
                "\nshard-a answers as incarnation {}",
                shard.send(Ping).await?
            );

            println!(
                "\ncrashing shard-a: its group (one-for-all) restarts, the levels above do not:"
            );
            shard.do_send(Crash);
            show_until(&mut events, Duration::from_secs(5), |e| {
                restarted(e, "shard-b")
            })
            .await?;
            let shard = shards.worker::<Engine>("shard-a").await?;
            println!(
                "\nshard-a answers as incarnation {}",
                shard.send(Ping).await?
            );
            for child in root.children().await? {
                println!(
                    "root/{}: {:?}, {} restarts",
                    child.id, child.status, child.restarts
                );
            }
            println!("tree health: {:?}", root.tree_health().await?);

            println!("\nshutting down (newest first, children before their supervisor):");
            root.shutdown().await;
            show_queued(&mut events);
            Ok(())
        })?
}
