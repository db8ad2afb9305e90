//! Captures panic messages so a child's exit can carry them.
//!
//! A process-wide panic hook (installed once, chained to the previous hook so
//! default printing and any application hook still run) stores the message of
//! the latest panic in a thread-local. The exit guard of a child that is being
//! dropped during unwinding reads it.

use std::cell::RefCell;
use std::panic;
use std::sync::Once;

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Installs the capturing hook (idempotent).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let message = info.payload_as_str().unwrap_or("non-string panic payload");
            let message = match info.location() {
                Some(loc) => format!("{message} (at {}:{})", loc.file(), loc.line()),
                None => message.to_owned(),
            };
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(message));
            previous(info);
        }));
    });
}

/// Takes the message of the latest panic on this thread, if any.
pub(crate) fn take() -> Option<String> {
    LAST_PANIC.with(|last| last.borrow_mut().take())
}

/// Renders a panic payload caught with `catch_unwind`.
pub(crate) fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
