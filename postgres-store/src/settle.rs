//! The end of an attempt, fenced: completion (also many in one
//! statement), failure (retry or dead letter), hand-back at shutdown,
//! and rescue of expired leases.

use std::time::Duration;

use rand::RngExt;
use serde::Serialize;

use crate::store::{millis, to_i32};
use crate::{Completion, FailOutcome, PgStore, StoreError};

impl PgStore {
    /// Records attempt `attempt` of task `id` as completed with `output`,
    /// if `node` still holds that attempt's lease. `false`: it did not (the
    /// lease expired and the task was rescued, or it finished otherwise),
    /// and nothing changed.
    pub async fn complete<O: Serialize>(
        &self,
        node: &str,
        id: i64,
        attempt: u32,
        output: &O,
    ) -> Result<bool, StoreError> {
        let output = serde_json::to_value(output).map_err(|e| StoreError::Encode(e.to_string()))?;
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE candado_tasks
                 SET state = 'done', output = $4, finished_at = now(),
                     lease_holder = NULL, lease_until = NULL
                 WHERE id = $1 AND attempt = $2 AND lease_holder = $3",
                &[&id, &to_i32(attempt), &node, &output],
            )
            .await?;
        Ok(n == 1)
    }

    /// Records many attempts as completed in one statement, each fenced
    /// exactly as [`complete`](Self::complete) fences one: a completion
    /// counts only if `node` still holds that task's lease for that
    /// attempt. Returns, per completion and in order, whether it counted; a
    /// fenced one changes nothing, and the others count all the same. A
    /// task named twice in one batch is settled by its first completion.
    pub async fn complete_many<O: Serialize>(
        &self,
        node: &str,
        completions: &[Completion<O>],
    ) -> Result<Vec<bool>, StoreError> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        // A task named twice is settled by its first completion: only the
        // first goes to the server.
        let mut seen = std::collections::HashSet::with_capacity(completions.len());
        let (mut ids, mut attempts, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
        for c in completions.iter().filter(|c| seen.insert(c.id)) {
            ids.push(c.id);
            attempts.push(to_i32(c.attempt));
            outputs.push(
                serde_json::to_value(&c.output).map_err(|e| StoreError::Encode(e.to_string()))?,
            );
        }
        let client = self.pool.get().await?;
        // Prepared once per connection: one round trip per batch. The
        // batch is joined on the primary key alone: a plan that also read
        // the index of running tasks (a bitmap AND) walked every entry
        // left there by finished tasks until a vacuum, and cost 2.5 times
        // the claim per task. The rescue skips rows locked here (and would
        // find them settled), so the two never wait for each other.
        let statement = client
            .prepare_cached(
                "UPDATE candado_tasks t
                 SET state = 'done', output = c.output,
                     finished_at = now(), lease_holder = NULL, lease_until = NULL
                 FROM unnest($1::bigint[], $2::int[], $3::jsonb[]) AS c(id, attempt, output)
                 WHERE t.id = c.id AND t.attempt = c.attempt
                   AND t.lease_holder = $4
                 RETURNING t.id, t.attempt",
            )
            .await?;
        let rows = client
            .query(&statement, &[&ids, &attempts, &outputs, &node])
            .await?;
        let counted: std::collections::HashSet<(i64, i32)> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(completions
            .iter()
            .map(|c| counted.contains(&(c.id, to_i32(c.attempt))))
            .collect())
    }

    /// Records attempt `attempt` of task `id` as failed with `error`, if
    /// `node` still holds its lease: the task is scheduled again after the
    /// store's backoff, or, out of retries, becomes a dead letter. Either
    /// way the attempt joins its history.
    pub async fn fail(
        &self,
        node: &str,
        id: i64,
        attempt: u32,
        error: &str,
    ) -> Result<FailOutcome, StoreError> {
        let delay = self.backoff(attempt);
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "UPDATE candado_tasks
                 SET history = history || jsonb_build_array(jsonb_build_object(
                         'attempt', attempt, 'node', lease_holder, 'error', $4::text,
                         'at_ms', (extract(epoch FROM now()) * 1000)::bigint)),
                     state = CASE WHEN attempt > max_retries THEN 'dead' ELSE 'ready' END,
                     run_at = now() + $5 * interval '1 millisecond',
                     finished_at = CASE WHEN attempt > max_retries THEN now() END,
                     lease_holder = NULL, lease_until = NULL
                 WHERE id = $1 AND attempt = $2 AND lease_holder = $3
                 RETURNING state",
                &[
                    &id,
                    &to_i32(attempt),
                    &node,
                    &error,
                    &(millis(delay) as f64),
                ],
            )
            .await?;
        Ok(match row.map(|r| r.get::<_, String>(0)) {
            None => FailOutcome::Fenced,
            Some(state) if state == "dead" => FailOutcome::Dead,
            Some(_) => FailOutcome::Retrying { after: delay },
        })
    }

    /// Hands attempt `attempt` of task `id` back unfinished (its node is
    /// shutting down): ready again at once, costing no attempt.
    pub async fn release(&self, node: &str, id: i64, attempt: u32) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE candado_tasks
                 SET state = 'ready', attempt = attempt - 1, run_at = now(),
                     lease_holder = NULL, lease_until = NULL
                 WHERE id = $1 AND attempt = $2 AND lease_holder = $3",
                &[&id, &to_i32(attempt), &node],
            )
            .await?;
        if n == 1 {
            client
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&crate::store::CHANNEL, &&*self.queue],
                )
                .await?;
        }
        Ok(n == 1)
    }

    /// Rescues the tasks of this queue whose lease expired (their node
    /// died, hangs, or lost the database): each such attempt fails with
    /// "lease expired" and the task is ready again (or dead, out of
    /// retries). Any node may call it; returns the ids rescued. A late
    /// report from the old holder is then fenced off.
    pub async fn rescue(&self) -> Result<Vec<i64>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "UPDATE candado_tasks
                 SET history = history || jsonb_build_array(jsonb_build_object(
                         'attempt', attempt, 'node', lease_holder,
                         'error', 'lease expired: its node stopped renewing it',
                         'at_ms', (extract(epoch FROM now()) * 1000)::bigint)),
                     state = CASE WHEN attempt > max_retries THEN 'dead' ELSE 'ready' END,
                     finished_at = CASE WHEN attempt > max_retries THEN now() END,
                     run_at = now(), lease_holder = NULL, lease_until = NULL
                 WHERE id IN (
                     SELECT id FROM candado_tasks
                     WHERE queue = $1 AND state = 'running' AND lease_until < now()
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id",
                &[&&*self.queue],
            )
            .await?;
        let rescued: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        if !rescued.is_empty() {
            tracing::warn!(queue = %self.queue, count = rescued.len(), ids = ?rescued, "rescued tasks whose lease expired");
            client
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&crate::store::CHANNEL, &&*self.queue],
                )
                .await?;
        }
        Ok(rescued)
    }

    /// Dead-letters a claimed task at once, with `error` as its last
    /// attempt's (its payload cannot run, or its handler marked the error
    /// permanent: no retry can help).
    pub(crate) async fn bury(
        &self,
        node: &str,
        id: i64,
        attempt: i32,
        error: &str,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE candado_tasks
                 SET history = history || jsonb_build_array(jsonb_build_object(
                         'attempt', attempt, 'node', lease_holder, 'error', $4::text,
                         'at_ms', (extract(epoch FROM now()) * 1000)::bigint)),
                     state = 'dead', finished_at = now(), lease_holder = NULL, lease_until = NULL
                 WHERE id = $1 AND attempt = $2 AND lease_holder = $3",
                &[&id, &attempt, &node, &error],
            )
            .await?;
        Ok(())
    }

    /// The delay before retry number `attempt` (the store's policy:
    /// `base × multiplier^n` up to `cap`, or the explicit `delays`, minus up
    /// to `jitter` at random).
    fn backoff(&self, attempt: u32) -> Duration {
        let backoff = self.retry.backoff();
        let raw = backoff.raw_delay(attempt.saturating_sub(1));
        let cut = rand::rng().random_range(0.0..=self.retry.jitter.clamp(0.0, 1.0));
        // Not `mul_f64`: it panics where `f64` rounding overflows (a
        // `Duration::MAX` delay).
        Duration::try_from_secs_f64(raw.as_secs_f64() * (1.0 - cut))
            .unwrap_or(raw)
            .min(raw)
    }
}
