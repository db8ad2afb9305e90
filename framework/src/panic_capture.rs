//! Captures panic messages so a child's exit can carry them.
//!
//! A process-wide panic hook (installed once, chained to the previous hook so
//! default printing and any application hook still run) stores the message of
//! the latest panic in a thread-local. The exit guard of a child that is being
//! dropped during unwinding reads it.
//!
//! A panic payload is user data: its `Drop` may panic too. Payloads are
//! therefore dropped with [`drop_quietly`], never in plain code, where that
//! second panic would escape (and, during unwinding, abort the process).

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

/// Drops `value` (a crashed actor's task, a panic payload), catching a panic
/// of its `Drop`. Returns that panic's message, if there was one.
///
/// The payload of such a panic may panic when dropped in turn: it is
/// forgotten instead (a small leak, only ever after a panicking drop).
pub(crate) fn drop_quietly<T>(value: T) -> Option<String> {
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(value))).err()?;
    // The hook recorded this message too; it must not outlive this call.
    let recorded = take();
    let message = recorded.unwrap_or_else(|| payload_message(&*payload));
    std::mem::forget(payload);
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bomb;

    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb");
        }
    }

    #[test]
    fn a_drop_that_panics_is_caught_and_named() {
        install();
        let message = drop_quietly(Bomb).expect("the drop panicked");
        assert!(message.starts_with("bomb"), "{message}");
        assert_eq!(take(), None, "no stale message is left behind");
        assert_eq!(drop_quietly(String::from("fine")), None);
        // A payload whose drop panics, dropped as a payload.
        let payload: Box<dyn std::any::Any + Send> = Box::new(Bomb);
        assert!(drop_quietly(payload).is_some());
    }
}
