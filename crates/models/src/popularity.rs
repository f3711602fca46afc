//! All-time popularity: how many positive events each item received.

use crate::topk::top_k;

/// Per-item counts of positive events, indexed by dense item index.
///
/// Every positive event counts 1, whatever its `value`: a single purchase of a
/// very expensive item or a 10-hour dwell time should not outweigh many users
/// each showing interest once. Weighting by value can come later as an option.
/// Counts saturate at `u32::MAX` instead of wrapping.
#[derive(Debug, Clone, Default)]
pub struct Popularity {
    counts: Vec<u32>,
}

impl Popularity {
    /// No counts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one positive event for `item`.
    pub fn record(&mut self, item: u32) {
        let slot = item as usize;
        if slot >= self.counts.len() {
            self.counts.resize(slot + 1, 0);
        }
        self.counts[slot] = self.counts[slot].saturating_add(1);
    }

    /// Positive events recorded for `item` (0 if none).
    pub fn count(&self, item: u32) -> u32 {
        self.counts.get(item as usize).copied().unwrap_or(0)
    }

    /// Items at ranks `offset..offset + n` by count (descending, ties by item
    /// index), among items with at least one event for which `allowed` holds.
    /// Scores are the counts.
    pub fn top(&self, allowed: impl Fn(u32) -> bool, offset: usize, n: usize) -> Vec<(u32, f64)> {
        let candidates = self
            .counts
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c > 0)
            .map(|(i, &c)| (i as u32, f64::from(c)));
        top_k(candidates, allowed, offset, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_and_ranks() {
        let mut p = Popularity::new();
        for item in [3, 1, 3, 7, 3, 1] {
            p.record(item);
        }
        assert_eq!(
            (
                p.count(3),
                p.count(1),
                p.count(7),
                p.count(0),
                p.count(1000)
            ),
            (3, 2, 1, 0, 0)
        );
        assert_eq!(p.top(|_| true, 0, 10), vec![(3, 3.0), (1, 2.0), (7, 1.0)]);
        assert_eq!(p.top(|i| i != 3, 0, 1), vec![(1, 2.0)]);
        assert_eq!(p.top(|_| true, 2, 5), vec![(7, 1.0)]);
    }

    #[test]
    fn items_without_events_are_not_listed() {
        let mut p = Popularity::new();
        p.record(5);
        assert_eq!(p.top(|_| true, 0, 10), vec![(5, 1.0)]);
    }

    proptest! {
        #[test]
        fn matches_a_naive_count(events in proptest::collection::vec(0u32..20, 0..200), n in 0usize..25) {
            let mut p = Popularity::new();
            let mut naive = [0u32; 20];
            for &e in &events {
                p.record(e);
                naive[e as usize] += 1;
            }
            let mut expected: Vec<(u32, f64)> =
                (0..20u32).filter(|&i| naive[i as usize] > 0).map(|i| (i, f64::from(naive[i as usize]))).collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            expected.truncate(n);
            prop_assert_eq!(p.top(|_| true, 0, n), expected);
        }
    }
}
