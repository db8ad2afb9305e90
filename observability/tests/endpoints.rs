//! The probes, the tree and the event stream over real HTTP.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candado::{
    ChildSpec, Decisions, EventKind, HealLimit, HealthCause, HealthStatus, HealthStrategy, Runtime,
    Signal, SupervisorSpec, Verdict,
};
use candado_observe::Observer;
use common::*;
use tokio::time::Instant;

/// Orders the restart of every child while `on` is set, and calls them
/// healthy otherwise.
#[derive(Clone)]
struct Condemn {
    on: Arc<AtomicBool>,
    children: Arc<Mutex<Vec<String>>>,
}

impl HealthStrategy for Condemn {
    fn name(&self) -> &str {
        "condemn"
    }

    fn on_signal(&mut self, _: Instant, child: &str, signal: &Signal, _: &mut Decisions) {
        if let Signal::Started { .. } = signal {
            let mut children = self.children.lock().unwrap();
            if !children.iter().any(|c| c == child) {
                children.push(child.to_owned());
            }
        }
    }

    fn on_tick(&mut self, _: Instant, out: &mut Decisions) {
        for child in self.children.lock().unwrap().iter() {
            let verdict = if self.on.load(Ordering::SeqCst) {
                Verdict::Restart {
                    cause: HealthCause::Other,
                    reason: "condemned".into(),
                }
            } else {
                Verdict::Healthy
            };
            out.set(child.clone(), verdict);
        }
    }
}

#[test]
fn readyz_flips_when_the_tree_turns_critical_and_back() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let on = Arc::new(AtomicBool::new(false));
        let condemn = Condemn {
            on: on.clone(),
            children: Arc::default(),
        };
        // No restart allowed: a restart order leaves the child critical.
        let spec = SupervisorSpec::new("app")
            .tick_interval(Duration::from_millis(10))
            .heal_limit(HealLimit {
                max: 0,
                period: Duration::from_secs(3600),
                min_gap: Duration::ZERO,
            })
            .health(condemn)
            .child(ChildSpec::worker("w", |_| Flaky));
        let root = runtime.start(spec).await.unwrap();
        let observer = Observer::builder(&runtime).tree(&root).build().unwrap();
        let mut feed = observer.subscribe();
        let server = observer.serve("127.0.0.1:0").unwrap();
        let addr = server.local_addr();

        let ready = get(addr, "/readyz").await;
        assert_eq!(ready.status, 200, "{}", ready.body);
        assert_eq!(ready.header("content-type"), Some("application/json"));
        assert_eq!(ready.body, r#"{"ready":true,"reasons":[]}"#);

        let health_is = |want: HealthStatus| {
            move |e: &candado::Event| matches!(&e.kind, EventKind::HealthChanged { child, status, .. } if child == "w" && *status == want)
        };
        on.store(true, Ordering::SeqCst);
        within("critical", feed.wait_for(health_is(HealthStatus::Critical)))
            .await
            .unwrap();
        let unready = get(addr, "/readyz").await;
        assert_eq!(unready.status, 503, "{}", unready.body);
        let body: serde_json::Value = serde_json::from_str(&unready.body).unwrap();
        assert_eq!(body["ready"], false);
        let reason = body["reasons"][0].as_str().unwrap();
        assert!(reason.starts_with("`app/w` is critical: "), "{reason}");

        on.store(false, Ordering::SeqCst);
        within("healthy", feed.wait_for(health_is(HealthStatus::Healthy)))
            .await
            .unwrap();
        assert_eq!(get(addr, "/readyz").await.status, 200);

        server.stop(false).await;
        runtime.shutdown().await;
    });
}

#[test]
fn healthz_answers_while_the_control_thread_runs_and_503_while_it_is_stalled() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let observer = Observer::builder(&runtime)
            .probe_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let server = observer.serve("127.0.0.1:0").unwrap();
        let addr = server.local_addr();

        let alive = get(addr, "/healthz").await;
        assert_eq!((alive.status, alive.body.as_str()), (200, "ok\n"));

        // Block the control thread (as a blocking call in a supervisor
        // would) for longer than the probe timeout.
        let (tx, rx) = tokio::sync::oneshot::channel();
        runtime.control_arbiter().spawn(async move {
            std::thread::sleep(Duration::from_millis(1_500));
            let _ = tx.send(());
        });
        let stalled = get(addr, "/healthz").await;
        assert_eq!(stalled.status, 503, "{}", stalled.body);
        assert!(stalled.body.contains("did not answer"), "{}", stalled.body);

        within("the stall's end", rx).await.unwrap();
        assert_eq!(get(addr, "/healthz").await.status, 200);

        server.stop(false).await;
        runtime.shutdown().await;
    });
}

#[test]
fn the_event_stream_delivers_a_restart() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let spec = SupervisorSpec::new("app")
            .backoff(no_backoff())
            .child(ChildSpec::worker("flaky", |_| Flaky));
        let root = runtime.start(spec).await.unwrap();
        let observer = Observer::builder(&runtime).tree(&root).build().unwrap();
        let server = observer.serve("127.0.0.1:0").unwrap();

        let mut events = EventClient::open(server.local_addr(), "/api/events").await;
        assert_eq!(events.status, 200);
        let content_type = events.headers.iter().find(|(n, _)| n == "content-type");
        assert_eq!(content_type.unwrap().1, "text/event-stream");

        root.worker::<Flaky>("flaky").await.unwrap().do_send(Boom);
        let exited = events.wait_for(|e| e["event"] == "child_exited").await;
        assert_eq!(exited["reason"]["kind"], "panic");
        let restarted = events.wait_for(|e| e["event"] == "child_restarted").await;
        assert_eq!(restarted["supervisor"], "app");
        assert_eq!(restarted["child"], "flaky");
        assert_eq!(restarted["cause"], "panic");
        assert_eq!(restarted["incarnation"], 2);

        server.stop(false).await;
        runtime.shutdown().await;
    });
}

#[test]
fn the_tree_endpoint_serves_every_tree_with_its_subtrees() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let spec = SupervisorSpec::new("app")
            .child(ChildSpec::worker("cache", |_| Flaky))
            .child(ChildSpec::supervisor(
                SupervisorSpec::new("db").child(ChildSpec::worker("conn", |_| Flaky)),
            ));
        let root = runtime.start(spec).await.unwrap();
        let observer = Observer::builder(&runtime).tree(&root).build().unwrap();
        let server = observer.serve("127.0.0.1:0").unwrap();

        let response = get(server.local_addr(), "/api/tree").await;
        assert_eq!(response.status, 200);
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        let app = &body["trees"][0];
        assert_eq!(app["path"], "app");
        assert_eq!(app["children"][0]["id"], "cache");
        assert_eq!(app["children"][0]["status"], "running");
        assert_eq!(app["subtrees"][0]["path"], "app/db");
        assert_eq!(app["subtrees"][0]["children"][0]["id"], "conn");
        // It is the `TreeSnapshot` type, serialised.
        let served: Vec<candado_observe::TreeSnapshot> =
            serde_json::from_value(body["trees"].clone()).unwrap();
        let paths: Vec<&str> = served[0].supervisors().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["app", "app/db"]);

        server.stop(false).await;
        runtime.shutdown().await;
    });
}
