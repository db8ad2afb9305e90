//! A child's view of its supervisor: the one narrow interface through which
//! the child side (the link, the exit guard, the factory that builds an
//! incarnation) reports to the supervisor above it.
//!
//! The child side reports three things about an incarnation: that it
//! started (or failed to), that it exited and why, and the signals that must
//! reach the supervisor one by one (task outcomes). Everything else travels
//! the other way or without messages: orders come down the control line, and
//! heartbeats, pongs, work reports and metrics are stamped into the
//! incarnation's shared pulse for the supervisor to collect (`link.rs`).
//!
//! The supervisor implements [`Parent`] for its address; the child side
//! holds an `Arc<dyn Parent>`, one per supervisor, cloned into each
//! incarnation, and never names the supervisor actor. So the child side
//! compiles, and is tested, without it, and a child of another kind (an OS
//! process behind a proxy, a test double) reports through the same calls.

use std::any::Any;
use std::fmt;

use actix::Message;

use crate::exit::ExitReason;
use crate::health::Signal;

/// Where a child's reports go. Each call is a send that never blocks and
/// never panics (an exit is reported during unwinding, where a second panic
/// would abort the process); a report to a supervisor that is gone is lost.
pub(crate) trait Parent: fmt::Debug + Send + Sync + 'static {
    /// An incarnation's start finished (from its thread, or from a child
    /// supervisor once its own children are up).
    fn started(&self, report: ChildStarted);
    /// Several incarnations' starts finished, in this order (a batch of
    /// starts on one thread, `start_batch.rs`): one report for all.
    fn started_all(&self, reports: Vec<ChildStarted>) {
        for report in reports {
            self.started(report);
        }
    }
    /// An incarnation exited (from its exit guard).
    fn exited(&self, report: ChildExited);
    /// A signal from inside an incarnation that must not wait for the tick.
    fn signal(&self, report: ChildSignal);
}

/// An incarnation's start finished.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChildStarted {
    pub(crate) key: u64,
    pub(crate) incarnation: u64,
    /// Its address, for lookups (`None`: its factory declined to start,
    /// OTP's `ignore`), or why it did not start.
    pub(crate) result: Result<Option<Box<dyn ErasedAddr>>, String>,
}

/// Several incarnations' starts finished, in order (see [`Parent::started_all`]).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChildrenStarted(pub(crate) Vec<ChildStarted>);

/// An incarnation exited.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChildExited {
    pub(crate) key: u64,
    pub(crate) incarnation: u64,
    pub(crate) reason: ExitReason,
}

/// A signal from inside an incarnation (a task outcome).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChildSignal {
    pub(crate) key: u64,
    pub(crate) incarnation: u64,
    pub(crate) signal: Signal,
}

/// A type-erased, clonable actor address kept by the supervisor for lookups.
pub(crate) trait ErasedAddr: Send {
    fn clone_any(&self) -> Box<dyn Any + Send>;
}

impl<T: Clone + Send + 'static> ErasedAddr for T {
    fn clone_any(&self) -> Box<dyn Any + Send> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::link::{self, Incarnation};

    /// A parent that is no supervisor: it writes down what it is told.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Recorder {
        fn note(&self, line: String) {
            self.0.lock().unwrap().push(line);
        }
    }

    impl Parent for Recorder {
        fn started(&self, r: ChildStarted) {
            self.note(format!(
                "started {}#{} {}",
                r.key,
                r.incarnation,
                r.result.is_ok()
            ));
        }
        fn exited(&self, r: ChildExited) {
            self.note(format!("exited {}#{} {:?}", r.key, r.incarnation, r.reason));
        }
        fn signal(&self, r: ChildSignal) {
            self.note(format!("signal {}#{} {:?}", r.key, r.incarnation, r.signal));
        }
    }

    #[test]
    fn the_child_side_reports_to_any_parent_and_heartbeats_stay_in_the_pulse() {
        let parent = Arc::new(Recorder::default());
        let incarnation = Incarnation::new(parent.clone(), 7, "w".into(), 3);
        let pulse = incarnation.pulse().clone();
        let (link, _control, wiring) = link::wire(incarnation.clone(), None);
        incarnation.report_start(Ok(Some(Box::new(()))));
        link.report_outcome(Some("db"), false);
        link.heartbeat();
        // Never attached to an actor: dropping the wiring drops the exit
        // guard, which reports a normal exit.
        drop(wiring);
        assert_eq!(
            *parent.0.lock().unwrap(),
            [
                "started 7#3 true",
                "signal 7#3 Outcome { dependency: Some(\"db\"), success: false }",
                "exited 7#3 Normal",
            ]
        );
        let mut seen = 0;
        let news = pulse.collect(&mut seen).expect("the heartbeat");
        assert!(news.beat.is_some());
    }
}
