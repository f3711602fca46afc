//! Latest: the most recently published items first.

use tephra_core::Timestamp;

use crate::topk::top_k;

/// Marks an item that is not in the list (never published here, or removed).
const NOT_LISTED: i64 = i64::MIN;

/// Publish times per item, indexed by dense item index.
///
/// Fresh content is the fallback when there are too few events to rank by
/// (a new catalogue, a narrow category), so every listed item is a candidate.
#[derive(Debug, Clone, Default)]
pub struct Latest {
    published_ms: Vec<i64>,
}

impl Latest {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lists `item` (or moves it) with this publish time.
    pub fn set(&mut self, item: u32, published_at: Timestamp) {
        let slot = item as usize;
        if slot >= self.published_ms.len() {
            self.published_ms.resize(slot + 1, NOT_LISTED);
        }
        // `NOT_LISTED` is not a valid time (before 1970); clamping keeps it reserved.
        self.published_ms[slot] = published_at.millis().max(NOT_LISTED + 1);
    }

    /// Takes `item` off the list.
    pub fn remove(&mut self, item: u32) {
        if let Some(slot) = self.published_ms.get_mut(item as usize) {
            *slot = NOT_LISTED;
        }
    }

    /// The publish time of a listed item.
    pub fn published_at(&self, item: u32) -> Option<Timestamp> {
        self.published_ms
            .get(item as usize)
            .filter(|&&ms| ms != NOT_LISTED)
            .map(|&ms| Timestamp(ms))
    }

    /// Items at ranks `offset..offset + n` by publish time (newest first, ties by
    /// item index), among listed items for which `allowed` holds. Scores are
    /// publish times in Unix seconds.
    pub fn top(&self, allowed: impl Fn(u32) -> bool, offset: usize, n: usize) -> Vec<(u32, f64)> {
        // Milliseconds below 2^53 are exact in f64, so ranking by them loses nothing.
        let candidates = self
            .published_ms
            .iter()
            .enumerate()
            .filter(|&(_, &ms)| ms != NOT_LISTED)
            .map(|(i, &ms)| (i as u32, ms as f64));
        let mut ranked = top_k(candidates, allowed, offset, n);
        for (_, score) in &mut ranked {
            *score /= 1000.0;
        }
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn newest_first_in_seconds() {
        let mut l = Latest::new();
        l.set(4, Timestamp(1_500));
        l.set(1, Timestamp(3_000));
        l.set(2, Timestamp(1_500));
        assert_eq!(l.top(|_| true, 0, 10), vec![(1, 3.0), (2, 1.5), (4, 1.5)]);
        assert_eq!(l.top(|i| i != 1, 1, 10), vec![(4, 1.5)]);
        assert_eq!(l.published_at(2), Some(Timestamp(1_500)));
        assert_eq!(l.published_at(0), None);
    }

    #[test]
    fn removed_and_moved_items() {
        let mut l = Latest::new();
        l.set(0, Timestamp(1_000));
        l.set(1, Timestamp(2_000));
        l.remove(1);
        l.remove(99);
        assert_eq!(l.top(|_| true, 0, 10), vec![(0, 1.0)]);
        l.set(1, Timestamp(500));
        assert_eq!(l.top(|_| true, 0, 10), vec![(0, 1.0), (1, 0.5)]);
    }

    proptest! {
        #[test]
        fn matches_a_full_sort(times in proptest::collection::vec(proptest::option::of(0i64..50), 0..80), offset in 0usize..20, n in 0usize..20) {
            let mut l = Latest::new();
            for (i, t) in times.iter().enumerate() {
                if let Some(t) = t {
                    l.set(i as u32, Timestamp(*t * 1000));
                }
            }
            let mut expected: Vec<(u32, f64)> =
                times.iter().enumerate().filter_map(|(i, t)| t.map(|t| (i as u32, t as f64))).collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let expected: Vec<_> = expected.into_iter().skip(offset).take(n).collect();
            prop_assert_eq!(l.top(|_| true, offset, n), expected);
        }
    }
}
