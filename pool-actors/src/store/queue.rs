//! The ready queue: priority heaps per capability, FIFO among equals, with
//! starvation promotion.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use priority_queue::PriorityQueue;
use rustc_hash::{FxHashMap, FxHasher};

/// Task ids are small integers: a fast, non-keyed hash suits them.
type FxBuild = std::hash::BuildHasherDefault<FxHasher>;
use tokio::time::Instant;

use super::Rank;
use crate::TaskId;

/// Stale entries `ages` may hold before it is compacted, whatever the
/// number of tasks waiting (see [`ReadyQueues::compact_ages`]).
const AGES_SLACK: usize = 1024;

fn rank(priority: u8, seq: u64) -> Rank {
    (Reverse(priority), Reverse(seq))
}

#[derive(Debug)]
struct Entry {
    priority: u8,
    seq: u64,
    capability: Option<String>,
    /// When it last started waiting at its priority; `ages` entries with
    /// another time are stale (the task left and came back).
    since: Instant,
}

/// Tasks ready to run, one heap per capability (`None` = any worker).
#[derive(Debug)]
pub(crate) struct ReadyQueues {
    heaps: FxHashMap<Option<String>, PriorityQueue<TaskId, Rank, FxBuild>>,
    entries: FxHashMap<TaskId, Entry>,
    /// Waiting tasks in the order they (last) got their priority, for promotion.
    ages: VecDeque<(Instant, TaskId)>,
    promote_after: Option<Duration>,
    /// Waiting tasks per current priority (no zero entries), for metrics:
    /// kept as tasks come, go and climb, so a snapshot does not walk the queue.
    depth: BTreeMap<u8, u64>,
}

impl ReadyQueues {
    pub(crate) fn new(promote_after: Option<Duration>) -> Self {
        Self {
            heaps: FxHashMap::default(),
            entries: FxHashMap::default(),
            ages: VecDeque::new(),
            promote_after,
            depth: BTreeMap::new(),
        }
    }

    /// Waiting tasks per current priority (priorities with none left out).
    pub(crate) fn depth_by_priority(&self) -> BTreeMap<u8, u64> {
        self.depth.clone()
    }

    fn count(&mut self, priority: u8) {
        *self.depth.entry(priority).or_default() += 1;
    }

    fn uncount(&mut self, priority: u8) {
        if let Some(n) = self.depth.get_mut(&priority) {
            *n -= 1;
            if *n == 0 {
                self.depth.remove(&priority);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Queues a task. `seq` orders equal priorities (FIFO): keep a retried
    /// task's original `seq` so it does not fall behind later submissions.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        id: TaskId,
        priority: u8,
        seq: u64,
        capability: Option<String>,
    ) {
        self.heaps
            .entry(capability.clone())
            .or_default()
            .push(id, rank(priority, seq));
        let replaced = self.entries.insert(
            id,
            Entry {
                priority,
                seq,
                capability,
                since: now,
            },
        );
        if let Some(old) = replaced {
            self.uncount(old.priority);
        }
        self.count(priority);
        if self.promote_after.is_some() {
            // Without promotion nobody would ever take it out again.
            self.ages.push_back((now, id));
        }
    }

    /// The best waiting task that `accepts` a capability.
    #[cfg(test)]
    pub(crate) fn peek_best(
        &self,
        accepts: impl Fn(Option<&str>) -> bool,
    ) -> Option<(TaskId, Rank)> {
        self.heaps
            .iter()
            .filter(|(cap, _)| accepts(cap.as_deref()))
            .filter_map(|(_, heap)| heap.peek().map(|(id, r)| (*id, *r)))
            .max_by_key(|(_, r)| *r)
    }

    /// The best head of a capability's heap that ranks below `below`
    /// (`None`: the best of all). Walking with the last rank returned visits
    /// every capability's head, best first, without collecting them.
    pub(crate) fn head_below(&self, below: Option<Rank>) -> Option<(Option<String>, TaskId, Rank)> {
        self.heaps
            .iter()
            .filter_map(|(cap, heap)| heap.peek().map(|(id, r)| (cap, *id, *r)))
            .filter(|(_, _, r)| below.is_none_or(|b| *r < b))
            .max_by_key(|(_, _, r)| *r)
            .map(|(cap, id, r)| (cap.clone(), id, r))
    }

    /// How many waiting tasks need no capability (nor a worker of their
    /// own), and the best priority among them.
    pub(crate) fn plain(&self) -> (usize, Option<u8>) {
        self.heaps.get(&None).map_or((0, None), |heap| {
            (heap.len(), heap.peek().map(|(_, rank)| rank.0 .0))
        })
    }

    /// Whether task `id` waits here.
    pub(crate) fn contains(&self, id: TaskId) -> bool {
        self.entries.contains_key(&id)
    }

    /// The `n` least important waiting tasks, least important first: the
    /// highest priority number, the oldest among equals (load shedding
    /// keeps the freshest work). Walks the queue: only a full queue that
    /// sheds load calls it.
    pub(crate) fn worst(&self, n: usize) -> Vec<(TaskId, u8)> {
        let key = |e: &Entry| (e.priority, Reverse(e.seq));
        if n == 1 {
            return self
                .entries
                .iter()
                .max_by_key(|(_, e)| key(e))
                .map(|(id, e)| vec![(*id, e.priority)])
                .unwrap_or_default();
        }
        let mut all: Vec<(&TaskId, &Entry)> = self.entries.iter().collect();
        all.sort_unstable_by_key(|(_, e)| Reverse(key(e)));
        all.into_iter()
            .take(n)
            .map(|(id, e)| (*id, e.priority))
            .collect()
    }

    /// Takes a task out (dispatched, or cancelled).
    pub(crate) fn remove(&mut self, id: TaskId) -> bool {
        let Some(entry) = self.entries.remove(&id) else {
            return false;
        };
        self.uncount(entry.priority);
        self.compact_ages();
        if let Some(heap) = self.heaps.get_mut(&entry.capability) {
            heap.remove(&id);
            // The heap for any worker stays (a queue that keeps running
            // empty would otherwise build a new one per task); emptied
            // capability heaps go, so odd capabilities do not pile up.
            if heap.is_empty() && entry.capability.is_some() {
                self.heaps.remove(&entry.capability);
            }
        }
        true
    }

    /// Drops the stale entries of `ages` (tasks that left, or waited again
    /// since) once they are more than half of it, so it holds about as many
    /// entries as tasks wait, not one for every task that went through in
    /// the last `promote_after` (a queue that tasks pass through quickly
    /// would otherwise keep millions). Each stale entry is dropped once:
    /// the cost per task stays constant.
    fn compact_ages(&mut self) {
        if self.ages.len() <= AGES_SLACK.max(2 * self.entries.len()) {
            return;
        }
        let entries = &self.entries;
        self.ages
            .retain(|(since, id)| entries.get(id).is_some_and(|e| e.since == *since));
    }

    /// Drains every waiting task, best first.
    pub(crate) fn drain(&mut self) -> Vec<TaskId> {
        let mut all: Vec<(TaskId, Rank)> = self
            .heaps
            .values_mut()
            .flat_map(|h| std::mem::take(h).into_iter())
            .collect();
        all.sort_by_key(|t| std::cmp::Reverse(t.1));
        self.heaps.clear();
        self.entries.clear();
        self.ages.clear();
        self.depth.clear();
        all.into_iter().map(|(id, _)| id).collect()
    }

    /// Promotes every task that has waited `promote_after` at its current
    /// priority by one level (towards 0). Returns how many were promoted.
    pub(crate) fn promote(&mut self, now: Instant) -> usize {
        let Some(after) = self.promote_after else {
            return 0;
        };
        let mut promoted = 0;
        while let Some(&(since, id)) = self.ages.front() {
            if now.duration_since(since) < after {
                break;
            }
            self.ages.pop_front();
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            if entry.since != since || entry.priority == 0 {
                continue;
            }
            entry.priority -= 1;
            let (to, new_rank) = (entry.priority, rank(entry.priority, entry.seq));
            if let Some(heap) = self.heaps.get_mut(&entry.capability) {
                heap.change_priority(&id, new_rank);
            }
            // Waits again at its new level.
            entry.since = since + after;
            self.ages.push_back((since + after, id));
            self.uncount(to + 1);
            self.count(to);
            promoted += 1;
        }
        promoted
    }

    /// Current priority of a waiting task.
    pub(crate) fn priority_of(&self, id: TaskId) -> Option<u8> {
        self.entries.get(&id).map(|e| e.priority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pop_all(q: &mut ReadyQueues) -> Vec<TaskId> {
        let mut out = Vec::new();
        while let Some((id, _)) = q.peek_best(|_| true) {
            q.remove(id);
            out.push(id);
        }
        out
    }

    #[test]
    fn lower_numbers_first_fifo_among_equals() {
        let now = Instant::now();
        let mut q = ReadyQueues::new(None);
        let tasks = [(1, 10), (2, 0), (3, 10), (4, 5), (5, 0), (6, 10)];
        for (seq, (id, prio)) in tasks.iter().enumerate() {
            q.push(now, *id, *prio, seq as u64, None);
        }
        assert_eq!(pop_all(&mut q), [2, 5, 4, 1, 3, 6]);
    }

    #[test]
    fn capabilities_only_match_their_workers() {
        let now = Instant::now();
        let mut q = ReadyQueues::new(None);
        q.push(now, 1, 5, 0, Some("gpu".into()));
        q.push(now, 2, 10, 1, None);
        // A worker without the gpu capability sees only task 2.
        assert_eq!(q.peek_best(|cap| cap.is_none()).map(|(id, _)| id), Some(2));
        assert_eq!(
            q.peek_best(|cap| cap.is_none() || cap == Some("gpu"))
                .map(|(id, _)| id),
            Some(1)
        );
    }

    #[test]
    fn a_requeued_task_waits_a_full_step_again() {
        let t0 = Instant::now();
        let step = Duration::from_secs(10);
        let mut q = ReadyQueues::new(Some(step));
        q.push(t0, 1, 5, 0, None);
        q.remove(1);
        // Back (a retry) 8 s later: its first stay must not count.
        q.push(t0 + Duration::from_secs(8), 1, 5, 0, None);
        assert_eq!(q.promote(t0 + step), 0);
        assert_eq!(q.promote(t0 + Duration::from_secs(18)), 1);
        assert_eq!(q.priority_of(1), Some(4));
    }

    #[test]
    fn waiting_tasks_climb_one_level_per_age_step() {
        let t0 = Instant::now();
        let step = Duration::from_secs(10);
        let mut q = ReadyQueues::new(Some(step));
        q.push(t0, 1, 3, 0, None);
        assert_eq!(q.promote(t0 + step - Duration::from_millis(1)), 0);
        assert_eq!(q.promote(t0 + step), 1);
        assert_eq!(q.priority_of(1), Some(2));
        assert_eq!(q.promote(t0 + 3 * step), 2);
        assert_eq!(q.priority_of(1), Some(0));
        assert_eq!(q.promote(t0 + 10 * step), 0, "0 is the top");
        // A newer priority-0 task still comes after the promoted older one (FIFO).
        q.push(t0 + 10 * step, 2, 0, 1, None);
        assert_eq!(pop_all(&mut q), [1, 2]);
    }

    #[test]
    fn the_least_important_is_the_highest_number_then_the_oldest() {
        let now = Instant::now();
        let mut q = ReadyQueues::new(None);
        for (seq, (id, prio)) in [(1, 5), (2, 9), (3, 9), (4, 0)].iter().enumerate() {
            q.push(now, *id, *prio, seq as u64, None);
        }
        assert_eq!(q.worst(1), [(2, 9)]);
        assert_eq!(q.worst(3), [(2, 9), (3, 9), (1, 5)]);
        assert_eq!(q.worst(10).len(), 4);
        assert!(ReadyQueues::new(None).worst(1).is_empty());
    }

    #[test]
    fn tasks_passing_through_leave_no_trail_of_ages() {
        let t0 = Instant::now();
        let step = Duration::from_secs(30);
        let mut q = ReadyQueues::new(Some(step));
        q.push(t0, 0, 5, 0, None);
        for id in 1..100_000 {
            q.push(t0, id, 5, id, None);
            q.remove(id);
        }
        assert!(q.ages.len() <= 2 * AGES_SLACK, "{} ages kept", q.ages.len());
        // The task that stayed still climbs when its time comes.
        q.push(t0, 100_000, 5, 100_000, None);
        assert_eq!(q.promote(t0 + step), 2);
        assert_eq!(q.priority_of(0), Some(4));
        assert_eq!(q.priority_of(100_000), Some(4));
    }

    #[test]
    fn depth_by_priority_follows_pushes_removals_promotions_and_drains() {
        let t0 = Instant::now();
        let step = Duration::from_secs(10);
        let mut q = ReadyQueues::new(Some(step));
        q.push(t0, 1, 3, 0, None);
        q.push(t0, 2, 3, 1, Some("gpu".into()));
        q.push(t0, 3, 10, 2, None);
        assert_eq!(q.depth_by_priority(), [(3, 2), (10, 1)].into());
        q.remove(2);
        assert_eq!(q.depth_by_priority(), [(3, 1), (10, 1)].into());
        assert_eq!(q.promote(t0 + step), 2);
        assert_eq!(q.depth_by_priority(), [(2, 1), (9, 1)].into());
        // A task pushed again replaces its entry: it is counted once.
        q.push(t0 + step, 3, 7, 2, None);
        assert_eq!(q.depth_by_priority(), [(2, 1), (7, 1)].into());
        q.drain();
        assert!(q.depth_by_priority().is_empty());
    }
}
