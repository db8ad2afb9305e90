//! Dead letters (queryable with their history), replay and purge; counts
//! and the retention of finished rows.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::store::millis;
use crate::{DeadTask, FailedAttempt, PgStore, QueueCounts, StoreError};

impl PgStore {
    /// The dead letters of this queue, oldest first, at most `limit`.
    pub async fn dead_letters<T: DeserializeOwned>(
        &self,
        limit: usize,
    ) -> Result<Vec<DeadTask<T>>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, payload, history FROM candado_tasks
                 WHERE queue = $1 AND state = 'dead' ORDER BY id LIMIT $2",
                &[&&*self.queue, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let id: i64 = row.get(0);
                let decode = |problem: serde_json::Error| StoreError::Decode {
                    id,
                    problem: problem.to_string(),
                };
                let task = serde_json::from_value(row.get(1)).map_err(decode)?;
                let attempts: Vec<FailedAttempt> =
                    serde_json::from_value(row.get(2)).map_err(decode)?;
                Ok(DeadTask { id, task, attempts })
            })
            .collect()
    }

    /// Puts dead letter `id` back in the queue with a fresh set of retries;
    /// its history is kept.
    pub async fn replay(&self, id: i64) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE candado_tasks
                 SET state = 'ready', attempt = 0, run_at = now(), finished_at = NULL
                 WHERE queue = $1 AND id = $2 AND state = 'dead'",
                &[&&*self.queue, &id],
            )
            .await?;
        if n == 0 {
            return Err(self.not_found(id, "dead"));
        }
        client
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&crate::store::CHANNEL, &&*self.queue],
            )
            .await?;
        Ok(())
    }

    /// Deletes dead letter `id`, or every dead letter of the queue with
    /// `None`; returns how many.
    pub async fn purge_dead(&self, id: Option<i64>) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "DELETE FROM candado_tasks
                 WHERE queue = $1 AND state = 'dead' AND ($2::bigint IS NULL OR id = $2)",
                &[&&*self.queue, &id],
            )
            .await?)
    }

    /// Deletes the completed tasks that finished more than `older_than`
    /// ago (retention; run it from a periodic job). Returns how many.
    pub async fn purge_finished(&self, older_than: Duration) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "DELETE FROM candado_tasks
                 WHERE queue = $1 AND state = 'done'
                   AND finished_at < now() - $2 * interval '1 millisecond'",
                &[&&*self.queue, &(millis(older_than) as f64)],
            )
            .await?)
    }

    /// The queue's tasks by state.
    pub async fn counts(&self) -> Result<QueueCounts, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT state, count(*) FROM candado_tasks WHERE queue = $1 GROUP BY state",
                &[&&*self.queue],
            )
            .await?;
        let mut counts = QueueCounts::default();
        for row in rows {
            let (state, n): (String, i64) = (row.get(0), row.get(1));
            let n = u64::try_from(n).unwrap_or(0);
            match state.as_str() {
                "ready" => counts.ready = n,
                "running" => counts.running = n,
                "done" => counts.done = n,
                _ => counts.dead = n,
            }
        }
        Ok(counts)
    }

    /// The output a completed task stored, if it is done.
    pub async fn output<O: DeserializeOwned>(&self, id: i64) -> Result<Option<O>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT output FROM candado_tasks WHERE queue = $1 AND id = $2 AND state = 'done'",
                &[&&*self.queue, &id],
            )
            .await?;
        row.map(|row| {
            serde_json::from_value(row.get(0)).map_err(|e| StoreError::Decode {
                id,
                problem: e.to_string(),
            })
        })
        .transpose()
    }

    pub(crate) fn not_found(&self, id: i64, state: &'static str) -> StoreError {
        StoreError::NotFound {
            queue: self.queue.to_string(),
            id,
            state,
        }
    }
}
