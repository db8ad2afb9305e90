//! [`PgStore`]: a queue of tasks in PostgreSQL: connect and migrate, claim
//! in batches with `FOR UPDATE SKIP LOCKED`, and renew leases. Enqueueing
//! is in `enqueue.rs`.

use std::sync::Arc;
use std::time::Duration;

use candado_pool::RetryConfig;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::de::DeserializeOwned;
use tokio_postgres::{NoTls, Row};

use crate::{migrations, Claimed, StoreError};

/// The channel a committed enqueue notifies, with the queue as payload.
pub(crate) const CHANNEL: &str = "candado_tasks";

/// Server options of the store's own connections (see `connect`).
const INDEX_ONLY_PLANS: &str = "-c enable_seqscan=off -c plan_cache_mode=force_generic_plan";

/// How a [`PgStore`] connects and what it does by default.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// A libpq-style connection string or URL
    /// (`host=/run/postgresql dbname=app user=app`, `postgres://…`).
    pub url: String,
    /// The queue (several pools may share the tables, one queue each).
    pub queue: String,
    /// Connections kept in the store's pool (default 8).
    pub max_connections: usize,
    /// Retries of a task enqueued without its own, and their backoff
    /// (default: the pool's defaults, 3 retries from 1 s to 30 s).
    pub retry: RetryConfig,
}

impl StoreConfig {
    /// The defaults for `url` and `queue`.
    pub fn new(url: impl Into<String>, queue: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            queue: queue.into(),
            max_connections: 8,
            retry: RetryConfig::default(),
        }
    }
}

/// A durable task queue in PostgreSQL, shared by every node that opens
/// the same queue. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: Pool,
    /// For the listening connection of [`Wakeups`](crate::Wakeups).
    pub(crate) url: Arc<str>,
    pub(crate) queue: Arc<str>,
    pub(crate) retry: RetryConfig,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, and applies the schema migrations not applied yet.
    pub async fn connect(config: StoreConfig) -> Result<Self, StoreError> {
        if config.queue.is_empty() {
            return Err(StoreError::Invalid {
                field: "queue",
                problem: "must not be empty".into(),
            });
        }
        if config.max_connections == 0 {
            return Err(StoreError::Invalid {
                field: "max_connections",
                problem: "must be at least 1".into(),
            });
        }
        let mut pg: tokio_postgres::Config =
            config
                .url
                .parse()
                .map_err(|e: tokio_postgres::Error| StoreError::Invalid {
                    field: "url",
                    problem: e.to_string(),
                })?;
        // The store's statements are prepared once per connection and
        // planned generically, against the statistics of the moment. A
        // queue that grew fast from empty looks empty to the planner for a
        // while (until autovacuum analyzes it), and a plan made then would
        // read the whole table for every claim and completion. Every
        // statement of the store has an index to use: prefer it always.
        let options = match pg.get_options() {
            Some(theirs) => format!("{theirs} {INDEX_ONLY_PLANS}"),
            None => INDEX_ONLY_PLANS.to_owned(),
        };
        pg.options(&options);
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.max_connections)
            .build()
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        let store = Self {
            pool,
            url: config.url.as_str().into(),
            queue: config.queue.into(),
            retry: config.retry,
        };
        let mut client = store.pool.get().await?;
        let applied = migrations::migrate(&mut client).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "candado-postgres: schema migrations applied");
        }
        Ok(store)
    }

    /// The queue this store serves.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Claims up to `n` ready tasks for `node`, in priority then FIFO
    /// order, skipping rows other nodes are claiming (`FOR UPDATE SKIP
    /// LOCKED`), tasks needing a capability not in `capabilities`, and
    /// tasks whose dependency's shared breaker is open. Each gets a lease
    /// of `lease` and its attempt number goes up by one.
    ///
    /// A payload that does not decode as `T` cannot run anywhere: it is
    /// dead-lettered with that reason, and left out.
    pub async fn claim<T: DeserializeOwned>(
        &self,
        node: &str,
        capabilities: &[String],
        n: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed<T>>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        // Prepared once per connection: one round trip per claim, planned
        // once. `= ANY(ARRAY(…))`: a generic plan cannot know the limit,
        // and with a join it may scan the whole table to meet the picks.
        let statement = client
            .prepare_cached(
                "WITH picked AS (
                    SELECT t.id FROM candado_tasks t
                    WHERE t.queue = $1 AND t.state = 'ready' AND t.run_at <= now()
                      AND (t.capability IS NULL OR t.capability = ANY($2))
                      AND (t.dependency IS NULL OR NOT EXISTS (
                            SELECT 1 FROM candado_breakers b
                            WHERE b.queue = t.queue AND b.dependency = t.dependency
                              AND b.open_until > now()))
                    ORDER BY t.priority, t.id
                    LIMIT $3
                    FOR UPDATE SKIP LOCKED)
                 UPDATE candado_tasks t
                 SET state = 'running', attempt = t.attempt + 1, lease_holder = $4,
                     lease_until = now() + $5 * interval '1 millisecond'
                 WHERE t.id = ANY(ARRAY(SELECT id FROM picked))
                 RETURNING t.id, t.attempt, t.payload, t.priority, t.capability,
                           t.dependency, t.timeout_ms",
            )
            .await?;
        let rows = client
            .query(
                &statement,
                &[
                    &&*self.queue,
                    &capabilities,
                    &limit,
                    &node,
                    &(millis(lease) as f64),
                ],
            )
            .await?;
        drop(client);
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            match decode::<T>(&row) {
                Ok(task) => claimed.push(task),
                Err(problem) => {
                    let (id, attempt): (i64, i32) = (row.get(0), row.get(1));
                    tracing::warn!(id, %problem, "an undecodable payload goes to the dead letters");
                    self.bury(
                        node,
                        id,
                        attempt,
                        &format!("undecodable payload: {problem}"),
                    )
                    .await?;
                }
            }
        }
        claimed.sort_by_key(|c| (c.priority, c.id));
        Ok(claimed)
    }

    /// Extends the leases `node` holds on `ids` by `lease` from now;
    /// returns how many it still held.
    pub async fn renew(&self, node: &str, ids: &[i64], lease: Duration) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "UPDATE candado_tasks
                 SET lease_until = now() + $3 * interval '1 millisecond'
                 WHERE lease_holder = $1 AND id = ANY($2)",
                &[&node, &ids, &(millis(lease) as f64)],
            )
            .await?)
    }
}

fn decode<T: DeserializeOwned>(row: &Row) -> Result<Claimed<T>, String> {
    let payload: serde_json::Value = row.get(2);
    let task = serde_json::from_value(payload).map_err(|e| e.to_string())?;
    let attempt: i32 = row.get(1);
    let priority: i16 = row.get(3);
    let timeout_ms: Option<i64> = row.get(6);
    Ok(Claimed {
        id: row.get(0),
        attempt: u32::try_from(attempt).unwrap_or(0),
        task,
        priority: u8::try_from(priority).unwrap_or(u8::MAX),
        capability: row.get(4),
        dependency: row.get(5),
        timeout: timeout_ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    })
}

/// A hundred years, in milliseconds: longer delays and leases are taken as
/// this (a timestamp cannot hold `Duration::MAX` from now).
const LONGEST_MS: i64 = 100 * 365 * 24 * 60 * 60 * 1000;

/// Milliseconds, at most [`LONGEST_MS`].
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).map_or(LONGEST_MS, |ms| ms.min(LONGEST_MS))
}

pub(crate) fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
