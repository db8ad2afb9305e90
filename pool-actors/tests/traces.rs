//! Tracing: a handler's own log lines sit inside its attempt's span (task
//! id, attempt, worker, priority), a retry is a second attempt span, and a
//! worker restart has a span of its own (child, incarnation, reason).
//!
//! One test per binary: the recording subscriber is the process's global
//! default (the workers' threads must see it too).

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};

use candado::Runtime;
use candado_pool::{PoolBuilder, TaskContext, TaskHandler, TaskOptions};
use common::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span's name and fields, as recorded.
#[derive(Debug, Clone, PartialEq)]
struct SpanRecord {
    name: String,
    fields: BTreeMap<String, String>,
}

/// An event's message and fields, with the spans it was inside (outermost first).
#[derive(Debug, Clone)]
struct EventRecord {
    message: String,
    fields: BTreeMap<String, String>,
    spans: Vec<SpanRecord>,
}

impl EventRecord {
    fn span(&self, name: &str) -> Option<&SpanRecord> {
        self.spans.iter().find(|s| s.name == name)
    }
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Records every event with the spans around it.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<EventRecord>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanRecord {
                name: attrs.metadata().name().to_owned(),
                fields: fields.0,
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        let spans = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .filter_map(|span| span.extensions().get::<SpanRecord>().cloned())
                    .collect()
            })
            .unwrap_or_default();
        self.0.lock().unwrap().push(EventRecord {
            message,
            fields: fields.0,
            spans,
        });
    }
}

/// Logs from inside the task; fails the first attempt, and crashes its
/// worker (a panic in `handle` itself) for the task that asks.
struct Chatty;

#[derive(Debug, Clone, PartialEq)]
enum Say {
    FailOnce(&'static str),
    CrashOnce,
}

impl TaskHandler for Chatty {
    type Task = Say;
    type Output = ();
    type Error = String;

    fn handle(
        &mut self,
        say: Say,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<(), String>> + 'static {
        if matches!(say, Say::CrashOnce) && ctx.attempt() == 1 {
            panic!("the worker itself crashes");
        }
        async move {
            if let Say::FailOnce(word) = say {
                tracing::info!(word, "handler says");
                if ctx.attempt() == 1 {
                    return Err("first attempt fails".into());
                }
            }
            Ok(())
        }
    }
}

#[test]
fn a_task_s_attempts_and_a_worker_s_restart_are_spans() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let id = Arc::new(Mutex::new(None));
    let hello_id = id.clone();
    run_paused(|| async move {
        let runtime = Runtime::builder().current_thread().build().unwrap();
        let pool = PoolBuilder::new(|| Chatty)
            .config(config(1))
            .start(&runtime)
            .await
            .unwrap();
        let hello = pool
            .submit_with(Say::FailOnce("hello"), TaskOptions::priority(3))
            .unwrap();
        *hello_id.lock().unwrap() = Some(hello.id());
        assert_eq!(hello.await, Ok(()));
        let crash = pool.submit(Say::CrashOnce).unwrap();
        assert_eq!(crash.await, Ok(()));
        pool.shutdown_gracefully(std::time::Duration::from_secs(1))
            .await;
        runtime.shutdown().await;
    });

    let id = id.lock().unwrap().expect("submitted").to_string();
    let events = recorder.0.lock().unwrap().clone();
    let says: Vec<_> = events
        .iter()
        .filter(|e| e.message == "handler says")
        .collect();
    assert_eq!(says.len(), 2, "{events:#?}");
    for (said, attempt) in says.iter().zip(["1", "2"]) {
        assert_eq!(said.fields["word"], "hello");
        let span = said
            .span("task_attempt")
            .expect("inside its attempt's span");
        assert_eq!(span.fields["task_id"], id, "{span:?}");
        assert_eq!(span.fields["attempt"], attempt, "{span:?}");
        assert_eq!(span.fields["priority"], "3", "{span:?}");
        assert_eq!(span.fields["worker"], "worker-0", "{span:?}");
    }
    // The router's lines about the task carry its id, outside any attempt.
    let retry = events
        .iter()
        .find(|e| e.message == "retry scheduled")
        .expect("a retry line");
    assert_eq!(retry.fields["task_id"], id);
    assert_eq!(retry.fields["next_attempt"], "2");

    let restart = events
        .iter()
        .find(|e| e.message == "restarting child")
        .expect("a restart line");
    let span = restart.span("restart").expect("inside the restart's span");
    assert_eq!(span.fields["child"], "worker-0", "{span:?}");
    assert_eq!(span.fields["incarnation"], "2", "{span:?}");
    assert_eq!(span.fields["reason"], "panic", "{span:?}");
}
