//! A supervisor's children in start order: a dense table.
//!
//! Keys grow with start order and a new child always gets the largest, so
//! the table is two parallel vectors sorted by key, appended to. A removed
//! child leaves a hole that iteration skips; once holes outnumber children,
//! the table is compacted (amortized O(1) per removal). A lookup first tries
//! the slot the key would have without compaction, then a binary search
//! over the keys alone.
//!
//! It replaced a `BTreeMap<u64, Child>`, whose leaves, filled in key order,
//! stay about half full: with 100,000 children that map took about 740
//! bytes per child where the record itself is under 400.

use std::ops::Index;

use super::child::Child;

/// Holes below this many are never compacted (compaction is not worth it).
const MIN_COMPACT: usize = 32;

/// The children of one supervisor by key, iterated in key (start) order.
#[derive(Default)]
pub(super) struct ChildTable {
    /// Ascending; `keys[i]` is the key of `slots[i]`.
    keys: Vec<u64>,
    /// `None`: removed (a hole until the next compaction).
    slots: Vec<Option<Child>>,
    /// Children held (slots that are `Some`).
    live: usize,
}

impl ChildTable {
    fn index(&self, key: u64) -> Option<usize> {
        let first = *self.keys.first()?;
        // Without compaction since it was inserted, a key sits at its
        // distance from the first key.
        if let Some(guess) = key.checked_sub(first).and_then(|d| usize::try_from(d).ok()) {
            if self.keys.get(guess) == Some(&key) {
                return Some(guess);
            }
        }
        self.keys.binary_search(&key).ok()
    }

    pub(super) fn get(&self, key: &u64) -> Option<&Child> {
        self.slots[self.index(*key)?].as_ref()
    }

    pub(super) fn get_mut(&mut self, key: &u64) -> Option<&mut Child> {
        let i = self.index(*key)?;
        self.slots[i].as_mut()
    }

    /// Room for `additional` more children.
    pub(super) fn reserve(&mut self, additional: usize) {
        self.keys.reserve(additional);
        self.slots.reserve(additional);
    }

    /// Adds a child under a key larger than every key held.
    pub(super) fn insert(&mut self, key: u64, child: Child) {
        debug_assert!(self.keys.last().is_none_or(|&last| last < key));
        self.keys.push(key);
        self.slots.push(Some(child));
        self.live += 1;
    }

    pub(super) fn remove(&mut self, key: &u64) -> Option<Child> {
        let i = self.index(*key)?;
        let child = self.slots[i].take()?;
        self.live -= 1;
        let holes = self.slots.len() - self.live;
        if holes >= MIN_COMPACT && holes > self.live {
            self.compact();
        }
        Some(child)
    }

    fn compact(&mut self) {
        let mut kept = 0;
        for i in 0..self.slots.len() {
            if self.slots[i].is_some() {
                self.slots.swap(kept, i);
                self.keys[kept] = self.keys[i];
                kept += 1;
            }
        }
        self.keys.truncate(kept);
        self.slots.truncate(kept);
        self.keys.shrink_to_fit();
        self.slots.shrink_to_fit();
    }

    /// Keys held, in start order.
    pub(super) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Keys held from `key` on, in start order.
    pub(super) fn keys_from(&self, key: u64) -> impl Iterator<Item = u64> + '_ {
        let start = self.keys.partition_point(|&k| k < key);
        self.keys[start..]
            .iter()
            .zip(&self.slots[start..])
            .filter(|(_, c)| c.is_some())
            .map(|(&k, _)| k)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &Child)> + '_ {
        self.keys
            .iter()
            .zip(&self.slots)
            .filter_map(|(&k, c)| Some((k, c.as_ref()?)))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut Child)> + '_ {
        self.keys
            .iter()
            .zip(&mut self.slots)
            .filter_map(|(&k, c)| Some((k, c.as_mut()?)))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Child> + '_ {
        self.slots.iter().flatten()
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Child> + '_ {
        self.slots.iter_mut().flatten()
    }
}

impl Index<&u64> for ChildTable {
    type Output = Child;

    fn index(&self, key: &u64) -> &Child {
        self.get(key).expect("a child held by the supervisor")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChildSpec;

    struct Nop;
    impl actix::Actor for Nop {
        type Context = actix::Context<Self>;
    }

    fn child(id: u64) -> Child {
        Child::new(ChildSpec::worker(id.to_string(), |_| Nop))
    }

    #[test]
    fn lookups_iteration_and_ranges_survive_removals_and_compaction() {
        let mut table = ChildTable::default();
        for key in 0..200 {
            table.insert(key, child(key));
        }
        // Remove three in four: compaction runs on the way.
        for key in (0..200).filter(|k| k % 4 != 1) {
            assert_eq!(
                table.remove(&key).map(|c| c.id().to_string()),
                Some(key.to_string())
            );
            assert!(table.get(&key).is_none());
            assert!(table.remove(&key).is_none());
        }
        let left: Vec<u64> = (0..200).filter(|k| k % 4 == 1).collect();
        assert_eq!(table.keys().collect::<Vec<_>>(), left);
        assert!(table.slots.len() < 100, "compacted");
        for &key in &left {
            assert_eq!(table[&key].id().as_ref(), key.to_string());
            assert!(table.get_mut(&key).is_some());
        }
        assert_eq!(
            table.keys_from(100).collect::<Vec<_>>(),
            left.iter()
                .copied()
                .filter(|&k| k >= 100)
                .collect::<Vec<_>>()
        );
        assert_eq!(table.keys_from(1000).count(), 0);
        // New keys append after compaction and are found again.
        table.insert(500, child(500));
        assert_eq!(
            table.get(&500).map(|c| c.id().to_string()),
            Some("500".into())
        );
        assert_eq!(table.values().count(), left.len() + 1);
        assert_eq!(table.values_mut().count(), left.len() + 1);
        assert_eq!(table.iter_mut().count(), left.len() + 1);
        assert!(table.get(&3).is_none() && table.get(&10_000).is_none());
    }
}
