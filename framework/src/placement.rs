//! Where an actor runs: the control thread or a worker thread.

use serde::{Deserialize, Serialize};

/// The thread an actor runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// The control thread: supervisors only, never child code.
    Control,
    /// Worker thread number `n` (0-based).
    Worker(usize),
}
