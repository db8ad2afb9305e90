//! Records a runtime's events; waits for one without losing the rest.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use thiserror::Error;

use crate::{Event, EventKind, EventStream, EventStreamError, Runtime};

/// Why [`EventRecorder::wait_for`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WaitError {
    /// No matching event came within the (virtual) timeout.
    #[error("no matching event within {waited:?}; {skipped} other events are kept")]
    Timeout {
        /// The timeout that ran out.
        waited: Duration,
        /// Events received and kept unconsumed meanwhile.
        skipped: usize,
    },
    /// The recorder fell behind the runtime's event buffer and lost this
    /// many events: the test cannot trust what it saw.
    #[error("the recorder lagged; {0} events were lost")]
    Lagged(u64),
    /// The runtime is gone and no matching event is left.
    #[error("the event stream closed")]
    Closed,
}

/// A stream of events a [`Recorder`] can record: a runtime's
/// [`EventStream`], or a pool's events (in `candado_pool::testkit`).
pub trait EventSource {
    /// What the stream carries.
    type Event: Clone;

    /// Waits for the next event.
    fn recv(&mut self) -> impl Future<Output = Result<Self::Event, EventStreamError>>;

    /// The next event if one is already queued.
    fn try_recv(&mut self) -> Result<Option<Self::Event>, EventStreamError>;
}

impl EventSource for EventStream {
    type Event = Event;

    fn recv(&mut self) -> impl Future<Output = Result<Event, EventStreamError>> {
        EventStream::recv(self)
    }

    fn try_recv(&mut self) -> Result<Option<Event>, EventStreamError> {
        EventStream::try_recv(self)
    }
}

/// A recorder of a runtime's events.
pub type EventRecorder = Recorder<EventStream>;

/// Every event of a stream, kept: a wait for one event leaves the ones it
/// skipped for later waits and for [`drain`](Self::drain).
///
/// [`EventStream::wait_for`] drops what it skips; this does not, so a test
/// can wait for a restart and still check the exit that came before it.
///
/// ```
/// use std::time::Duration;
/// use candado::testkit::{self, EventRecorder, MockChild, Quit};
/// use candado::{ChildSpec, EventKind, Restart, SupervisorSpec};
///
/// testkit::run_paused(|| async {
///     let (factory, mock) = MockChild::factory();
///     let spec = SupervisorSpec::new("root")
///         .child(ChildSpec::worker("w", factory).restart(Restart::Transient));
///     let (runtime, events, _root) = testkit::start_local(spec).await;
///     let mut events = EventRecorder::new(events);
///     mock.addr().unwrap().do_send(Quit);
///     events
///         .wait_for(Duration::from_secs(1), |e| matches!(e.kind, EventKind::ChildExited { .. }))
///         .await
///         .unwrap();
///     // The start before the exit was skipped by the wait, not lost:
///     assert_eq!(testkit::starts(&events.drain()), [("root".to_string(), "w".to_string())]);
///     runtime.shutdown().await;
/// });
/// ```
#[derive(Debug)]
pub struct Recorder<S: EventSource> {
    stream: S,
    /// Received and not yet handed out, in order.
    pending: VecDeque<S::Event>,
    /// Every event received, handed out or not.
    history: Vec<S::Event>,
    /// Events the stream reported lost.
    lost: u64,
    closed: bool,
}

impl Recorder<EventStream> {
    /// Subscribes to `runtime` and records from now on.
    pub fn subscribe(runtime: &Runtime) -> Self {
        Self::new(runtime.subscribe())
    }
}

impl<S: EventSource> Recorder<S> {
    /// Records `stream` from now on.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            pending: VecDeque::new(),
            history: Vec::new(),
            lost: 0,
            closed: false,
        }
    }

    /// Takes every event received so far and not yet handed out, in order
    /// (events already queued on the stream included).
    pub fn drain(&mut self) -> Vec<S::Event> {
        self.pull();
        self.pending.drain(..).collect()
    }

    /// Every event received so far, handed out or not, in order.
    pub fn history(&mut self) -> &[S::Event] {
        self.pull();
        &self.history
    }

    /// Events the recorder lost because it fell behind (0 in a sound test).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Waits up to `timeout` (virtual time, on a paused clock) for the first
    /// event, old or new, that satisfies `predicate`, and hands it out.
    /// Every other event stays for later waits and [`drain`](Self::drain).
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut predicate: impl FnMut(&S::Event) -> bool,
    ) -> Result<S::Event, WaitError> {
        self.pull();
        let earlier = self.pending.iter().position(&mut predicate);
        if let Some(event) = earlier.and_then(|at| self.pending.remove(at)) {
            return Ok(event);
        }
        if self.lost > 0 {
            return Err(WaitError::Lagged(self.lost));
        }
        let deadline = crate::clock::after(tokio::time::Instant::now(), timeout);
        loop {
            if self.closed {
                return Err(WaitError::Closed);
            }
            match tokio::time::timeout_at(deadline, self.stream.recv()).await {
                Err(_) => {
                    return Err(WaitError::Timeout {
                        waited: timeout,
                        skipped: self.pending.len(),
                    })
                }
                Ok(Err(EventStreamError::Lagged(n))) => {
                    self.lost += n;
                    return Err(WaitError::Lagged(self.lost));
                }
                Ok(Err(EventStreamError::Closed)) => self.closed = true,
                Ok(Ok(event)) => {
                    self.history.push(event.clone());
                    if predicate(&event) {
                        return Ok(event);
                    }
                    self.pending.push_back(event);
                }
            }
        }
    }

    /// Moves every event already queued on the stream into the recorder.
    fn pull(&mut self) {
        while !self.closed {
            match self.stream.try_recv() {
                Ok(Some(event)) => {
                    self.history.push(event.clone());
                    self.pending.push_back(event);
                }
                Ok(None) => return,
                Err(EventStreamError::Lagged(n)) => self.lost += n,
                Err(EventStreamError::Closed) => self.closed = true,
            }
        }
    }
}

/// Collects every event already queued on `stream` (stopping at a lag or
/// the end of the stream).
pub fn drain(stream: &mut EventStream) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(Some(event)) = stream.try_recv() {
        out.push(event);
    }
    out
}

/// `(supervisor, child)` of every `child_started` event, in order.
pub fn starts(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ChildStarted { child, .. } => Some((e.supervisor.clone(), child.clone())),
            _ => None,
        })
        .collect()
}

/// The delay of every `restart_scheduled` event, in milliseconds, in
/// order: the restart schedule a tree actually followed.
pub fn restart_delays_ms(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::RestartScheduled { delay_ms, .. } => Some(delay_ms),
            _ => None,
        })
        .collect()
}

/// `(supervisor, child)` of every `child_exited` event, in order.
pub fn exits(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ChildExited { child, .. } => Some((e.supervisor.clone(), child.clone())),
            _ => None,
        })
        .collect()
}

/// The first event among `events` whose kind satisfies `predicate`.
pub fn find(events: &[Event], predicate: impl Fn(&EventKind) -> bool) -> Option<&Event> {
    events.iter().find(|e| predicate(&e.kind))
}
