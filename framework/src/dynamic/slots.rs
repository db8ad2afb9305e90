//! The count of a dynamic supervisor's children, and its bound.
//!
//! A [`Slot`] is taken (one compare-and-swap against `max`) before a child
//! is asked for and travels inside the child's spec into the supervisor's
//! record of it. The supervisor drops the spec exactly when it forgets the
//! child, and with it the slot, so the count is the number of children the
//! supervisor holds, read with one atomic load, and two starts racing for
//! the last slot cannot both win.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Children held, and how many may be.
#[derive(Debug)]
pub(super) struct Slots {
    held: AtomicUsize,
    max: usize,
}

impl Slots {
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicUsize::new(0),
            max,
        })
    }

    pub(super) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// Takes a slot, or `None` when all `max` are held.
    pub(super) fn take(self: &Arc<Self>) -> Option<Slot> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.max).then_some(held + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

/// One held slot; dropping it frees the slot.
#[derive(Debug)]
pub(super) struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_freed_on_drop() {
        let slots = Slots::new(2);
        let a = slots.take().expect("first");
        let b = slots.take().expect("second");
        assert!(slots.take().is_none());
        assert_eq!(slots.held(), 2);
        drop(a);
        assert_eq!(slots.held(), 1);
        let c = slots.take().expect("freed slot");
        drop((b, c));
        assert_eq!(slots.held(), 0);
    }

    #[test]
    fn zero_and_usize_max_bounds_never_overflow() {
        assert!(Slots::new(0).take().is_none());
        let unbounded = Slots::new(usize::MAX);
        let held: Vec<_> = (0..1000).map(|_| unbounded.take().expect("room")).collect();
        assert_eq!(unbounded.held(), 1000);
        drop(held);
        assert_eq!(unbounded.held(), 0);
    }

    #[test]
    fn racing_threads_never_take_more_than_max() {
        let slots = Slots::new(100);
        let taken: Vec<Vec<Slot>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..100).filter_map(|_| slots.take()).collect()))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("thread"))
                .collect()
        });
        assert_eq!(taken.iter().map(Vec::len).sum::<usize>(), 100);
        assert_eq!(slots.held(), 100);
    }
}
