//! Batched delivery to the router: producers on any thread push into a
//! shared queue and wake the router with one message per batch, not one per
//! item. Under load the router drains many submissions (or results) per
//! wake-up of the control thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A queue drained by one actor, woken once per batch.
#[derive(Debug)]
pub(crate) struct Inbox<T> {
    queue: Mutex<Vec<T>>,
    /// A wake-up is on its way (or being handled).
    scheduled: AtomicBool,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
        }
    }
}

impl<T> Inbox<T> {
    /// Queues `item`; `true` if the caller must wake the owner.
    pub(crate) fn push(&self, item: T) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(item);
        !self.scheduled.swap(true, Ordering::AcqRel)
    }

    /// Queues every item of `items` at once; `true` if the caller must
    /// wake the owner.
    pub(crate) fn push_all(&self, items: impl IntoIterator<Item = T>) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(items);
        !self.scheduled.swap(true, Ordering::AcqRel)
    }

    /// Everything queued, oldest first; the owner calls it when woken. An
    /// item pushed after this call wakes the owner again.
    pub(crate) fn take(&self) -> Vec<T> {
        self.scheduled.store(false, Ordering::Release);
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_wake_per_batch_and_nothing_lost() {
        let inbox = Inbox::default();
        assert!(inbox.push(1), "the first item wakes the owner");
        assert!(!inbox.push(2), "a wake is already on its way");
        assert_eq!(inbox.take(), [1, 2]);
        assert!(inbox.push(3), "after a take, the next item wakes again");
        assert!(!inbox.push_all([4, 5]));
        assert_eq!(inbox.take(), [3, 4, 5]);
        assert!(inbox.take().is_empty());
    }

    #[test]
    fn concurrent_producers_lose_nothing() {
        let inbox = std::sync::Arc::new(Inbox::default());
        let wakes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (inbox, wakes) = (inbox.clone(), wakes.clone());
                std::thread::spawn(move || {
                    for i in 0..1_000 {
                        if inbox.push(t * 1_000 + i) {
                            wakes.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        while got.len() < 4_000 {
            got.extend(inbox.take());
            std::thread::yield_now();
        }
        for t in threads {
            t.join().unwrap();
        }
        got.extend(inbox.take());
        got.sort_unstable();
        assert_eq!(got, (0..4_000).collect::<Vec<_>>());
        assert!(wakes.load(Ordering::Relaxed) >= 1);
    }
}
