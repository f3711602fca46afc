//! Selecting the best few of many scored candidates without sorting them all.
//!
//! Every list request ("the 20 most popular items in category X, page 3") ranks
//! the whole catalogue but returns a handful of items. Sorting 100,000 candidates
//! to keep 60 wastes most of the work, so [`TopK`] keeps a buffer of at most
//! `2k` candidates, shrinks it back to the best `k` with a linear-time
//! selection whenever it fills up, and sorts only those `k` at the end:
//! O(candidates) + O(k log k) time and O(k) memory.
//!
//! The order is total and deterministic: score descending, then item index
//! ascending. Determinism is what makes pagination work: page 2 asked
//! separately continues page 1 exactly, with no repeats and no gaps.

use std::cmp::Ordering;

/// The ranking order: higher score first, ties broken by lower item index.
///
/// Uses `total_cmp` so that the order is total (no panics, no inconsistent
/// comparisons); NaN scores never get here because [`TopK::push`] drops them.
pub fn rank_order(a: &(u32, f64), b: &(u32, f64)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// An accumulator for the `k` best `(item, score)` candidates seen so far.
///
/// Used directly when candidates come from several places; most callers want
/// [`top_k`], which also applies an "is this item allowed" filter and an offset.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    buf: Vec<(u32, f64)>,
    /// The worst candidate kept at the last compaction: anything that does not
    /// rank before it can never make the final `k`, so it is dropped at once.
    cutoff: Option<(u32, f64)>,
}

/// Largest buffer reserved up front; bigger requests grow the buffer as needed,
/// so a huge `offset` from a client cannot make us allocate memory in advance.
const MAX_INITIAL_CAPACITY: usize = 4096;

impl TopK {
    /// An accumulator that keeps the best `k` candidates.
    pub fn new(k: usize) -> Self {
        let capacity = k.saturating_mul(2).min(MAX_INITIAL_CAPACITY);
        Self {
            k,
            buf: Vec::with_capacity(capacity),
            cutoff: None,
        }
    }

    /// Offers one candidate. Candidates should be distinct items; NaN scores are
    /// ignored (they have no meaningful rank).
    pub fn push(&mut self, item: u32, score: f64) {
        if self.k == 0 || score.is_nan() {
            return;
        }
        let candidate = (item, score);
        if let Some(cutoff) = &self.cutoff {
            if rank_order(&candidate, cutoff) != Ordering::Less {
                return;
            }
        }
        self.buf.push(candidate);
        if self.buf.len() >= self.k.saturating_mul(2) {
            self.shrink_to_k();
        }
    }

    /// Keeps only the best `k` of the buffer (unsorted) and remembers the worst
    /// of them as the new cutoff. Linear in the buffer length.
    fn shrink_to_k(&mut self) {
        if self.buf.len() <= self.k {
            return;
        }
        self.buf.select_nth_unstable_by(self.k - 1, rank_order);
        self.buf.truncate(self.k);
        self.cutoff = Some(self.buf[self.k - 1]);
    }

    /// The best `k` candidates (or all of them, if fewer were offered), best first.
    pub fn into_sorted_vec(mut self) -> Vec<(u32, f64)> {
        self.shrink_to_k();
        self.buf.sort_unstable_by(rank_order);
        self.buf
    }
}

/// The candidates at ranks `offset..offset + n` (score descending, ties by item
/// index ascending) among those for which `allowed(item)` holds.
///
/// The filter is a closure so that callers decide what "allowed" means
/// (catalogue state, category filters, items the user has already seen) and
/// the ranking code stays free of those concerns. It is called once per
/// candidate, before anything else is done with it.
pub fn top_k<I, F>(candidates: I, allowed: F, offset: usize, n: usize) -> Vec<(u32, f64)>
where
    I: IntoIterator<Item = (u32, f64)>,
    F: Fn(u32) -> bool,
{
    if n == 0 {
        return Vec::new();
    }
    let mut best = TopK::new(offset.saturating_add(n));
    for (item, score) in candidates {
        if allowed(item) {
            best.push(item, score);
        }
    }
    let mut ranked = best.into_sorted_vec();
    if offset >= ranked.len() {
        return Vec::new();
    }
    ranked.drain(..offset);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn full_sort(
        candidates: &[(u32, f64)],
        allowed: impl Fn(u32) -> bool,
        offset: usize,
        n: usize,
    ) -> Vec<(u32, f64)> {
        let mut all: Vec<_> = candidates
            .iter()
            .copied()
            .filter(|&(i, _)| allowed(i))
            .collect();
        all.sort_by(rank_order);
        all.into_iter().skip(offset).take(n).collect()
    }

    #[test]
    fn best_first_ties_by_index() {
        let c = [(5, 1.0), (2, 3.0), (9, 3.0), (1, 1.0), (7, 2.0)];
        let got = top_k(c, |_| true, 0, 10);
        assert_eq!(got, vec![(2, 3.0), (9, 3.0), (7, 2.0), (1, 1.0), (5, 1.0)]);
    }

    #[test]
    fn offset_and_filter() {
        let c = [(0, 5.0), (1, 4.0), (2, 3.0), (3, 2.0), (4, 1.0)];
        assert_eq!(top_k(c, |i| i % 2 == 0, 1, 1), vec![(2, 3.0)]);
        assert_eq!(top_k(c, |_| true, 4, 3), vec![(4, 1.0)]);
        assert!(top_k(c, |_| true, 5, 3).is_empty());
        assert!(top_k(c, |_| true, 0, 0).is_empty());
    }

    #[test]
    fn huge_offset_does_not_overflow_or_allocate() {
        let c = [(0, 1.0), (1, 2.0)];
        assert!(top_k(c, |_| true, usize::MAX, usize::MAX).is_empty());
        assert_eq!(top_k(c, |_| true, 1, usize::MAX), vec![(0, 1.0)]);
    }

    #[test]
    fn nan_scores_are_dropped() {
        let c = [(0, f64::NAN), (1, 2.0), (2, f64::NAN)];
        assert_eq!(top_k(c, |_| true, 0, 5), vec![(1, 2.0)]);
    }

    #[test]
    fn many_compactions_keep_the_best() {
        // Ascending scores: every compaction has to replace its whole buffer.
        let c: Vec<_> = (0..10_000u32).map(|i| (i, f64::from(i % 977))).collect();
        assert_eq!(
            top_k(c.iter().copied(), |_| true, 3, 7),
            full_sort(&c, |_| true, 3, 7)
        );
    }

    proptest! {
        #[test]
        fn equals_full_sort(
            scores in proptest::collection::vec(prop_oneof![0.0..10.0f64, (0u8..4).prop_map(f64::from)], 0..300),
            offset in 0usize..40,
            n in 0usize..40,
            modulus in 1u32..4,
        ) {
            let candidates: Vec<(u32, f64)> = scores.iter().enumerate().map(|(i, &s)| (i as u32, s)).collect();
            let allowed = |i: u32| i.is_multiple_of(modulus);
            let got = top_k(candidates.iter().copied(), allowed, offset, n);
            prop_assert_eq!(got, full_sort(&candidates, allowed, offset, n));
        }

        #[test]
        fn shuffled_input_gives_the_same_answer(
            scores in proptest::collection::vec(0u8..5, 0..200),
            k in 1usize..30,
        ) {
            let forward: Vec<(u32, f64)> = scores.iter().enumerate().map(|(i, &s)| (i as u32, f64::from(s))).collect();
            let backward: Vec<_> = forward.iter().rev().copied().collect();
            prop_assert_eq!(top_k(forward, |_| true, 0, k), top_k(backward, |_| true, 0, k));
        }
    }
}
