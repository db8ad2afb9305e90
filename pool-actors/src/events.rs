//! What a pool publishes about its tasks and workers.

use serde::{Deserialize, Serialize};

use crate::{AttemptError, ShutdownReport, TaskId};

/// One thing that happened in a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PoolEvent {
    /// A task finished successfully.
    TaskCompleted {
        /// The task.
        id: TaskId,
        /// Worker that ran it.
        worker: String,
        /// Attempt that succeeded (1 for the first).
        attempt: u32,
        /// Submit-to-result time in milliseconds.
        latency_ms: u64,
    },
    /// One attempt of a task failed.
    TaskFailed {
        /// The task.
        id: TaskId,
        /// Worker that ran it.
        worker: String,
        /// The attempt.
        attempt: u32,
        /// Why.
        error: AttemptError,
    },
    /// A failed task will run again after a delay.
    TaskRetried {
        /// The task.
        id: TaskId,
        /// The attempt that will run next.
        next_attempt: u32,
        /// Delay before it is queued again, in milliseconds.
        delay_ms: u64,
    },
    /// A task exhausted its retries (or was dead-lettered at shutdown).
    TaskDeadLettered {
        /// The task.
        id: TaskId,
        /// Attempts made.
        attempts: u32,
        /// Why it is dead.
        reason: String,
    },
    /// The dead-letter store was full; its oldest task was dropped.
    DeadLetterEvicted {
        /// The evicted task.
        id: TaskId,
    },
    /// A worker incarnation registered and takes work.
    WorkerStarted {
        /// Worker id.
        worker: String,
        /// Incarnation.
        incarnation: u64,
    },
    /// A worker incarnation left; the attempts it held failed.
    WorkerExited {
        /// Worker id.
        worker: String,
        /// Incarnation.
        incarnation: u64,
        /// Attempts it held.
        lost_attempts: u32,
    },
    /// A worker came back as a new incarnation.
    WorkerRestarted {
        /// Worker id.
        worker: String,
        /// New incarnation.
        incarnation: u64,
        /// Why the previous incarnation ended: its exit's cause key
        /// (`panic`, `liveness`, `memory`, `age`, `tasks`, `killed`, ...,
        /// as in `restarts_by_reason`); `None` if the pool had not yet
        /// heard of that exit when the new incarnation registered.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Liveness found a worker silent or stuck and ordered its restart.
    ZombieDetected {
        /// Worker id.
        worker: String,
        /// Liveness's reason.
        reason: String,
    },
    /// The pool changed size.
    Scaled {
        /// Size before.
        from: usize,
        /// Size after.
        to: usize,
    },
    /// A graceful shutdown began: intake is closed, and the tasks held may
    /// finish until the deadline (then the rest are handed back). Emitted
    /// once, by the call that starts the drain.
    DrainStarted {
        /// Milliseconds the tasks held have to finish (`u64::MAX`: no
        /// deadline, e.g. for `Duration::MAX`).
        deadline_ms: u64,
        /// Tasks waiting (ready, or waiting for a retry) when it began.
        queued: u64,
        /// Tasks held by workers when it began.
        in_flight: u64,
    },
    /// The pool shut down.
    ShutDown(ShutdownReport),
    /// The pool can run no more work: its worker supervisor gave up
    /// (restart intensity exceeded). Held tasks were dead-lettered; new
    /// submissions are refused.
    Failed {
        /// Why the supervisor stopped.
        reason: String,
    },
}
