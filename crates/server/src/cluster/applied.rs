//! Which events of the log a node has applied to its live state.
//!
//! In a cluster, events reach a node's live state three ways: its own writes,
//! the change stream of the other nodes, and catching up from the store when a
//! change was missed. Events of different nodes arrive out of `seq` order and
//! some twice, so each is applied only if this set says it was not yet.

use std::collections::BTreeSet;

/// The positions applied so far: every `seq` below `watermark`, plus `above`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AppliedSeqs {
    watermark: u64,
    above: BTreeSet<u64>,
}

impl AppliedSeqs {
    /// Every position below `next` applied (a state rebuilt from the log).
    pub fn up_to(next: u64) -> Self {
        Self {
            watermark: next,
            above: BTreeSet::new(),
        }
    }

    /// Records `seq` as applied; `false` if it already was.
    pub fn insert(&mut self, seq: u64) -> bool {
        if seq < self.watermark || !self.above.insert(seq) {
            return false;
        }
        while self.above.remove(&self.watermark) {
            self.watermark += 1;
        }
        true
    }

    /// Whether `seq` was applied.
    pub fn contains(&self, seq: u64) -> bool {
        seq < self.watermark || self.above.contains(&seq)
    }

    /// The first position not applied: where catching up starts.
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// One past the highest position applied.
    pub fn end(&self) -> u64 {
        self.above
            .last()
            .map_or(self.watermark, |last| (last + 1).max(self.watermark))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_and_repeated_positions() {
        let mut applied = AppliedSeqs::up_to(3);
        assert!(!applied.insert(2), "below the watermark");
        assert!(applied.insert(5));
        assert!(!applied.insert(5), "twice");
        assert_eq!((applied.watermark(), applied.end()), (3, 6));
        assert!(!applied.contains(4) && applied.contains(5));
        assert!(applied.insert(3));
        assert_eq!(applied.watermark(), 4);
        assert!(applied.insert(4));
        assert_eq!(applied.watermark(), 6, "the gap closed");
        assert_eq!(applied.end(), 6);
    }
}
