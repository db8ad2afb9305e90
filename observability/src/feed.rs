//! The feed: reads the runtime's event stream on the observer's thread,
//! counts each event, then passes it on to subscribers.
//!
//! If the observer falls behind, the bus drops events for it and says how
//! many: the gap is counted (`events_lagged`), passed on, and the
//! counting goes on with the next event kept.

use std::future::Future;

use candado::{Event, EventStream, EventStreamError};
use tokio::sync::broadcast;

use crate::events::EventCounters;

/// What the observer passes on: an event it counted, or a gap.
#[derive(Debug, Clone)]
pub(crate) enum Feed {
    Event(Event),
    /// The bus dropped this many events before the observer read them.
    Lagged(u64),
}

/// Where events come from: the runtime's stream, or a script in tests.
pub(crate) trait EventSource: Send + 'static {
    fn next_event(&mut self) -> impl Future<Output = Result<Event, EventStreamError>> + Send;
}

impl EventSource for EventStream {
    fn next_event(&mut self) -> impl Future<Output = Result<Event, EventStreamError>> + Send {
        self.recv()
    }
}

/// Counts every event of `source`, then passes it on to `feed`, until the
/// runtime is gone.
pub(crate) async fn pump(
    mut source: impl EventSource,
    counters: EventCounters,
    feed: broadcast::Sender<Feed>,
) {
    loop {
        // No subscriber to the feed is not an error.
        match source.next_event().await {
            Ok(event) => {
                counters.record(&event);
                let _ = feed.send(Feed::Event(event));
            }
            Err(EventStreamError::Lagged(missed)) => {
                counters.lagged(missed);
                let _ = feed.send(Feed::Lagged(missed));
            }
            Err(EventStreamError::Closed) => return,
        }
    }
}

/// The runtime's events, each delivered after the observer counted it
/// (from [`Observer::subscribe`](crate::Observer::subscribe)).
///
/// Bounded like the runtime's stream: a subscriber that falls behind is
/// told how many events it missed ([`EventStreamError::Lagged`]), and so is
/// it when the observer itself missed some.
#[derive(Debug)]
pub struct EventFeed {
    pub(crate) rx: broadcast::Receiver<Feed>,
}

impl EventFeed {
    /// Waits for the next event.
    pub async fn recv(&mut self) -> Result<Event, EventStreamError> {
        match self.rx.recv().await {
            Ok(Feed::Event(event)) => Ok(event),
            Ok(Feed::Lagged(missed)) | Err(broadcast::error::RecvError::Lagged(missed)) => {
                Err(EventStreamError::Lagged(missed))
            }
            Err(broadcast::error::RecvError::Closed) => Err(EventStreamError::Closed),
        }
    }

    /// Waits for the first event that satisfies `predicate`, skipping
    /// others (and gaps).
    pub async fn wait_for(
        &mut self,
        mut predicate: impl FnMut(&Event) -> bool,
    ) -> Result<Event, EventStreamError> {
        loop {
            match self.recv().await {
                Ok(event) if predicate(&event) => return Ok(event),
                Ok(_) | Err(EventStreamError::Lagged(_)) => {}
                Err(EventStreamError::Closed) => return Err(EventStreamError::Closed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use candado::{EventKind, ExitReason, Placement, RestartCause};

    use super::*;
    use crate::events::tests::render;

    /// A scripted stream: its items, then closed.
    struct Script(VecDeque<Result<Event, EventStreamError>>);

    impl EventSource for Script {
        fn next_event(&mut self) -> impl Future<Output = Result<Event, EventStreamError>> + Send {
            let next = self.0.pop_front().unwrap_or(Err(EventStreamError::Closed));
            std::future::ready(next)
        }
    }

    fn event(supervisor: &str, kind: EventKind) -> Result<Event, EventStreamError> {
        Ok(Event {
            at_ms: 0,
            supervisor: supervisor.into(),
            kind,
        })
    }

    fn restarted(child: &str, cause: RestartCause) -> EventKind {
        EventKind::ChildRestarted {
            child: child.into(),
            incarnation: 2,
            restarts: 1,
            cause,
        }
    }

    #[tokio::test]
    async fn counting_goes_on_after_a_lag_and_the_gap_is_counted_and_passed_on() {
        let script = Script(VecDeque::from([
            event("app", restarted("a", RestartCause::Panic)),
            Err(EventStreamError::Lagged(7)),
            event("app", restarted("b", RestartCause::Panic)),
            event(
                "app/db",
                EventKind::ChildExited {
                    child: "conn".into(),
                    incarnation: 1,
                    reason: ExitReason::Failed("gone".into()),
                },
            ),
            Err(EventStreamError::Lagged(2)),
            event(
                "app",
                EventKind::ThreadStuck {
                    placement: Placement::Worker(0),
                },
            ),
        ]));
        let counters = EventCounters::default();
        let (tx, rx) = broadcast::channel(16);
        let mut feed = EventFeed { rx };
        pump(script, counters.clone(), tx).await;

        let text = render(&counters);
        for line in [
            "candado_events_received_total 4",
            "candado_events_lagged_total 9",
            r#"candado_restarts_total{supervisor="app",reason="panic"} 2"#,
            r#"candado_child_exits_total{supervisor="app/db",reason="failed"} 1"#,
            "candado_threads_stuck_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        // The feed carries the same sequence, gaps included.
        assert!(feed.recv().await.is_ok());
        assert_eq!(feed.recv().await, Err(EventStreamError::Lagged(7)));
        let b = feed.recv().await.unwrap();
        assert!(matches!(b.kind, EventKind::ChildRestarted { ref child, .. } if child == "b"));
    }
}
