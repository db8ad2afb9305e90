//! The run's outcomes, read from the table: each task's state, the runs
//! its history records, and the rescues of expired leases.

use std::collections::HashMap;

use candado_postgres::QueueCounts;
use tokio_postgres::NoTls;

use crate::DemoError;

/// How a rescue words the attempt it ends (`candado-postgres`).
const EXPIRED: &str = "lease expired";

/// The queue's rows, read once every node has stopped.
#[derive(Debug, Default)]
pub(super) struct Table {
    /// Tasks by state.
    pub(super) counts: QueueCounts,
    /// Every row (one per accepted task).
    pub(super) rows: u64,
    /// Tasks rescued from an expired lease.
    pub(super) rescued: u64,
    /// When each rescue happened, in ms since the epoch (the database's
    /// clock), with the node whose lease expired.
    pub(super) rescues: Vec<(String, i64)>,
    /// By task number (`seq`, when the payload has one): the runs the
    /// table records (reported failures, and the completion) and the
    /// rescues.
    pub(super) by_seq: HashMap<u64, Recorded>,
}

/// What the table records of one task's runs.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Recorded {
    /// Runs whose end was recorded: failures reported, and the completion.
    pub(super) reported: u64,
    /// Attempts ended by a rescue (their run, if it began, was lost).
    pub(super) expired: u64,
}

/// A connection of the demo's own to the queue's table.
pub(super) struct TableClient {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for TableClient {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

fn store_error(error: tokio_postgres::Error) -> DemoError {
    DemoError::Store(error.into())
}

impl TableClient {
    pub(super) async fn connect(url: &str) -> Result<Self, DemoError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(store_error)?;
        let connection = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "the demo's connection to the table failed");
            }
        });
        Ok(Self { client, connection })
    }

    /// The running tasks of `queue` whose lease `node` holds.
    pub(super) async fn held(&self, queue: &str, node: &str) -> Result<u64, DemoError> {
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM candado_tasks
                 WHERE queue = $1 AND state = 'running' AND lease_holder = $2",
                &[&queue, &node],
            )
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// Every row of `queue`.
    pub(super) async fn read(&self, queue: &str) -> Result<Table, DemoError> {
        let rows = self
            .client
            .query(
                "SELECT state, (payload->>'seq')::bigint, history FROM candado_tasks
                 WHERE queue = $1",
                &[&queue],
            )
            .await
            .map_err(store_error)?;
        let mut table = Table::default();
        for row in rows {
            let state: String = row.get(0);
            let seq: Option<i64> = row.get(1);
            let history: serde_json::Value = row.get(2);
            table.rows += 1;
            match state.as_str() {
                "ready" => table.counts.ready += 1,
                "running" => table.counts.running += 1,
                "done" => table.counts.done += 1,
                _ => table.counts.dead += 1,
            }
            let mut recorded = Recorded {
                reported: u64::from(state == "done"),
                expired: 0,
            };
            for attempt in history.as_array().into_iter().flatten() {
                let error = attempt["error"].as_str().unwrap_or_default();
                if error.starts_with(EXPIRED) {
                    recorded.expired += 1;
                    let node = attempt["node"].as_str().unwrap_or_default().to_owned();
                    table
                        .rescues
                        .push((node, attempt["at_ms"].as_i64().unwrap_or(0)));
                } else {
                    recorded.reported += 1;
                }
            }
            table.rescued += u64::from(recorded.expired > 0);
            if let Some(seq) = seq.and_then(|s| u64::try_from(s).ok()) {
                table.by_seq.insert(seq, recorded);
            }
        }
        Ok(table)
    }
}
