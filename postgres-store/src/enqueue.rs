//! Enqueueing into a [`PgStore`]: one task or a batch in one statement,
//! through the store's connections or inside the application's own
//! transaction, with idempotency keys; a committed enqueue wakes listening
//! nodes.

use std::collections::{HashMap, HashSet};

use candado_pool::RetryConfig;
use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::store::{millis, to_i32, CHANNEL};
use crate::{Enqueued, NewTask, PgStore, StoreError};

impl PgStore {
    /// Enqueues `task`; a committed enqueue wakes listening nodes.
    pub async fn enqueue<T: Serialize>(&self, task: NewTask<T>) -> Result<Enqueued, StoreError> {
        let client = self.pool.get().await?;
        self.enqueue_in(&**client, task).await
    }

    /// Enqueues `task` through `client`, typically the application's own
    /// transaction: the task exists if and only if that transaction
    /// commits, and listening nodes are woken at the commit.
    ///
    /// ```no_run
    /// # async fn demo(store: candado_postgres::PgStore, mut client: tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use candado_postgres::NewTask;
    /// let tx = client.transaction().await?;
    /// tx.execute("INSERT INTO orders (id) VALUES (42)", &[]).await?;
    /// store.enqueue_in(&tx, NewTask::new(42_u64)).await?;
    /// tx.commit().await?; // the order and its task, or neither
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_in<C, T>(
        &self,
        client: &C,
        task: NewTask<T>,
    ) -> Result<Enqueued, StoreError>
    where
        C: GenericClient + Sync,
        T: Serialize,
    {
        let payload =
            serde_json::to_value(&task.task).map_err(|e| StoreError::Encode(e.to_string()))?;
        let priority = i16::from(task.priority);
        let max_retries = to_i32(task.max_retries.unwrap_or(self.retry.max_retries));
        let timeout_ms = task.timeout.map(millis);
        let delay_ms = task.delay.map_or(0, millis);
        let rows = client
            .query(
                "INSERT INTO candado_tasks
                    (queue, priority, capability, dependency, payload, max_retries,
                     timeout_ms, idempotency_key, run_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                         now() + $9 * interval '1 millisecond')
                 ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL
                 DO NOTHING
                 RETURNING id",
                &[
                    &&*self.queue,
                    &priority,
                    &task.capability,
                    &task.dependency,
                    &payload,
                    &max_retries,
                    &timeout_ms,
                    &task.idempotency_key,
                    &(delay_ms as f64),
                ],
            )
            .await?;
        if let Some(row) = rows.first() {
            client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &&*self.queue])
                .await?;
            return Ok(Enqueued {
                id: row.get(0),
                created: true,
            });
        }
        // The key is taken: the task it names is the answer.
        let row = client
            .query_one(
                "SELECT id FROM candado_tasks WHERE queue = $1 AND idempotency_key = $2",
                &[&&*self.queue, &task.idempotency_key],
            )
            .await?;
        Ok(Enqueued {
            id: row.get(0),
            created: false,
        })
    }

    /// Enqueues `tasks` in one statement, in order (their FIFO order is
    /// theirs in the slice), with one wake-up for the batch; returns one
    /// [`Enqueued`] per task, in order. A task whose idempotency key is
    /// taken (by an earlier task, or by an earlier one in the batch) is not
    /// enqueued again: its answer names the task holding the key.
    pub async fn enqueue_many<T: Serialize>(
        &self,
        tasks: Vec<NewTask<T>>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let client = self.pool.get().await?;
        self.enqueue_many_in(&**client, tasks).await
    }

    /// [`enqueue_many`](Self::enqueue_many) through `client`, typically
    /// the application's own transaction: the tasks exist if and only if
    /// it commits.
    pub async fn enqueue_many_in<C, T>(
        &self,
        client: &C,
        tasks: Vec<NewTask<T>>,
    ) -> Result<Vec<Enqueued>, StoreError>
    where
        C: GenericClient + Sync,
        T: Serialize,
    {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let n = tasks.len();
        let mut columns = Columns::with_capacity(n);
        for task in &tasks {
            columns.push(task, &self.retry)?;
        }
        let rows = client
            .query(
                "INSERT INTO candado_tasks
                    (queue, priority, capability, dependency, payload, max_retries,
                     timeout_ms, idempotency_key, run_at)
                 SELECT $1, t.priority, t.capability, t.dependency, t.payload, t.max_retries,
                        t.timeout_ms, t.idempotency_key,
                        now() + t.delay_ms * interval '1 millisecond'
                 FROM unnest($2::smallint[], $3::text[], $4::text[], $5::jsonb[], $6::int[],
                             $7::bigint[], $8::text[], $9::float8[])
                      WITH ORDINALITY
                      AS t(priority, capability, dependency, payload, max_retries,
                           timeout_ms, idempotency_key, delay_ms, n)
                 ORDER BY t.n
                 ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL
                 DO NOTHING
                 RETURNING id, idempotency_key",
                &[
                    &&*self.queue,
                    &columns.priority,
                    &columns.capability,
                    &columns.dependency,
                    &columns.payload,
                    &columns.max_retries,
                    &columns.timeout_ms,
                    &columns.idempotency_key,
                    &columns.delay_ms,
                ],
            )
            .await?;
        if !rows.is_empty() {
            client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &&*self.queue])
                .await?;
        }
        // Ids are handed out in the batch's order: the created tasks, in
        // order, got the returned ids in ascending order.
        let mut created: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        created.sort_unstable();
        let taken: HashSet<String> = rows
            .iter()
            .filter_map(|r| r.get::<_, Option<String>>(1))
            .collect();
        let mut seen = HashSet::new();
        let mut fresh = created.into_iter();
        let mut answers: Vec<Option<Enqueued>> = Vec::with_capacity(n);
        let mut existing = Vec::new();
        for task in &tasks {
            let new = match &task.idempotency_key {
                None => true,
                Some(key) => seen.insert(key.as_str()) && taken.contains(key),
            };
            match if new { fresh.next() } else { None } {
                Some(id) => answers.push(Some(Enqueued { id, created: true })),
                None => {
                    existing.extend(task.idempotency_key.clone());
                    answers.push(None);
                }
            }
        }
        if existing.is_empty() {
            return Ok(answers.into_iter().flatten().collect());
        }
        // Keys already taken: the tasks holding them are the answers.
        let holders: HashMap<String, i64> = client
            .query(
                "SELECT idempotency_key, id FROM candado_tasks
                 WHERE queue = $1 AND idempotency_key = ANY($2)",
                &[&&*self.queue, &existing],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        tasks
            .iter()
            .zip(answers)
            .map(|(task, answer)| match answer {
                Some(answer) => Ok(answer),
                None => task
                    .idempotency_key
                    .as_ref()
                    .and_then(|key| holders.get(key))
                    .map(|&id| Enqueued { id, created: false })
                    .ok_or_else(|| StoreError::Invalid {
                        field: "idempotency_key",
                        problem: "a task holding this key vanished during the enqueue".into(),
                    }),
            })
            .collect()
    }
}

/// A batch of tasks as the columns of one `INSERT … SELECT FROM unnest(…)`.
struct Columns {
    priority: Vec<i16>,
    capability: Vec<Option<String>>,
    dependency: Vec<Option<String>>,
    payload: Vec<serde_json::Value>,
    max_retries: Vec<i32>,
    timeout_ms: Vec<Option<i64>>,
    idempotency_key: Vec<Option<String>>,
    delay_ms: Vec<f64>,
}

impl Columns {
    fn with_capacity(n: usize) -> Self {
        Self {
            priority: Vec::with_capacity(n),
            capability: Vec::with_capacity(n),
            dependency: Vec::with_capacity(n),
            payload: Vec::with_capacity(n),
            max_retries: Vec::with_capacity(n),
            timeout_ms: Vec::with_capacity(n),
            idempotency_key: Vec::with_capacity(n),
            delay_ms: Vec::with_capacity(n),
        }
    }

    fn push<T: Serialize>(
        &mut self,
        task: &NewTask<T>,
        retry: &RetryConfig,
    ) -> Result<(), StoreError> {
        self.payload
            .push(serde_json::to_value(&task.task).map_err(|e| StoreError::Encode(e.to_string()))?);
        self.priority.push(i16::from(task.priority));
        self.capability.push(task.capability.clone());
        self.dependency.push(task.dependency.clone());
        self.max_retries
            .push(to_i32(task.max_retries.unwrap_or(retry.max_retries)));
        self.timeout_ms.push(task.timeout.map(millis));
        self.idempotency_key.push(task.idempotency_key.clone());
        self.delay_ms.push(task.delay.map_or(0, millis) as f64);
        Ok(())
    }
}
