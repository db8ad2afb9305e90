//! What the demo saw, tallied from the event stream.

use std::collections::BTreeMap;

use candado::{Event, EventKind, ExitReason};
use serde::Serialize;

/// Counters the demo prints at the end (as a table, or as JSON).
#[derive(Debug, Default, Serialize)]
pub(crate) struct Summary {
    pub(crate) elapsed_ms: u64,
    pub(crate) requests_ok: u64,
    pub(crate) requests_failed: u64,
    /// Restarts per `supervisor/child`.
    pub(crate) restarts: BTreeMap<String, u32>,
    /// Exits per reason kind (`panic`, `shutdown`, `escalated`, ...).
    pub(crate) exits: BTreeMap<String, u32>,
    pub(crate) gave_up: Vec<String>,
    pub(crate) escalated: Vec<String>,
    pub(crate) fatal: bool,
    pub(crate) root_exit: Option<ExitReason>,
}

impl Summary {
    pub(crate) fn record(&mut self, event: &Event) {
        match &event.kind {
            EventKind::ChildRestarted { child, .. } => {
                *self
                    .restarts
                    .entry(format!("{}/{child}", event.supervisor))
                    .or_default() += 1;
            }
            EventKind::ChildExited { reason, .. } => {
                *self
                    .exits
                    .entry(reason_kind(reason).to_owned())
                    .or_default() += 1;
            }
            EventKind::GaveUp { .. } => self.gave_up.push(event.supervisor.clone()),
            EventKind::Escalated { .. } => self.escalated.push(event.supervisor.clone()),
            EventKind::Fatal { .. } => self.fatal = true,
            _ => {}
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<32} {v}\n"));
        out.push_str("Candado demo summary\n");
        line(&mut out, "elapsed", format!("{} ms", self.elapsed_ms));
        line(&mut out, "requests answered", self.requests_ok.to_string());
        line(
            &mut out,
            "requests failed (engine panicked)",
            self.requests_failed.to_string(),
        );
        for (reason, n) in &self.exits {
            line(&mut out, &format!("exits: {reason}"), n.to_string());
        }
        for (child, n) in &self.restarts {
            line(&mut out, &format!("restarts: {child}"), n.to_string());
        }
        line(
            &mut out,
            "gave up (intensity exceeded)",
            self.gave_up.join(", "),
        );
        line(&mut out, "escalated to parent", self.escalated.join(", "));
        line(&mut out, "root gave up (fatal)", self.fatal.to_string());
        if let Some(exit) = &self.root_exit {
            line(&mut out, "root exit", exit.to_string());
        }
        out
    }
}

fn reason_kind(reason: &ExitReason) -> &'static str {
    match reason {
        ExitReason::Normal => "normal",
        ExitReason::Shutdown => "shutdown",
        ExitReason::Killed => "killed",
        ExitReason::Panic(_) => "panic",
        ExitReason::Failed(_) => "failed",
        ExitReason::StartFailed(_) => "start_failed",
        ExitReason::Escalated { .. } => "escalated",
        ExitReason::Unhealthy { .. } => "unhealthy",
    }
}
