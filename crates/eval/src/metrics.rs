//! Full-ranking accuracy and beyond-accuracy metrics at cutoffs K.
//!
//! Per-user metrics take `hits`, the relevance (true/false) of the ranked list,
//! best first, and `n_relevant`, the size of the user's test set. Definitions
//! (binary relevance throughout, as the reference protocol uses):
//! - Recall@K = hits in the top K / min(K, |test|) (so a perfect list scores 1
//!   even when |test| > K);
//! - Precision@K = hits in the top K / K;
//! - NDCG@K = Σ_{p<K} hit_p / log2(p + 2), divided by the ideal DCG of
//!   min(K, |test|) hits;
//! - MAP@K: AP@K = Σ_{p<K} hit_p · Precision@(p+1) / min(K, |test|);
//! - MRR@K = 1 / rank of the first hit within the top K (0 without a hit);
//! - HitRate@K = 1 if any hit in the top K.
//!
//! Over a population: each of those is averaged over users; Coverage@K is the
//! share of the catalogue that appears in at least one top-K list; average
//! popularity@K is the mean training popularity (number of training users) of
//! all recommended items, which shows how much a model leans on bestsellers.

/// Recall@K of one ranked list.
pub fn recall(hits: &[bool], n_relevant: usize, k: usize) -> f64 {
    let denominator = k.min(n_relevant);
    if denominator == 0 {
        return 0.0;
    }
    count(hits, k) as f64 / denominator as f64
}

/// Precision@K of one ranked list.
pub fn precision(hits: &[bool], k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    count(hits, k) as f64 / k as f64
}

/// NDCG@K of one ranked list, binary gains, ideal over min(K, |test|).
pub fn ndcg(hits: &[bool], n_relevant: usize, k: usize) -> f64 {
    let ideal: f64 = (0..k.min(n_relevant)).map(discount).sum();
    if ideal == 0.0 {
        return 0.0;
    }
    let dcg: f64 = hits
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, &h)| h)
        .map(|(p, _)| discount(p))
        .sum();
    dcg / ideal
}

/// AP@K of one ranked list (the per-user term of MAP@K).
pub fn average_precision(hits: &[bool], n_relevant: usize, k: usize) -> f64 {
    let denominator = k.min(n_relevant);
    if denominator == 0 {
        return 0.0;
    }
    let mut found = 0usize;
    let mut sum = 0.0;
    for (p, _) in hits.iter().take(k).enumerate().filter(|(_, &h)| h) {
        found += 1;
        sum += found as f64 / (p + 1) as f64;
    }
    sum / denominator as f64
}

/// Reciprocal rank of the first hit within the top K (0 if none).
pub fn reciprocal_rank(hits: &[bool], k: usize) -> f64 {
    hits.iter()
        .take(k)
        .position(|&h| h)
        .map_or(0.0, |p| 1.0 / (p + 1) as f64)
}

/// 1 if the top K holds any hit.
pub fn hit_rate(hits: &[bool], k: usize) -> f64 {
    if hits.iter().take(k).any(|&h| h) {
        1.0
    } else {
        0.0
    }
}

fn count(hits: &[bool], k: usize) -> usize {
    hits.iter().take(k).filter(|&&h| h).count()
}

fn discount(position: usize) -> f64 {
    1.0 / ((position + 2) as f64).log2()
}

/// All metrics at one cutoff, averaged over the evaluated users.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MetricsAtK {
    /// The cutoff.
    pub k: usize,
    /// Mean Recall@K.
    pub recall: f64,
    /// Mean Precision@K.
    pub precision: f64,
    /// Mean NDCG@K.
    pub ndcg: f64,
    /// MAP@K.
    pub map: f64,
    /// MRR@K.
    pub mrr: f64,
    /// Share of users with a hit in the top K.
    pub hit_rate: f64,
    /// Distinct items in all top-K lists / all items.
    pub coverage: f64,
    /// Mean training popularity of the recommended items.
    pub avg_popularity: f64,
}

/// The result of one evaluation: metrics per cutoff and how many users they average.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    /// Number of users averaged over (users with a non-empty test set).
    pub users: usize,
    /// One entry per cutoff, in increasing K.
    pub at: Vec<MetricsAtK>,
}

impl Metrics {
    /// The metrics at cutoff `k`, if it was computed.
    pub fn at_k(&self, k: usize) -> Option<&MetricsAtK> {
        self.at.iter().find(|m| m.k == k)
    }
}

/// Sums per-user metrics; partial sums from threads are merged.
#[derive(Debug, Clone)]
pub struct Accumulator {
    ks: Vec<usize>,
    users: usize,
    /// Per cutoff: recall, precision, ndcg, ap, rr, hit sums.
    sums: Vec<[f64; 6]>,
    /// Per cutoff: which items were recommended to someone.
    covered: Vec<Vec<bool>>,
    popularity_sum: Vec<f64>,
    recommended: Vec<u64>,
}

impl Accumulator {
    /// An empty accumulator for cutoffs `ks` (sorted and deduplicated here) over
    /// `n_items` items.
    pub fn new(ks: &[usize], n_items: usize) -> Self {
        let mut ks = ks.to_vec();
        ks.sort_unstable();
        ks.dedup();
        let n = ks.len();
        Self {
            ks,
            users: 0,
            sums: vec![[0.0; 6]; n],
            covered: vec![vec![false; n_items]; n],
            popularity_sum: vec![0.0; n],
            recommended: vec![0; n],
        }
    }

    /// The largest cutoff: how long ranked lists must be.
    pub fn max_k(&self) -> usize {
        self.ks.last().copied().unwrap_or(0)
    }

    /// Adds one user: `ranked` is the top list (best first, at least `max_k`
    /// items when that many candidates exist), `truth` the sorted test items and
    /// `popularity` the training popularity of every item.
    pub fn add(&mut self, ranked: &[u32], truth: &[u32], popularity: &[u32]) {
        let hits: Vec<bool> = ranked
            .iter()
            .map(|i| truth.binary_search(i).is_ok())
            .collect();
        let n = truth.len();
        self.users += 1;
        for (c, &k) in self.ks.iter().enumerate() {
            let sums = &mut self.sums[c];
            sums[0] += recall(&hits, n, k);
            sums[1] += precision(&hits, k);
            sums[2] += ndcg(&hits, n, k);
            sums[3] += average_precision(&hits, n, k);
            sums[4] += reciprocal_rank(&hits, k);
            sums[5] += hit_rate(&hits, k);
            for &item in ranked.iter().take(k) {
                if let Some(seen) = self.covered[c].get_mut(item as usize) {
                    *seen = true;
                }
                self.popularity_sum[c] +=
                    f64::from(popularity.get(item as usize).copied().unwrap_or(0));
                self.recommended[c] += 1;
            }
        }
    }

    /// Combines two partial sums over the same cutoffs and catalogue.
    pub fn merge(mut self, other: Self) -> Self {
        self.users += other.users;
        for c in 0..self.ks.len() {
            for m in 0..6 {
                self.sums[c][m] += other.sums[c][m];
            }
            for (mine, theirs) in self.covered[c].iter_mut().zip(&other.covered[c]) {
                *mine |= *theirs;
            }
            self.popularity_sum[c] += other.popularity_sum[c];
            self.recommended[c] += other.recommended[c];
        }
        self
    }

    /// The averages.
    pub fn finish(self) -> Metrics {
        let users = self.users;
        let mean = |sum: f64| if users == 0 { 0.0 } else { sum / users as f64 };
        let at = self
            .ks
            .iter()
            .enumerate()
            .map(|(c, &k)| {
                let s = self.sums[c];
                let n_items = self.covered[c].len();
                let covered = self.covered[c].iter().filter(|&&b| b).count();
                MetricsAtK {
                    k,
                    recall: mean(s[0]),
                    precision: mean(s[1]),
                    ndcg: mean(s[2]),
                    map: mean(s[3]),
                    mrr: mean(s[4]),
                    hit_rate: mean(s[5]),
                    coverage: if n_items == 0 {
                        0.0
                    } else {
                        covered as f64 / n_items as f64
                    },
                    avg_popularity: if self.recommended[c] == 0 {
                        0.0
                    } else {
                        self.popularity_sum[c] / self.recommended[c] as f64
                    },
                }
            })
            .collect();
        Metrics { users, at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    #[test]
    fn hand_computed_single_list() {
        // Ranked list: hit, miss, hit, miss, miss; 3 relevant items in total.
        let hits = [true, false, true, false, false];
        assert!(close(recall(&hits, 3, 2), 1.0 / 2.0));
        assert!(close(recall(&hits, 3, 5), 2.0 / 3.0));
        assert!(close(recall(&hits, 1, 5), 2.0));
        assert!(close(precision(&hits, 5), 0.4));
        assert!(close(precision(&hits, 2), 0.5));
        // DCG@5 = 1 + 1/log2(4) = 1.5; IDCG over 3 = 1 + 1/log2(3) + 1/2.
        let idcg3 = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!(close(ndcg(&hits, 3, 5), 1.5 / idcg3));
        // NDCG@2: DCG 1, ideal over min(2, 3) = 1 + 1/log2(3).
        assert!(close(ndcg(&hits, 3, 2), 1.0 / (1.0 + 1.0 / 3f64.log2())));
        // AP@5 = (1/1 + 2/3) / min(5, 3).
        assert!(close(
            average_precision(&hits, 3, 5),
            (1.0 + 2.0 / 3.0) / 3.0
        ));
        assert!(close(average_precision(&hits, 3, 1), 1.0));
        assert!(close(reciprocal_rank(&hits, 5), 1.0));
        assert!(close(reciprocal_rank(&[false, false, true], 3), 1.0 / 3.0));
        assert!(close(reciprocal_rank(&[false, false, true], 2), 0.0));
        assert!(close(hit_rate(&[false, true], 1), 0.0));
        assert!(close(hit_rate(&[false, true], 2), 1.0));
        assert!(close(ndcg(&[false; 3], 0, 3), 0.0));
        assert!(close(recall(&[], 0, 3), 0.0));
    }

    #[test]
    fn accumulator_averages_users_and_counts_coverage() {
        let popularity = [10, 20, 30, 40];
        let mut a = Accumulator::new(&[2, 1, 2], 4);
        assert_eq!(a.max_k(), 2);
        a.add(&[0, 1], &[1], &popularity);
        let mut b = Accumulator::new(&[1, 2], 4);
        b.add(&[2, 0], &[2, 3], &popularity);
        let m = a.merge(b).finish();
        assert_eq!(m.users, 2);
        assert_eq!(m.at.len(), 2);
        let at1 = m.at_k(1).unwrap();
        // User a: miss at 1; user b: hit at 1.
        assert!(close(at1.recall, 0.5));
        assert!(close(at1.ndcg, 0.5));
        assert!(close(at1.mrr, 0.5));
        assert!(close(at1.coverage, 2.0 / 4.0));
        assert!(close(at1.avg_popularity, (10.0 + 30.0) / 2.0));
        let at2 = m.at_k(2).unwrap();
        // a: recall 1/1, b: 1/2.
        assert!(close(at2.recall, 0.75));
        assert!(close(at2.precision, 0.5));
        assert!(close(at2.mrr, (0.5 + 1.0) / 2.0));
        assert!(close(at2.hit_rate, 1.0));
        let ndcg_a = (1.0 / 3f64.log2()) / 1.0;
        let ndcg_b = 1.0 / (1.0 + 1.0 / 3f64.log2());
        assert!(close(at2.ndcg, (ndcg_a + ndcg_b) / 2.0));
        assert!(close(at2.map, (0.5 + 0.5) / 2.0));
        assert!(close(at2.coverage, 3.0 / 4.0));
        assert!(close(at2.avg_popularity, 70.0 / 4.0));
        assert!(m.at_k(3).is_none());
    }

    #[test]
    fn empty_population_is_all_zero() {
        let m = Accumulator::new(&[10], 5).finish();
        assert_eq!(m.users, 0);
        assert_eq!(
            m.at[0],
            MetricsAtK {
                k: 10,
                ..Default::default()
            }
        );
    }
}
