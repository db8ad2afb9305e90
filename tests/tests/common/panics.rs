//! Tells the framework's panics from a test's deliberate ones.
//!
//! A process-wide hook (chained to the previous one, so messages still
//! print and the framework's own capture still works) records every panic
//! whose payload is not [`DELIBERATE`]. Cases are serialised by
//! [`watch`], so a case sees only its own panics.

use std::panic;
use std::sync::{Mutex, MutexGuard, Once};

/// The payload of a panic a test raises on purpose (`panic_any(DELIBERATE)`).
pub const DELIBERATE: &str = "candado-tests: deliberate panic";

static INSTALL: Once = Once::new();
static UNEXPECTED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SERIAL: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn install() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let message = info.payload_as_str();
            if message != Some(DELIBERATE) {
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                lock(&UNEXPECTED).push(format!(
                    "panic: {}{location}",
                    message.unwrap_or("non-string payload")
                ));
            }
            previous(info);
        }));
    });
}

/// Starts watching one case: waits for any other case to finish, and forgets
/// panics seen before. Hold the guard for the whole case.
pub fn watch() -> MutexGuard<'static, ()> {
    install();
    let guard = lock(&SERIAL);
    lock(&UNEXPECTED).clear();
    guard
}

/// Panics that were not deliberate since [`watch`] (or the last call).
pub fn unexpected() -> Vec<String> {
    std::mem::take(&mut *lock(&UNEXPECTED))
}

/// Stops the process if a case runs longer than its real-time limit: a
/// loop that never yields starves the paused runtime, so no virtual
/// timeout can end it. Disarmed on drop.
#[derive(Debug)]
pub struct Watchdog {
    done: Option<std::sync::mpsc::Sender<()>>,
}

impl Watchdog {
    /// Arms the watchdog; `what` is printed if it fires.
    pub fn arm(limit: std::time::Duration, what: String) -> Self {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                // Straight to stderr: the harness captures `eprintln!`,
                // and an abort would lose what it captured.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "HUNG for {limit:?} (real time) on:\n{what}"
                );
                std::process::abort();
            }
        });
        Self { done: Some(done) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}
