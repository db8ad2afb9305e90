//! The dashboard in a real browser: headless Chromium, driven through
//! chromedriver, opens the page while a pool runs under faults, and sees the
//! tree, a restart as it happens, and a dead letter replayed by its button.
//!
//! Skipped with a message when chromium or chromedriver is missing, unless
//! CANDADO_REQUIRE_BROWSER=1 (as in CI). With CANDADO_DASHBOARD_SCREENSHOT
//! set to a path, a PNG of the page is saved there at the end.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use browser::Browser;
use candado::{ChildSpec, Runtime, SupervisorSpec};
use candado_observe::Observer;
use candado_pool::PoolEvent;
use common::chores::{dead_letter, start_pool, until, Chore};
use common::*;
use fantoccini::{Client, Locator};

/// The first element matching `css`, waited for within [`BOUND`].
async fn wait_for(client: &Client, what: &str, css: &str) -> fantoccini::elements::Element {
    match client
        .wait()
        .at_most(BOUND)
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(error) => panic!("{what}: `{css}` not on the page within {BOUND:?}: {error}"),
    }
}

/// Clicks the first element matching `css`, found again when the page
/// re-rendered it between the find and the click (the dashboard redraws its
/// pools every second, so a found button can go stale before it is clicked).
async fn click(client: &Client, what: &str, css: &str) {
    let deadline = Instant::now() + BOUND;
    loop {
        match wait_for(client, what, css).await.click().await {
            Ok(_) => return,
            Err(error) if error.is_stale_element_reference() && Instant::now() < deadline => {}
            Err(error) => panic!("{what}: `{css}` could not be clicked: {error}"),
        }
    }
}

#[test]
fn the_dashboard_shows_the_tree_a_live_restart_and_replays_a_dead_letter() {
    let Some((driver, chromium)) = browser::find_or_skip("the dashboard's browser test") else {
        return;
    };
    let began = Instant::now();
    actix::System::new().block_on(async move {
        let runtime = Runtime::builder().worker_threads(2).build().unwrap();
        let spec = SupervisorSpec::new("app")
            .backoff(no_backoff())
            .child(ChildSpec::worker("cache", |_| Flaky))
            .child(ChildSpec::supervisor(
                SupervisorSpec::new("db").child(ChildSpec::worker("conn", |_| Flaky)),
            ));
        let root = runtime.start(spec).await.unwrap();
        let cured = Arc::new(AtomicBool::new(false));
        let pool = start_pool(&runtime, "jobs", 3, &cured).await;
        let observer = Observer::builder(&runtime)
            .tree(&root)
            .pool(&pool)
            .build()
            .unwrap();
        let server = observer.serve("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", server.local_addr());
        let dead = dead_letter(&pool).await;

        // Faults while the page is open: a steady stream of tasks, and a
        // crashing one (its worker restarts) every second.
        let load = {
            let pool = pool.clone();
            actix::spawn(async move {
                for n in 0u64.. {
                    let chore = if n % 50 == 25 {
                        Chore::Crash
                    } else {
                        Chore::Work
                    };
                    let _ = pool.send(chore, Default::default());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };

        let browser = Browser::start(&driver, &chromium, BOUND).await;
        let client = &browser.client;
        client.goto(&url).await.expect("the page opens");

        // The tree renders: a row per child, nested supervisors included.
        for path in [
            "app/cache",
            "app/db",
            "app/db/conn",
            "jobs/worker-0",
            "jobs/worker-2",
        ] {
            wait_for(
                client,
                "the tree",
                &format!(r#"tr.child[data-path="{path}"]"#),
            )
            .await;
        }
        wait_for(
            client,
            "the pool",
            r#"section.pool[data-pool="jobs"] svg polyline"#,
        )
        .await;

        // A restart appears live: in the tree and in the event log.
        let cache = root.worker::<Flaky>("cache").await.unwrap();
        cache.do_send(Boom);
        wait_for(
            client,
            "the restart in the tree",
            r#"tr.child[data-path="app/cache"][data-restarts="1"]"#,
        )
        .await;
        wait_for(
            client,
            "the restart in the event log",
            r#"#events li[data-event="child_restarted"][data-child="cache"]"#,
        )
        .await;
        wait_for(
            client,
            "a pool worker's restart",
            r#"tr.child[data-path^="jobs/"]:not([data-restarts="0"])"#,
        )
        .await;

        // The replay button moves the dead letter back into the queue.
        cured.store(true, Ordering::SeqCst);
        let mut events = pool.subscribe();
        click(
            client,
            "the dead letter's replay button",
            &format!(r#"tr.dead[data-pool="jobs"][data-id="{dead}"] button.replay"#),
        )
        .await;
        until("the dead letter leaves the store", || async {
            let listed = pool.dead_letters().await.unwrap();
            !listed.iter().any(|d| d.id == dead)
        })
        .await;
        let toast = wait_for(client, "the replay's answer", "#toast:not([hidden])").await;
        let text = toast.text().await.unwrap();
        let replayed: u64 = text
            .rsplit(' ')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("a new task id in `{text}`"));
        within("the replayed task completes", async {
            loop {
                match events.recv().await {
                    Ok(PoolEvent::TaskCompleted { id, .. }) if id == replayed => return,
                    Ok(_) | Err(candado::EventStreamError::Lagged(_)) => {}
                    Err(error) => panic!("the pool's events ended: {error}"),
                }
            }
        })
        .await;
        assert!(pool.dead_letters().await.unwrap().is_empty());

        if let Some(path) = std::env::var_os("CANDADO_DASHBOARD_SCREENSHOT") {
            let png = client.screenshot().await.expect("a screenshot");
            std::fs::write(&path, png).expect("the screenshot is saved");
        }
        browser.close().await;
        load.abort();
        server.stop(true).await;
        runtime.shutdown().await;
    });
    eprintln!("the browser test took {:?}", began.elapsed());
}
