//! Picking the best-scored items out of a dense score vector.

/// The `n` highest-scored items that pass `keep`, best first; ties go to the lower
/// index so results are deterministic. NaN and −∞ scores are never returned.
///
/// O(items + n log n): a partial selection, never a full sort of the catalogue.
pub fn top_n(scores: &[f32], n: usize, keep: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
    if n == 0 {
        return Vec::new();
    }
    let mut candidates: Vec<(u32, f32)> = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_nan() && **s != f32::NEG_INFINITY)
        .map(|(i, &s)| (i as u32, s))
        .filter(|&(i, _)| keep(i))
        .collect();
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if candidates.len() > n {
        candidates.select_nth_unstable_by(n - 1, order);
        candidates.truncate(n);
    }
    candidates.sort_unstable_by(order);
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn picks_best_and_breaks_ties_by_index() {
        let s = [0.5, 2.0, f32::NAN, 2.0, f32::NEG_INFINITY, 1.0];
        assert_eq!(top_n(&s, 3, |_| true), vec![(1, 2.0), (3, 2.0), (5, 1.0)]);
        assert_eq!(top_n(&s, 10, |i| i != 1).len(), 3);
        assert!(top_n(&s, 0, |_| true).is_empty());
    }

    proptest! {
        #[test]
        fn equals_a_full_sort(scores in proptest::collection::vec(-5i8..5, 0..200), n in 0usize..50) {
            let scores: Vec<f32> = scores.into_iter().map(f32::from).collect();
            let mut full: Vec<(u32, f32)> = scores.iter().enumerate().map(|(i, &s)| (i as u32, s)).collect();
            full.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            full.truncate(n);
            prop_assert_eq!(top_n(&scores, n, |_| true), full);
        }
    }
}
