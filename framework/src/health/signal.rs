//! What a supervisor's strategies observe about its children.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ExitReason;

/// Metrics a child carries in every heartbeat. The child sets them through
/// [`ChildLink`](crate::ChildLink); the heartbeat sends the latest values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Memory the child attributes to itself, in bytes.
    pub memory_bytes: Option<u64>,
    /// Units of work in progress.
    pub in_flight: u64,
    /// Units of work finished by this incarnation.
    pub tasks_done: u64,
    /// Application counters.
    pub counters: BTreeMap<String, u64>,
}

/// One observation about a child, delivered to every strategy of its supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Signal {
    /// A new incarnation is up. Strategies start (or restart) tracking it.
    Started {
        /// Incarnation number.
        incarnation: u64,
    },
    /// The incarnation exited. Strategies forget it.
    Exited {
        /// Why.
        reason: ExitReason,
    },
    /// The child's own context is alive: sent from inside it on the heartbeat
    /// interval, so a starved event loop stops sending it. For a child with
    /// [external heartbeats](crate::ChildSpec::external_heartbeats), what it
    /// stands for is alive: sent when the child calls
    /// [`ChildLink::heartbeat`](crate::ChildLink::heartbeat).
    Heartbeat(Metrics),
    /// The supervisor pinged the child.
    PingSent {
        /// Sequence number of the ping.
        seq: u64,
    },
    /// The child answered a ping.
    Pong {
        /// Sequence number of the ping it answers.
        seq: u64,
    },
    /// The child began a long-running unit of work.
    WorkStarted {
        /// What it works on.
        label: String,
    },
    /// The child made progress on its current work.
    Progress,
    /// The child finished its current work.
    WorkFinished,
    /// A task on the child succeeded or failed, optionally through a named dependency.
    Outcome {
        /// The dependency the task used, if any (for per-dependency breakers).
        dependency: Option<String>,
        /// Whether it succeeded.
        success: bool,
    },
}
