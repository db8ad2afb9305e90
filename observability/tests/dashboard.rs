//! The dashboard's page, assets and JSON over real HTTP: pools with their
//! history, dead letters with theirs, and replay through the pool's API.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candado::Runtime;
use candado_observe::Observer;
use common::chores::{dead_letter, start_pool, until, Chore};
use common::*;
use serde_json::Value;
use tokio::sync::Notify;

fn json(response: &Response) -> Value {
    serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("{e}: {}", response.body))
}

#[test]
fn the_page_and_its_assets_are_served_from_the_binary() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let observer = Observer::builder(&runtime).build().unwrap();
        let server = observer.serve("127.0.0.1:0").unwrap();
        let addr = server.local_addr();

        let page = get(addr, "/").await;
        assert_eq!(page.status, 200);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            page.body.contains(r#"<script src="dashboard.js">"#),
            "{}",
            page.body
        );
        assert!(page.body.contains(r#"href="dashboard.css""#));
        let script = get(addr, "/dashboard.js").await;
        assert_eq!(script.status, 200);
        assert_eq!(
            script.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        for endpoint in [
            "api/tree",
            "api/pools",
            "api/dead-letters",
            "api/events",
            "readyz",
        ] {
            assert!(script.body.contains(endpoint), "the page reads {endpoint}");
        }
        assert!(
            !script.body.contains("innerHTML"),
            "values are put in the page as text, never as markup"
        );
        let style = get(addr, "/dashboard.css").await;
        assert_eq!(style.status, 200);
        assert_eq!(
            style.header("content-type"),
            Some("text/css; charset=utf-8")
        );
        server.stop(true).await;
        runtime.shutdown().await;
    });
}

#[test]
fn the_pools_endpoint_shows_metrics_breakers_and_a_history_that_grows() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let cured = Arc::new(AtomicBool::new(false));
        let pool = start_pool(&runtime, "jobs", 2, &cured).await;
        let observer = Observer::builder(&runtime).pool(&pool).build().unwrap();
        let server = observer.serve("127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        for _ in 0..3 {
            within("a task", pool.submit(Chore::Work).unwrap())
                .await
                .unwrap();
        }

        // A point a second, the first at once: wait for two.
        until("two points of history", || async move {
            let body = json(&get(addr, "/api/pools").await);
            body["pools"][0]["history"].as_array().unwrap().len() >= 2
        })
        .await;
        let body = json(&get(addr, "/api/pools").await);
        let view = &body["pools"][0];
        assert_eq!(view["name"], "jobs");
        assert_eq!(view["metrics"]["tasks"]["completed"], 3);
        assert_eq!(view["metrics"]["per_worker"].as_array().unwrap().len(), 2);
        assert!(view["breakers"].is_object(), "{view}");
        let last = view["history"].as_array().unwrap().last().unwrap().clone();
        for field in [
            "at_ms",
            "queued",
            "in_flight",
            "completed_per_s",
            "latency_p99_ms",
        ] {
            assert!(last.get(field).is_some(), "{field} in {last}");
        }
        server.stop(true).await;
        runtime.shutdown().await;
    });
}

#[test]
fn a_dead_letter_is_listed_with_its_history_and_replay_moves_it_back_into_the_queue() {
    actix::System::new().block_on(async {
        let runtime = Runtime::builder().worker_threads(1).build().unwrap();
        let cured = Arc::new(AtomicBool::new(false));
        let pool = start_pool(&runtime, "jobs", 1, &cured).await;
        let observer = Observer::builder(&runtime).pool(&pool).build().unwrap();
        let server = observer.serve("127.0.0.1:0").unwrap();
        let addr = server.local_addr();
        let id = dead_letter(&pool).await;

        let listed = json(&get(addr, "/api/dead-letters").await);
        let store = &listed["pools"][0];
        assert_eq!(store["pool"], "jobs");
        assert_eq!(store["up"], true);
        assert_eq!(store["total"], 1);
        let dead = &store["tasks"][0];
        assert_eq!(dead["id"], id);
        assert_eq!(dead["reason"], "retries exhausted");
        let attempts = dead["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "both attempts, with their history");
        assert_eq!(attempts[0]["worker"], "worker-0");
        assert_eq!(attempts[1]["error"]["detail"], "poisoned");

        let replay = format!("/api/pools/jobs/dead-letters/{id}/replay");
        // Another site open in the same browser may not replay.
        let refused = post(addr, &replay, &["Origin: http://elsewhere.example"]).await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        let unknown = post(addr, "/api/pools/nope/dead-letters/1/replay", &[]).await;
        assert_eq!(unknown.status, 404, "{}", unknown.body);
        let missing = post(addr, "/api/pools/jobs/dead-letters/999/replay", &[]).await;
        assert_eq!(missing.status, 404, "{}", missing.body);
        assert_eq!(pool.dead_letters().await.unwrap().len(), 1, "still dead");

        // The one worker is busy: a replayed task waits in the queue.
        let (started, gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let held = pool
            .submit(Chore::Hold {
                started: started.clone(),
                gate: gate.clone(),
            })
            .unwrap();
        within("the worker is busy", started.notified()).await;
        let before = pool.metrics().await.unwrap().tasks;

        cured.store(true, Ordering::SeqCst);
        let replayed = post(addr, &replay, &["Origin: http://localhost"]).await;
        assert_eq!(replayed.status, 200, "{}", replayed.body);
        let answer = json(&replayed);
        assert_eq!(answer["replayed"], id);
        let new_id = answer["task"].as_u64().unwrap();
        assert_ne!(new_id, id, "a replay is a new task");

        assert!(
            pool.dead_letters().await.unwrap().is_empty(),
            "out of the store"
        );
        let queued = pool.metrics().await.unwrap().tasks;
        assert_eq!(queued.submitted, before.submitted + 1);
        assert_eq!(queued.queued, before.queued + 1, "back in the queue");
        assert_eq!(queued.ready_by_priority.values().sum::<u64>(), 1);
        let again = post(addr, &replay, &[]).await;
        assert_eq!(again.status, 404, "replayed once only: {}", again.body);

        gate.notify_one();
        within("the held task", held).await.unwrap();
        until("the replayed task completes", || async {
            pool.metrics().await.unwrap().tasks.completed == before.completed + 2
        })
        .await;
        let listed = json(&get(addr, "/api/dead-letters").await);
        assert_eq!(listed["pools"][0]["total"], 0);
        server.stop(true).await;
        runtime.shutdown().await;
    });
}
