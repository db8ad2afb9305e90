//! `candado-observe`: see a Candado application live.
//!
//! An [`Observer`] watches a [`Runtime`](candado::Runtime)'s event bus, the
//! supervision trees and the [pools](candado_pool::Pool) it is given, and
//! renders their metrics in the OpenMetrics text format
//! ([`Observer::render_metrics`]), with `prometheus-client`. With the `http`
//! feature (on by default) it serves them: `/metrics`, `/healthz`,
//! `/readyz`, `/api/tree` (JSON) and `/api/events` (server-sent events).
//! Every metric, with its labels and meaning, is listed in
//! `docs/observability.md`.
//!
//! Two kinds of figure, two sources:
//! - counts of *transitions* (restarts by reason, verdicts, heal-limit
//!   refusals, escalations, stuck threads) come from the runtime's event
//!   stream, counted as they happen on the observer's own thread. A counter
//!   cannot be rebuilt from a snapshot, so events the observer missed
//!   because it fell behind are counted too
//!   (`candado_events_lagged_total`);
//! - *states* (children by state and health, the pools' queues, workers,
//!   task totals, breakers, latencies) are read from snapshots at each
//!   scrape, so a scrape after a lag is as right as any other.
//!
//! Labels are bounded: supervisor paths, child ids, reason kinds, strategy
//! names, dependency names, worker ids and priorities; never task ids.
//!
//! # Layout
//! - [`Observer`], [`ObserverBuilder`] — what is watched; scrape, probe, tree.
//! - `events.rs` — the counters fed by the event stream; `feed.rs` — the
//!   loop that counts each event, then passes it on ([`EventFeed`]).
//! - `snapshot.rs` — what a scrape reads: tree walks, pool metrics, breakers.
//! - `tree_metrics.rs`, `pool_metrics.rs`, `distribution.rs` — how a
//!   snapshot is encoded; `encode.rs` the shared writing, `labels.rs` the
//!   bounded label vocabulary.
//! - [`TreeSnapshot`] — a supervision tree with its subtrees, as served at
//!   `/api/tree`.
//! - [`Readiness`] — the answers of the health and readiness probes.
//! - [`ProcessMemory`], [`MemoryProbe`] — the measured RSS of process workers.
//! - `http.rs`, `http/sse.rs` (feature `http`) — `Observer::serve`, the
//!   endpoints and the event stream; `ObserveServer` stops it.
//!
//! # Example
//! ```no_run
//! use candado::{Runtime, SupervisorSpec};
//! use candado_observe::Observer;
//!
//! actix::System::new().block_on(async {
//!     let runtime = Runtime::builder().build().unwrap();
//!     let root = runtime.start(SupervisorSpec::new("app")).await.unwrap();
//!     let observer = Observer::builder(&runtime).tree(&root).build().unwrap();
//!     let text = observer.render_metrics().await;
//!     assert!(text.ends_with("# EOF\n"));
//!     # #[cfg(feature = "http")]
//!     let server = observer.serve("127.0.0.1:9464").unwrap();
//!     # #[cfg(feature = "http")]
//!     println!("metrics at http://{}/metrics", server.local_addr());
//! });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

#[cfg(test)]
mod catalog;
mod distribution;
mod encode;
mod error;
mod events;
mod feed;
mod history;
#[cfg(feature = "http")]
mod http;
mod labels;
mod memory;
mod observer;
mod pool_metrics;
mod pools;
mod readiness;
mod snapshot;
#[cfg(test)]
mod test_support;
mod tree;
mod tree_metrics;

pub use error::ObserveError;
pub use feed::EventFeed;
pub use history::HistoryPoint;
#[cfg(feature = "http")]
pub use http::ObserveServer;
pub use memory::{MemoryProbe, ProcessMemory};
pub use observer::{Observer, ObserverBuilder, DEFAULT_PROBE_TIMEOUT};
pub use pools::{DeadLetter, PoolDeadLetters, PoolView, DEAD_LETTERS_SHOWN};
pub use readiness::Readiness;
pub use tree::TreeSnapshot;
