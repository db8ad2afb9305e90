//! What waits for the holder of the router's lock: submissions that found
//! every worker busy, and reports of workers that found the lock taken.

use parking_lot::Mutex;

/// Capacity a drained vector keeps: a burst (`submit_batch` of a million
/// tasks while the lock was taken) must not pin its memory for ever.
const KEEP: usize = 1024;

/// Items pushed by any thread, taken in order by the holder of the router's
/// lock. A vector behind a small lock rather than a lock-free queue: a push
/// is a few stores while the lock is held (no allocation once the vectors
/// have grown), and the holder takes everything with one swap, leaving the
/// pushers a drained vector that keeps its capacity.
pub(super) struct Inbox<T> {
    items: Mutex<Vec<T>>,
    /// The vector the holder drains (only the router's holder touches it).
    draining: Mutex<Vec<T>>,
}

impl<T> Inbox<T> {
    pub(super) fn new() -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            draining: Mutex::new(Vec::new()),
        }
    }

    /// Adds `items`, in order, at once.
    pub(super) fn extend(&self, items: impl IntoIterator<Item = T>) {
        self.items.lock().extend(items);
    }

    /// Hands everything waiting to `each`, oldest first.
    pub(super) fn drain(&self, mut each: impl FnMut(T)) {
        let mut draining = self.draining.lock();
        std::mem::swap(&mut *self.items.lock(), &mut *draining);
        for item in draining.drain(..) {
            each(item);
        }
        draining.shrink_to(KEEP);
    }

    /// Items waiting.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.items.lock().len()
    }

    /// The capacity both vectors hold.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.items.lock().capacity() + self.draining.lock().capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::Inbox;

    #[test]
    fn items_come_out_in_order_and_a_drain_empties_it() {
        let inbox = Inbox::new();
        inbox.extend([1, 2]);
        inbox.extend([3]);
        let mut out = Vec::new();
        inbox.drain(|n| out.push(n));
        assert_eq!(out, [1, 2, 3]);
        assert_eq!(inbox.len(), 0);
        inbox.extend([4]);
        inbox.drain(|n| out.push(n));
        assert_eq!(out, [1, 2, 3, 4]);
    }

    #[test]
    fn a_burst_leaves_no_large_vector_behind() {
        let inbox = Inbox::new();
        inbox.extend(0..1_000_000u64);
        let mut n = 0;
        inbox.drain(|_| n += 1);
        assert_eq!(n, 1_000_000);
        // The burst's vector now takes pushes; one more swap and drain
        // and neither vector holds more than `KEEP` (and a little slack).
        inbox.extend([1]);
        inbox.drain(|_| n += 1);
        assert!(inbox.capacity() <= 2 * super::KEEP, "{}", inbox.capacity());
    }
}
