//! The RSS of the demo's worker processes, measured by the demo itself:
//! the memory each one held when it ended is the memory its end returned.
//!
//! The pool measures its worker processes too (for `MemoryGuard`), but
//! publishes neither their pids nor their RSS; the demo's worker processes
//! are its only children, so it reads their RSS by pid from the system
//! (`sysinfo`), on a thread of its own, every [`PERIOD`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

/// How often the worker processes are measured.
pub(crate) const PERIOD: Duration = Duration::from_millis(50);

/// Every this many periods (200 ms), every process of the system is read
/// to find new children; in between, only the known ones (reading every
/// process each time cost a core 4%).
const DISCOVER_EVERY: u32 = 4;

/// A worker process that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    /// Its RSS at its last measurement while it ran, in bytes.
    pub(crate) rss: u64,
    /// When the demo found it gone (within [`PERIOD`] of its end).
    pub(crate) at: Instant,
}

#[derive(Debug, Default)]
struct Book {
    /// The running worker processes and their last RSS.
    running: HashMap<Pid, u64>,
    ended: Vec<Ended>,
}

/// Measures this process's children until dropped.
#[derive(Debug)]
pub(crate) struct RssWatch {
    book: Arc<Mutex<Book>>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    /// Starts measuring on a thread of its own (`None` if no thread could
    /// be started: the report then shows no memory reclaimed).
    pub(crate) fn start() -> Option<Self> {
        let book = Arc::new(Mutex::new(Book::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let me = sysinfo::get_current_pid().ok()?;
        let (b, s) = (book.clone(), stop.clone());
        std::thread::Builder::new()
            .name("candado-demo-rss".into())
            .spawn(move || measure(me, &b, &s))
            .ok()?;
        Some(Self { book, stop })
    }

    /// The worker processes that ended so far.
    pub(crate) fn ended(&self) -> Vec<Ended> {
        self.book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ended
            .clone()
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        // The thread sees it within a period and ends.
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn measure(me: Pid, book: &Mutex<Book>, stop: &AtomicBool) {
    let mut system = System::new();
    let kind = ProcessRefreshKind::nothing().with_memory();
    let mut known: Vec<Pid> = Vec::new();
    for period in 0u32.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let which = if period % DISCOVER_EVERY == 0 {
            ProcessesToUpdate::All
        } else {
            ProcessesToUpdate::Some(&known)
        };
        system.refresh_processes_specifics(which, true, kind);
        let now = Instant::now();
        // A zombie (dead, not reaped yet) holds no memory: its last
        // measurement alive stands.
        let children: HashMap<Pid, u64> = system
            .processes()
            .iter()
            .filter(|(_, p)| p.parent() == Some(me) && p.status() != ProcessStatus::Zombie)
            .map(|(pid, p)| (*pid, p.memory()))
            .collect();
        known = children.keys().copied().collect();
        {
            let mut book = book.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<Pid> = book
                .running
                .keys()
                .filter(|pid| !children.contains_key(pid))
                .copied()
                .collect();
            for pid in gone {
                if let Some(rss) = book.running.remove(&pid) {
                    book.ended.push(Ended { rss, at: now });
                }
            }
            for (pid, rss) in children {
                // A process being torn down may read 0: keep what it held.
                if rss > 0 || !book.running.contains_key(&pid) {
                    book.running.insert(pid, rss);
                }
            }
        }
        std::thread::sleep(PERIOD);
    }
}
