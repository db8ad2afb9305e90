//! How a pool stops, and the books it returns.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::TaskId;

/// How to stop a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Stop intake, let queued and running work finish within `deadline`,
    /// then return what is left to its submitters.
    Graceful {
        /// How long to wait for the work to drain.
        deadline: Duration,
    },
    /// Stop intake and cancel running attempts now; every unfinished task
    /// is handled by `unfinished`.
    Immediate {
        /// What happens to unfinished tasks.
        unfinished: UnfinishedAction,
    },
}

/// What an immediate shutdown does with unfinished tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnfinishedAction {
    /// Hand the task back to its submitter ([`TaskFailure::Returned`](crate::TaskFailure::Returned)).
    #[default]
    Return,
    /// Dead-letter it with reason `shutdown`.
    DeadLetter,
}

/// The books at shutdown: `submitted = completed + dead_lettered + returned`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownReport {
    /// Tasks accepted over the pool's life.
    pub submitted: u64,
    /// Tasks that succeeded.
    pub completed: u64,
    /// Tasks dead-lettered (retries exhausted, or at shutdown).
    pub dead_lettered: u64,
    /// Tasks handed back unfinished.
    pub returned: u64,
    /// Ids of the tasks the shutdown itself ended (returned or dead-lettered).
    pub unfinished: Vec<TaskId>,
}

impl ShutdownReport {
    /// Whether every submitted task is accounted for exactly once.
    pub fn balanced(&self) -> bool {
        self.submitted == self.completed + self.dead_lettered + self.returned
    }

    /// Tasks that are in none of the three outcomes (must be 0).
    pub fn lost(&self) -> i128 {
        i128::from(self.submitted) - i128::from(self.completed + self.dead_lettered + self.returned)
    }
}
