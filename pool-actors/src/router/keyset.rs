//! A set of worker keys as a bit set: the free workers, which every
//! dispatch and settle looks at and changes.

use crate::messages::WorkerKey;

const BITS: usize = u64::BITS as usize;

/// Worker keys (small, dense integers) in a bit set: inserting, removing
/// and finding the next key after the round-robin cursor cost a few word
/// operations, where a B-tree walked and allocated nodes.
#[derive(Debug, Default, Clone)]
pub(super) struct KeySet {
    words: Vec<u64>,
    len: usize,
}

impl KeySet {
    /// Adds `key`; whether it was absent.
    pub(super) fn insert(&mut self, key: WorkerKey) -> bool {
        let (word, bit) = (key / BITS, 1u64 << (key % BITS));
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        if self.words[word] & bit != 0 {
            return false;
        }
        self.words[word] |= bit;
        self.len += 1;
        true
    }

    /// Takes `key` out; whether it was there.
    pub(super) fn remove(&mut self, key: &WorkerKey) -> bool {
        let (word, bit) = (key / BITS, 1u64 << (key % BITS));
        match self.words.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                self.len -= 1;
                true
            }
            _ => false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every key, in ascending order.
    pub(super) fn iter(&self) -> Keys<'_> {
        self.between(0, usize::MAX)
    }

    /// The keys after `cursor`, then the ones up to it: round-robin order
    /// (every key, ascending, when there is no cursor).
    pub(super) fn rotation(
        &self,
        cursor: Option<WorkerKey>,
    ) -> impl Iterator<Item = WorkerKey> + '_ {
        let (after, before) = match cursor {
            Some(c) => (
                self.between(c.saturating_add(1), usize::MAX),
                self.between(0, c.saturating_add(1)),
            ),
            None => (self.iter(), self.between(0, 0)),
        };
        after.chain(before)
    }

    /// The keys in `from..to`, ascending.
    fn between(&self, from: usize, to: usize) -> Keys<'_> {
        let word = from / BITS;
        let first = self
            .words
            .get(word)
            .map_or(0, |w| w & (u64::MAX << (from % BITS)));
        Keys {
            words: &self.words,
            word,
            bits: first,
            to,
        }
    }
}

impl PartialEq for KeySet {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// The keys of a [`KeySet`] in a range, ascending.
pub(super) struct Keys<'a> {
    words: &'a [u64],
    word: usize,
    /// The bits of `words[word]` not yet returned.
    bits: u64,
    /// The end of the range (excluded).
    to: usize,
}

impl Iterator for Keys<'_> {
    type Item = WorkerKey;

    fn next(&mut self) -> Option<WorkerKey> {
        loop {
            if self.bits != 0 {
                let key = self.word * BITS + self.bits.trailing_zeros() as usize;
                if key >= self.to {
                    return None;
                }
                self.bits &= self.bits - 1;
                return Some(key);
            }
            self.word += 1;
            if self.word >= self.words.len() || self.word * BITS >= self.to {
                return None;
            }
            self.bits = self.words[self.word];
        }
    }
}

impl FromIterator<WorkerKey> for KeySet {
    fn from_iter<I: IntoIterator<Item = WorkerKey>>(keys: I) -> Self {
        let mut set = Self::default();
        for key in keys {
            set.insert(key);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::KeySet;

    proptest! {
        /// Against a `BTreeSet`: the same answers to inserts and removals,
        /// the same keys in order, and the same round-robin order from any
        /// cursor.
        #[test]
        fn a_key_set_behaves_as_a_btree_set(
            ops in prop::collection::vec((any::<bool>(), 0usize..300), 0..200),
            cursor in prop::option::of(0usize..320),
        ) {
            let (mut bits, mut tree) = (KeySet::default(), BTreeSet::new());
            for (insert, key) in ops {
                if insert {
                    prop_assert_eq!(bits.insert(key), tree.insert(key));
                } else {
                    prop_assert_eq!(bits.remove(&key), tree.remove(&key));
                }
                prop_assert_eq!(bits.is_empty(), tree.is_empty());
            }
            prop_assert_eq!(bits.iter().collect::<Vec<_>>(), tree.iter().copied().collect::<Vec<_>>());
            let expected: Vec<usize> = match cursor {
                Some(c) => tree.range(c + 1..).chain(tree.range(..=c)).copied().collect(),
                None => tree.iter().copied().collect(),
            };
            prop_assert_eq!(bits.rotation(cursor).collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn the_largest_keys_and_cursors_do_not_overflow() {
        let mut set = KeySet::default();
        assert!(set.insert(130));
        assert_eq!(set.rotation(Some(usize::MAX)).collect::<Vec<_>>(), [130]);
        assert_eq!(set.rotation(Some(130)).collect::<Vec<_>>(), [130]);
        assert!(!set.remove(&usize::MAX));
    }
}
