//! The clock task, on the control thread: it drives the router's timers
//! (retries due, promotion, breakers cooling down, the shutdown deadline)
//! for a router nobody calls; every call releases what is due as well.

use std::sync::atomic::Ordering;
use std::sync::Weak;

use tokio::time::Instant;

use super::shared::{Shared, WeakRouter};
use crate::store::TaskStore;
use crate::TaskHandler;

/// The router's timers: due retries, the shutdown deadline, and the
/// housekeeping tick. Sleeps until the earliest, or until a call moves a
/// timer earlier; ends when the router stops or is dropped.
pub(super) async fn run<H: TaskHandler, S: TaskStore<H>>(
    shared: Weak<Shared<H, S>>,
    tick: std::time::Duration,
) {
    let mut next_tick = crate::deadline::after(Instant::now(), tick);
    loop {
        let Some(router) = WeakRouter(shared.clone()).upgrade() else {
            return;
        };
        let Some(wake_at) = router.with(|r| r.clock_plan(next_tick)) else {
            // Holders now serve what is queued themselves, however long.
            router.shared.clock_running.store(false, Ordering::SeqCst);
            router.after_unlock();
            return;
        };
        let nudge = router.shared.clock.clone();
        drop(router);
        tokio::select! {
            () = tokio::time::sleep_until(wake_at) => {}
            () = nudge.notified() => {}
        }
        let Some(router) = WeakRouter(shared.clone()).upgrade() else {
            return;
        };
        let now = Instant::now();
        let tick_due = now >= next_tick;
        if next_tick <= now {
            // The next tick after `now` on the grid of ticks (a late wake
            // skips the ticks it missed, without a loop per tick).
            let late = now.duration_since(next_tick).as_nanos();
            let step = tick.as_nanos().max(1);
            let skipped = u32::try_from(late / step + 1).unwrap_or(u32::MAX);
            next_tick = crate::deadline::after(next_tick, tick.saturating_mul(skipped));
        }
        router.with(|r| r.on_clock(tick_due));
    }
}
