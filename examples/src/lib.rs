//! What the example programs share: printing events as they happen, and
//! waiting (for at most a few seconds) for the one that shows what an
//! example is about.
//!
//! The programs are in `examples/` (run one with
//! `cargo run -p candado-examples --bin tree`); see `examples/README.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

use std::time::Duration;

use candado::{Event, EventKind, EventStream};

/// One line per event: time since the runtime was built, the supervisor's
/// path, and the event as JSON.
pub fn show(event: &Event) {
    let kind = serde_json::to_string(&event.kind).unwrap_or_else(|e| e.to_string());
    println!("  {:>6} ms  {:<16} {kind}", event.at_ms, event.supervisor);
}

/// Prints every event until one matches `done`, for at most `limit`.
pub async fn show_until(
    events: &mut EventStream,
    limit: Duration,
    done: impl Fn(&Event) -> bool,
) -> anyhow::Result<Event> {
    let wait = async {
        loop {
            let event = events.recv().await?;
            show(&event);
            if done(&event) {
                return anyhow::Ok(event);
            }
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .map_err(|_| anyhow::anyhow!("the awaited event did not come within {limit:?}"))?
}

/// Prints every event already queued.
pub fn show_queued(events: &mut EventStream) {
    while let Ok(Some(event)) = events.try_recv() {
        show(&event);
    }
}

/// Whether `event` is `child` of a supervisor being up again after a restart.
pub fn restarted(event: &Event, child: &str) -> bool {
    matches!(&event.kind, EventKind::ChildRestarted { child: c, .. } if c == child)
}
