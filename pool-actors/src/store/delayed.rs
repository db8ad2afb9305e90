//! Tasks waiting for their time (a retry, or a dependency's breaker), in a
//! heap ordered by due time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::Instant;

use crate::TaskId;

/// Tasks waiting for their time, ordered by due time. One timer serves the
/// whole heap (the router arms it for the earliest due time).
#[derive(Debug, Default)]
pub(crate) struct DelayedTasks {
    heap: BinaryHeap<Reverse<(Instant, TaskId)>>,
}

impl DelayedTasks {
    pub(crate) fn push(&mut self, due: Instant, id: TaskId) {
        self.heap.push(Reverse((due, id)));
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// When the next retry is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((due, _))| *due)
    }

    /// Takes every retry due at `now`, earliest first.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<TaskId> {
        let mut due = Vec::new();
        while self.heap.peek().is_some_and(|Reverse((t, _))| *t <= now) {
            if let Some(Reverse((_, id))) = self.heap.pop() {
                due.push(id);
            }
        }
        due
    }

    pub(crate) fn drain(&mut self) -> Vec<TaskId> {
        std::mem::take(&mut self.heap)
            .into_sorted_vec()
            .into_iter()
            .rev()
            .map(|Reverse((_, id))| id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn due_retries_come_out_in_time_order() {
        let t0 = Instant::now();
        let mut d = DelayedTasks::default();
        d.push(t0 + Duration::from_secs(3), 1);
        d.push(t0 + Duration::from_secs(1), 2);
        d.push(t0 + Duration::from_secs(2), 3);
        assert_eq!(d.next_due(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.take_due(t0 + Duration::from_secs(2)), [2, 3]);
        assert_eq!(d.len(), 1);
    }
}
