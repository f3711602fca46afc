//! The running best `k` candidates of a scan, with a cheap "could this still
//! make it?" test so that the caller's filter runs only for contenders.
//!
//! Same scheme as [`crate::topk::TopK`] (a buffer of up to `2k`, shrunk back to
//! `k` by a linear-time selection), on `f32` scores and with [`Best::admits`]
//! exposed: the scans compute a score first and ask `allow(item)` only when the
//! item would enter the buffer, which for most items of a large catalogue it
//! would not.

use std::cmp::Ordering;

/// Higher score first, ties by lower item index; total on NaN-free scores.
fn rank(a: &(u32, f32), b: &(u32, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

#[derive(Debug, Clone)]
pub(crate) struct Best {
    k: usize,
    buf: Vec<(u32, f32)>,
    /// The worst kept candidate after the last shrink: nothing ranking after it
    /// can make the final `k`.
    cutoff: Option<(u32, f32)>,
}

impl Best {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            buf: Vec::with_capacity(k.saturating_mul(2).min(1 << 16)),
            cutoff: None,
        }
    }

    /// Whether `(item, score)` would currently be kept.
    #[inline(always)]
    pub(crate) fn admits(&self, item: u32, score: f32) -> bool {
        match self.cutoff {
            None => self.k > 0,
            Some((worst, floor)) => score > floor || (score == floor && item < worst),
        }
    }

    /// Adds a candidate that [`Self::admits`] accepted.
    #[inline(always)]
    pub(crate) fn push(&mut self, item: u32, score: f32) {
        // −0 and +0 are one score: adding +0 turns −0 into +0.
        self.buf.push((item, score + 0.0));
        if self.buf.len() >= self.k.saturating_mul(2) {
            self.shrink();
        }
    }

    /// Candidates kept so far (at most `2k`; at least `min(k, offered)`).
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    fn shrink(&mut self) {
        if self.buf.len() <= self.k {
            return;
        }
        self.buf.select_nth_unstable_by(self.k - 1, rank);
        self.buf.truncate(self.k);
        self.cutoff = Some(self.buf[self.k - 1]);
    }

    /// The best `k`, best first.
    pub(crate) fn into_sorted(mut self) -> Vec<(u32, f32)> {
        self.shrink();
        self.buf.sort_unstable_by(rank);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_with_ties_by_index() {
        let mut best = Best::new(3);
        for (i, s) in [
            (4, 1.0),
            (2, 5.0),
            (9, 5.0),
            (1, 5.0),
            (0, 0.5),
            (3, 2.0),
            (7, 5.0),
        ] {
            if best.admits(i, s) {
                best.push(i, s);
            }
        }
        assert_eq!(best.into_sorted(), vec![(1, 5.0), (2, 5.0), (7, 5.0)]);
        let mut none = Best::new(0);
        assert!(!none.admits(0, 1.0));
        none.shrink();
        assert!(none.into_sorted().is_empty());
    }
}
