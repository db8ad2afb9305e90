//! Shared breakers: per-dependency failure counts in a table every node of
//! the queue reads, kept across restarts. A dependency whose breaker is
//! open has its tasks left in the queue by every node's claims until the
//! cooldown ends; the first outcome after it closes or reopens it.

use std::time::Duration;

use crate::store::millis;
use crate::{PgStore, StoreError};

/// When a shared breaker opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedBreakerConfig {
    /// Consecutive failures that open it (default 5).
    pub failure_threshold: u32,
    /// How long it stays open (default 30 s).
    pub cooldown: Duration,
}

impl Default for SharedBreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// A dependency's shared breaker, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerState {
    /// The dependency.
    pub dependency: String,
    /// Consecutive failures.
    pub failures: u32,
    /// How much longer it stays open (`None`: closed).
    pub open_for: Option<Duration>,
}

impl PgStore {
    /// Records an outcome of a task that called `dependency`: a success
    /// closes its breaker; the `failure_threshold`-th failure in a row opens
    /// it for `cooldown`. Returns whether it is open now.
    pub async fn record_dependency(
        &self,
        dependency: &str,
        success: bool,
        config: SharedBreakerConfig,
    ) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let threshold = i32::try_from(config.failure_threshold.max(1)).unwrap_or(i32::MAX);
        let row = client
            .query_one(
                "INSERT INTO candado_breakers AS b (queue, dependency, failures, open_until)
                 VALUES ($1, $2, CASE WHEN $3 THEN 0 ELSE 1 END,
                         CASE WHEN NOT $3 AND $4 <= 1
                              THEN now() + $5 * interval '1 millisecond' END)
                 ON CONFLICT (queue, dependency) DO UPDATE SET
                     failures = CASE WHEN $3 THEN 0 ELSE b.failures + 1 END,
                     open_until = CASE
                         WHEN $3 THEN NULL
                         WHEN b.failures + 1 >= $4 THEN now() + $5 * interval '1 millisecond'
                         ELSE b.open_until END,
                     updated_at = now()
                 RETURNING open_until IS NOT NULL AND open_until > now()",
                &[
                    &&*self.queue,
                    &dependency,
                    &success,
                    &threshold,
                    &(millis(config.cooldown) as f64),
                ],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Every dependency breaker of this queue.
    pub async fn breakers(&self) -> Result<Vec<BreakerState>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT dependency, failures,
                        GREATEST(0, (extract(epoch FROM open_until - now()) * 1000))::bigint
                 FROM candado_breakers WHERE queue = $1 ORDER BY dependency",
                &[&&*self.queue],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let failures: i32 = row.get(1);
                let open_ms: Option<i64> = row.get(2);
                BreakerState {
                    dependency: row.get(0),
                    failures: u32::try_from(failures).unwrap_or(0),
                    open_for: open_ms
                        .filter(|&ms| ms > 0)
                        .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
                }
            })
            .collect())
    }
}
