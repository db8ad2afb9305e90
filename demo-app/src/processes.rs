//! What became of the workers, from the runtime's events: worker starts
//! (with process isolation, each is a process spawned), abnormal ends by
//! kind, and worker threads retired as stuck.
//!
//! The events are read as they come, by a task of their own, so a long run
//! cannot leave them behind in the runtime's bounded buffer.

use std::collections::BTreeMap;

use candado::{EventKind, EventStream, EventStreamError, ExitReason, HealthCause, MemoryCause};
use tokio::sync::oneshot;

/// What the events told.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Tally {
    /// Worker incarnations started (the first ones and their replacements).
    pub(crate) started: u64,
    /// Workers that ended abnormally, by [`kind`].
    pub(crate) ended: BTreeMap<String, u64>,
    /// Worker threads retired as stuck.
    pub(crate) stuck_threads: u64,
    /// Events dropped because the buffer overflowed (0 in practice): the
    /// counts above are then lower bounds.
    pub(crate) missed: u64,
}

/// Why a worker (with process isolation, its process) ended, as the
/// report counts it; `None` for a normal end or a stop the supervisor
/// asked for (shutdown, scale-down).
///
/// Typed causes where the framework has them: `liveness`, `memory` (over
/// its limit by measured RSS), `brake` (the process exited 42, the brake
/// code of `candado_process::brake()`), `age`, `panic`, `killed` (past its
/// shutdown timeout), `start_failed`. The pool gives every other end of a
/// worker process the one cause `failed`, so these are told apart by the
/// reason's text, as the pool and `candado-process` word it (see
/// `docs/process.md`): `timeout` (a task ignored its timeout and the pool
/// killed the process), `stack_overflow` (SIGABRT after "has overflowed
/// its stack"), `signal` (abort, SIGSEGV, the OOM killer), `exit_code`.
pub(crate) fn kind(reason: &ExitReason) -> Option<&'static str> {
    Some(match reason {
        ExitReason::Normal | ExitReason::Shutdown => return None,
        ExitReason::Unhealthy {
            strategy,
            cause: HealthCause::Memory(MemoryCause::Brake),
            ..
        } if strategy == "process" => "brake",
        // The pool kills the process of a task that ignored its timeout.
        ExitReason::Unhealthy { strategy, .. } if strategy == "task_timeout" => "timeout",
        ExitReason::Unhealthy { cause, .. } => cause.key(),
        ExitReason::Failed(text) if text.contains("has overflowed its stack") => "stack_overflow",
        ExitReason::Failed(text) if text.contains("was killed by SIG") => "signal",
        ExitReason::Failed(text) if text.contains("exited with code") => "exit_code",
        other => other.cause().key(),
    })
}

/// Reads a runtime's events until [`finish`](Self::finish)ed.
#[derive(Debug)]
pub(crate) struct EventWatch {
    stop: oneshot::Sender<()>,
    tally: tokio::task::JoinHandle<Tally>,
}

impl EventWatch {
    /// Tallies `events`, counting the workers of the supervisor at `path`.
    /// Must run inside an actix `System`.
    pub(crate) fn start(events: EventStream, path: String) -> Self {
        let (stop, stopped) = oneshot::channel();
        let tally = actix::spawn(watch(events, path, stopped));
        Self { stop, tally }
    }

    /// Tallies what is left in the buffer, and returns the tally.
    pub(crate) async fn finish(self) -> Tally {
        let _ = self.stop.send(());
        self.tally.await.unwrap_or_default()
    }
}

async fn watch(mut events: EventStream, path: String, mut stop: oneshot::Receiver<()>) -> Tally {
    let mut tally = Tally::default();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => count(&mut tally, &path, event),
                Err(EventStreamError::Lagged(n)) => tally.missed += n,
                Err(EventStreamError::Closed) => return tally,
            },
            _ = &mut stop => break,
        }
    }
    loop {
        match events.try_recv() {
            Ok(Some(event)) => count(&mut tally, &path, event),
            Err(EventStreamError::Lagged(n)) => tally.missed += n,
            Ok(None) | Err(EventStreamError::Closed) => return tally,
        }
    }
}

fn count(tally: &mut Tally, path: &str, event: candado::Event) {
    match event.kind {
        EventKind::ThreadStuck { .. } => tally.stuck_threads += 1,
        _ if event.supervisor != path => {}
        EventKind::ChildStarted { .. } => tally.started += 1,
        EventKind::ChildExited { reason, .. } => {
            if let Some(kind) = kind(&reason) {
                *tally.ended.entry(kind.to_owned()).or_default() += 1;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_of_a_worker_process_has_its_kind() {
        let unhealthy = |strategy: &str, cause| ExitReason::Unhealthy {
            strategy: strategy.into(),
            cause,
            reason: "any words".into(),
        };
        let failed = |text: &str| ExitReason::Failed(text.into());
        let cases = [
            (ExitReason::Shutdown, None),
            (ExitReason::Normal, None),
            (
                unhealthy(
                    "liveness",
                    HealthCause::Liveness(candado::LivenessCause::Stuck),
                ),
                Some("liveness"),
            ),
            (
                unhealthy("memory", HealthCause::Memory(MemoryCause::Critical)),
                Some("memory"),
            ),
            (
                unhealthy("process", HealthCause::Memory(MemoryCause::Brake)),
                Some("brake"),
            ),
            (
                unhealthy("memory", HealthCause::Memory(MemoryCause::Age)),
                Some("age"),
            ),
            (
                unhealthy(
                    "task_timeout",
                    HealthCause::Liveness(candado::LivenessCause::Stuck),
                ),
                Some("timeout"),
            ),
            (
                failed("the worker was killed by SIGABRT; stderr tail:\nthread 'candado-handler' has overflowed its stack"),
                Some("stack_overflow"),
            ),
            (failed("the worker was killed by SIGABRT"), Some("signal")),
            (failed("the worker exited with code 3"), Some("exit_code")),
            (failed("protocol error: garbled"), Some("failed")),
            (ExitReason::Panic("boom".into()), Some("panic")),
            (ExitReason::Killed, Some("killed")),
        ];
        for (reason, expected) in cases {
            assert_eq!(kind(&reason), expected, "{reason:?}");
        }
    }
}
