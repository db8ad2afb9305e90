//! Process workers' RSS, as their heartbeats carry it, on virtual time.

mod common;

use std::time::Duration;

use actix::{Actor, Context};
use candado::{ChildLink, ChildSpec, Runtime, SupervisorSpec};
use candado_observe::{Observer, ProcessMemory};
use common::assert_line;

/// Stands for a process worker: reports a pid and an RSS, and beats as a
/// process's own heartbeat thread would.
struct FakeProcess {
    link: ChildLink,
    rss: u64,
}

impl Actor for FakeProcess {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.link.set_counter("pid", 4242);
        self.link.set_memory(self.rss);
        self.link.heartbeat();
    }
}

/// An in-process worker with a memory figure but no pid.
struct InProcess {
    link: ChildLink,
}

impl Actor for InProcess {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.link.set_memory(1);
        self.link.heartbeat();
    }
}

#[test]
fn the_rss_of_running_process_workers_is_exported_and_forgotten_when_they_go() {
    candado::testkit::run_paused(|| async {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let memory = ProcessMemory::new();
        let tick = Duration::from_millis(100);
        let spec = SupervisorSpec::new("procs")
            .tick_interval(tick)
            .health(memory.probe("procs"))
            .child(
                ChildSpec::worker("p1", |link| FakeProcess {
                    link,
                    rss: 7_000_000,
                })
                .external_heartbeats(),
            )
            .child(ChildSpec::worker("inproc", |link| InProcess { link }).external_heartbeats());
        let root = runtime.start(spec).await.unwrap();
        let observer = Observer::builder(&runtime)
            .tree(&root)
            .process_memory(&memory)
            .build()
            .unwrap();
        // The supervisor collects heartbeats on its tick.
        tokio::time::sleep(2 * tick).await;

        let text = observer.render_metrics().await;
        assert_line(&text, "# UNIT candado_process_rss_bytes bytes");
        assert_line(
            &text,
            r#"candado_process_rss_bytes{supervisor="procs",child="p1"} 7000000"#,
        );
        assert!(!text.contains(r#"child="inproc""#), "{text}");

        root.remove_child("p1").await.unwrap();
        let text = observer.render_metrics().await;
        assert!(!text.contains(r#"child="p1""#), "{text}");
        runtime.shutdown().await;
    });
}
