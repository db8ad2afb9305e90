//! Scaling a pool on its queue depth.

use std::sync::atomic::Ordering;

use crate::TaskHandler;

use super::{Inner, Pool};

/// Scales `pool` on its queue depth, every `check_every`, for as long as it
/// runs.
pub(super) async fn autoscale<H: TaskHandler>(
    pool: std::sync::Weak<Inner<H>>,
    settings: crate::AutoscaleSettings,
) {
    let mut idle_checks: u32 = 0;
    loop {
        tokio::time::sleep(settings.check_every).await;
        let Some(inner) = pool.upgrade() else {
            return;
        };
        let pool = Pool { inner };
        let metrics = pool.inner.router.metrics();
        if pool.inner.gauges.closed.load(Ordering::Relaxed) {
            return;
        }
        let size = pool.size();
        let waiting = metrics.tasks.queued as usize;
        let max = pool.inner.config.max_size;
        if waiting > size.saturating_mul(settings.queue_per_worker) && size < max {
            idle_checks = 0;
            let _ = pool.scale_up(1).await;
        } else if waiting == 0 && metrics.workers.ready > 0 && size > pool.inner.config.min_size {
            idle_checks = idle_checks.saturating_add(1);
            if idle_checks >= settings.idle_checks {
                idle_checks = 0;
                let _ = pool.scale_down(1).await;
            }
        } else {
            idle_checks = 0;
        }
    }
}
