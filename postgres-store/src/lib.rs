//! `candado-postgres`: a durable, multi-node task store for Candado pools on
//! PostgreSQL.
//!
//! Several nodes share one priority queue in a table: each claims tasks in
//! priority then FIFO order with `FOR UPDATE SKIP LOCKED`, holds a lease on
//! each while its pool runs it, renews the leases while its pool is ready,
//! and reports the end of each attempt fenced on the task, the attempt and
//! the lease holder. A node that dies (even by `kill -9`) stops renewing;
//! any node rescues its tasks once their leases expire, and a late report
//! from the dead node changes nothing. Retries are scheduled in the table
//! with the pool's backoff; dead letters keep their full history and can
//! be replayed or purged. Committed enqueues wake listening nodes through
//! `LISTEN`/`NOTIFY`, with polling as the fallback. A task can be enqueued
//! inside the application's own transaction, and with an idempotency key.
//! Per-dependency breakers live in a table every node sees.
//!
//! Semantics (at-least-once, and exactly which failures run a task twice),
//! the schema and operations: `docs/durable.md`.
//!
//! # Layout
//! - [`PgStore`], [`StoreConfig`] (`store.rs`) — connect and migrate
//!   (`migrations.rs`), claim, renew.
//! - `enqueue.rs` — enqueue one task or a batch, also in the
//!   application's transaction.
//! - `settle.rs` — complete (one or a batch), fail, release, rescue, all
//!   fenced.
//! - `dead.rs` — dead letters, replay, purge, retention, counts, outputs.
//! - [`SharedBreakerConfig`] (`breakers.rs`) — per-dependency breakers.
//! - [`Wakeups`] (`wake.rs`) — `LISTEN`/`NOTIFY`.
//! - [`DurableNode`], [`NodeConfig`] (`node.rs`) — a node: a Candado pool
//!   fed from the store; its reports of attempts' ends in `reporting.rs`.
//! - [`NewTask`], [`Claimed`], [`DeadTask`] … (`task.rs`); [`StoreError`]
//!   (`error.rs`).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod breakers;
mod dead;
mod enqueue;
mod error;
mod migrations;
mod node;
mod reporting;
mod settle;
mod store;
mod task;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
mod wake;

pub use breakers::{BreakerState, SharedBreakerConfig};
pub use error::StoreError;
pub use migrations::SCHEMA_VERSION;
pub use node::{DurableNode, NodeConfig, NodeReport};
pub use store::{PgStore, StoreConfig};
pub use task::{
    Claimed, Completion, DeadTask, Enqueued, FailOutcome, FailedAttempt, NewTask, QueueCounts,
};
pub use wake::Wakeups;
