//! A process's exit status, turned into the exit reason of its child.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use candado::{ExitReason, HealthCause, MemoryCause};
use nix::sys::signal::Signal;

use crate::child::BRAKE_EXIT_CODE;

/// The name strategies and events show for reasons this crate gives.
pub(crate) const STRATEGY: &str = "process";

/// What ended: a worker (a Rust program of ours, so exit 101 is a panic
/// and 42 the memory brake) or an external service (any program: its
/// codes mean nothing to us beyond 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Program {
    Worker,
    Service,
}

impl Program {
    fn noun(self) -> &'static str {
        match self {
            Program::Worker => "worker",
            Program::Service => "service",
        }
    }
}

/// Maps how a process ended to its child's exit reason:
///
/// | status | reason |
/// |---|---|
/// | exit 0 | `Normal` |
/// | exit 101 (a Rust panic; workers only) | `Panic`, with the message found in stderr |
/// | exit 42 ([`BRAKE_EXIT_CODE`]; workers only) | `Unhealthy` with cause `Memory(Brake)` |
/// | another code | `Failed("exit code N")` |
/// | a signal | `Failed("killed by SIGNAME")` |
///
/// Every abnormal reason ends with the last stderr lines.
pub(crate) fn exit_reason(
    program: Program,
    status: ExitStatus,
    stderr_tail: &[String],
    panic_report: &[String],
) -> ExitReason {
    let tail = tail_text(stderr_tail);
    let noun = program.noun();
    let worker = program == Program::Worker;
    match (status.code(), status.signal()) {
        (Some(0), _) => ExitReason::Normal,
        (Some(101), _) if worker => {
            let message = panic_message(panic_report)
                .or_else(|| panic_message(stderr_tail))
                .unwrap_or_else(|| "exit code 101".to_owned());
            ExitReason::Panic(format!("{message}{tail}"))
        }
        (Some(BRAKE_EXIT_CODE), _) if worker => ExitReason::Unhealthy {
            strategy: STRATEGY.to_owned(),
            cause: HealthCause::Memory(MemoryCause::Brake),
            reason: format!(
                "the worker exited with code {BRAKE_EXIT_CODE}, the memory brake{tail}"
            ),
        },
        (Some(code), _) => ExitReason::Failed(format!("the {noun} exited with code {code}{tail}")),
        (None, Some(signal)) => {
            let name = Signal::try_from(signal).map_or("an unknown signal", |s| s.as_str());
            let core = if status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            };
            ExitReason::Failed(format!("the {noun} was killed by {name}{core}{tail}"))
        }
        (None, None) => ExitReason::Failed(format!("the {noun} ended: {status}{tail}")),
    }
}

fn tail_text(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; stderr tail:\n{}", lines.join("\n"))
    }
}

/// The message of the last Rust panic in stderr: the lines after
/// `thread '…' panicked at file:line:col:`, up to the backtrace note.
fn panic_message(lines: &[String]) -> Option<String> {
    let start = lines.iter().rposition(|l| l.contains("panicked at"))?;
    let header = &lines[start];
    // Before Rust 1.73 the message was on the header line itself.
    if let Some((_, message)) = header.split_once("panicked at '") {
        return Some(
            message
                .rsplit_once("', ")
                .map_or(message, |(m, _)| m)
                .to_owned(),
        );
    }
    let message: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| !l.starts_with("note: ") && !l.starts_with("stack backtrace:"))
        .map(String::as_str)
        .collect();
    (!message.is_empty()).then(|| message.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn each_status_maps_to_its_reason() {
        assert_eq!(
            exit_reason(Program::Worker, ExitStatus::from_raw(0), &[], &[]),
            ExitReason::Normal
        );
        let tail = lines(
            "starting\nthread 'candado-handler' panicked at src/main.rs:3:5:\nbad input: 7\nnote: run with `RUST_BACKTRACE=1`",
        );
        match exit_reason(Program::Worker, ExitStatus::from_raw(101 << 8), &tail, &[]) {
            ExitReason::Panic(text) => {
                assert!(text.starts_with("bad input: 7; stderr tail:"), "{text}");
                assert!(text.contains("starting"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let brake = exit_reason(Program::Worker, ExitStatus::from_raw(42 << 8), &[], &[]);
        assert_eq!(
            brake.cause(),
            candado::RestartCause::Health(HealthCause::Memory(MemoryCause::Brake))
        );
        assert_eq!(
            exit_reason(Program::Worker, ExitStatus::from_raw(7 << 8), &[], &[]),
            ExitReason::Failed("the worker exited with code 7".into())
        );
        // SIGABRT with a core dump (0x80).
        match exit_reason(
            Program::Worker,
            ExitStatus::from_raw(6 | 0x80),
            &lines("about to abort"),
            &[],
        ) {
            ExitReason::Failed(text) => {
                assert!(
                    text.starts_with("the worker was killed by SIGABRT (core dumped)"),
                    "{text}"
                );
                assert!(text.ends_with("about to abort"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_service_s_codes_are_only_codes() {
        for code in [101, 42, 7] {
            assert_eq!(
                exit_reason(Program::Service, ExitStatus::from_raw(code << 8), &[], &[]),
                ExitReason::Failed(format!("the service exited with code {code}"))
            );
        }
        match exit_reason(Program::Service, ExitStatus::from_raw(9), &[], &[]) {
            ExitReason::Failed(text) => assert_eq!(text, "the service was killed by SIGKILL"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_panic_message_is_found_in_old_and_new_formats_or_not_at_all() {
        let old = lines("thread 'main' panicked at 'boom', src/main.rs:2:5");
        assert_eq!(panic_message(&old).as_deref(), Some("boom"));
        let multi = lines("thread 'x' panicked at a.rs:1:1:\nline one\nline two");
        assert_eq!(panic_message(&multi).as_deref(), Some("line one\nline two"));
        assert_eq!(panic_message(&lines("nothing to see")), None);
        assert_eq!(
            exit_reason(Program::Worker, ExitStatus::from_raw(101 << 8), &[], &[]),
            ExitReason::Panic("exit code 101".into())
        );
        // The report kept apart wins over a tail full of backtrace.
        let report = lines("thread 'x' panicked at a.rs:1:1:\nkept apart");
        let reason = exit_reason(
            Program::Worker,
            ExitStatus::from_raw(101 << 8),
            &lines("  9: frame"),
            &report,
        );
        assert!(
            matches!(reason, ExitReason::Panic(ref m) if m.starts_with("kept apart;")),
            "{reason:?}"
        );
    }
}
