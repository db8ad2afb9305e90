//! The pools as the dashboard shows them: metrics with their recent
//! history, breakers, dead letters with their history, and replay.

use candado::BreakersSnapshot;
use candado_pool::{Attempt, PoolMetrics, TaskId, TaskOptions};
use serde::{Deserialize, Serialize};

use crate::{HistoryPoint, ObserveError, Observer};

/// How many dead letters of a pool [`Observer::dead_letters`] shows, the
/// newest first: each costs a round trip to the pool's dead-letter store.
pub const DEAD_LETTERS_SHOWN: usize = 100;

/// One pool now and over the last minutes (what `/api/pools` serves, one
/// per pool).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolView {
    /// The pool's name (also its worker supervisor's path).
    pub name: String,
    /// Its metrics now; `None` if it did not answer within the probe timeout.
    pub metrics: Option<PoolMetrics>,
    /// Its breakers, if it has any.
    pub breakers: Option<BreakersSnapshot>,
    /// How many times any of its breakers opened.
    pub breaker_openings: u64,
    /// One point a second over the last five minutes, oldest first.
    pub history: Vec<HistoryPoint>,
}

/// A dead task with its history, without its payload (which need not be
/// serialisable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The task's id in its pool.
    pub id: TaskId,
    /// Why it is dead (`retries exhausted`, `shutdown`, ...).
    pub reason: String,
    /// The options it was submitted with (a replay keeps them).
    pub options: TaskOptions,
    /// Every attempt, oldest first: worker, times and error.
    pub attempts: Vec<Attempt>,
}

/// One pool's dead-letter store (what `/api/dead-letters` serves, one per
/// pool).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolDeadLetters {
    /// The pool's name.
    pub pool: String,
    /// Whether the pool answered; `false` leaves `tasks` empty.
    pub up: bool,
    /// How many dead tasks the store holds.
    pub total: usize,
    /// The newest [`DEAD_LETTERS_SHOWN`] of them, newest first.
    pub tasks: Vec<DeadLetter>,
}

impl Observer {
    /// Every watched pool now, with its recent history, in the order the
    /// pools were added (what `/api/pools` serves).
    pub async fn pools(&self) -> Vec<PoolView> {
        let inner = &self.inner;
        let mut views = Vec::with_capacity(inner.pools.len());
        for pool in &inner.pools {
            let metrics = tokio::time::timeout(inner.probe_timeout, pool.metrics()).await;
            let (breakers, breaker_openings) = match pool.breakers() {
                Some((snapshot, opened)) => (Some(snapshot), opened),
                None => (None, 0),
            };
            views.push(PoolView {
                name: pool.name().to_owned(),
                metrics: metrics.ok().and_then(Result::ok),
                breakers,
                breaker_openings,
                history: inner.history.points(pool.name()),
            });
        }
        views
    }

    /// Every watched pool's dead letters, each with its attempts (what
    /// `/api/dead-letters` serves).
    pub async fn dead_letters(&self) -> Vec<PoolDeadLetters> {
        let inner = &self.inner;
        let mut pools = Vec::with_capacity(inner.pools.len());
        for pool in &inner.pools {
            let read =
                tokio::time::timeout(inner.probe_timeout, pool.dead_letters(DEAD_LETTERS_SHOWN))
                    .await;
            let (up, (tasks, total)) = match read {
                Ok(Ok(dead)) => (true, dead),
                Ok(Err(_)) | Err(_) => (false, (Vec::new(), 0)),
            };
            pools.push(PoolDeadLetters {
                pool: pool.name().to_owned(),
                up,
                total,
                tasks,
            });
        }
        pools
    }

    /// Replays dead task `id` of pool `pool` through the pool's own
    /// [`replay`](candado_pool::Pool::replay): it leaves the dead-letter
    /// store once the pool has made room for it in its queue, and runs
    /// again with fresh attempts. Returns its new task id.
    pub async fn replay(&self, pool: &str, id: TaskId) -> Result<TaskId, ObserveError> {
        let found = self.inner.pools.iter().find(|p| p.name() == pool);
        let Some(found) = found else {
            return Err(ObserveError::UnknownPool(pool.to_owned()));
        };
        found.replay(id).await.map_err(|source| ObserveError::Pool {
            pool: pool.to_owned(),
            source,
        })
    }
}
