//! `/api/events`: the runtime's events as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header::CACHE_CONTROL;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use candado::{Event, EventStreamError};
use futures_util::stream;
use tokio::time::{interval, Interval, MissedTickBehavior};

use crate::{EventFeed, Observer};

/// A comment line this often keeps proxies from closing an idle stream and
/// finds clients that left.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Streams every event from now on: `data: <event as JSON>`, and
/// `event: lagged` with `data: {"missed":n}` for events the client (or the
/// observer) missed. The first line, a comment, is sent at once.
pub(super) async fn events(observer: web::Data<Observer>) -> HttpResponse {
    let feed = observer.subscribe();
    let mut keep_alive = interval(KEEP_ALIVE);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let body = stream::unfold((feed, keep_alive), next_chunk);
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((CACHE_CONTROL, "no-store"))
        .streaming(body)
}

type State = (EventFeed, Interval);

async fn next_chunk(
    (mut feed, mut keep_alive): State,
) -> Option<(Result<Bytes, Infallible>, State)> {
    let chunk = tokio::select! {
        next = feed.recv() => match next {
            Ok(event) => data(&event),
            Err(EventStreamError::Lagged(missed)) => lagged(missed),
            Err(EventStreamError::Closed) => return None,
        },
        // The first tick is immediate: the client learns it is subscribed.
        _ = keep_alive.tick() => Bytes::from_static(b": keep-alive\n\n"),
    };
    Some((Ok(chunk), (feed, keep_alive)))
}

/// One event; its JSON holds no newline, so it fits one `data:` line.
fn data(event: &Event) -> Bytes {
    let json = serde_json::to_string(event).expect("events serialise");
    Bytes::from(format!("data: {json}\n\n"))
}

fn lagged(missed: u64) -> Bytes {
    Bytes::from(format!("event: lagged\ndata: {{\"missed\":{missed}}}\n\n"))
}
