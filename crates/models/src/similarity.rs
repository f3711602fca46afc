//! Sparse item × item similarity graphs: the structure item-kNN and RP3beta
//! share, and the one builder that computes them.
//!
//! Both models are "score = history · S" for a sparse S whose row `i` holds the
//! `K` strongest neighbours of item `i`. They differ only in the weights fed to a
//! sparse product and in a formula applied to each dot product (which may use
//! one number per item: a norm, a count, a popularity penalty), so
//! [`top_k_product`] takes those as arguments and the models stay a few lines
//! each.
//!
//! The builder never materialises the dense items × items matrix: row `i` of
//! `L·R` is accumulated into a per-thread dense buffer (one `f32` per item,
//! columns renumbered by popularity so that the hot slots share cache lines)
//! while a list remembers which slots the row touched; only those are
//! finished, reset, selected down to `K` with a linear-time selection and
//! stored. Memory is O(items · K) for the result plus one buffer per thread;
//! time is Σ_u |I_u|² multiply-adds for a users × items matrix, spread over the
//! rayon pool row by row.

use std::cmp::Ordering;

use rayon::prelude::*;
use tephra_core::Interactions;

use crate::error::ModelError;
use crate::recommender::History;

/// A sparse item × item matrix in CSR form, each row best-first.
///
/// Row `i` lists up to `K` items `j ≠ i` with their weight `S_ij` — what item
/// `i` in a history adds to the score of item `j` — sorted by weight
/// descending, ties by lower index, so that the first `n` entries of a row are
/// directly the `n` most similar items.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseSimilarity {
    n_items: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

/// The neighbour order: higher weight first, ties broken by lower item index.
fn best_first(a: &(u32, f32), b: &(u32, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

impl SparseSimilarity {
    /// Rebuilds a matrix from its CSR arrays (e.g. a snapshot), checking every
    /// invariant scoring relies on: shape, item range, finite weights, no
    /// diagonal entry and best-first rows.
    pub fn from_csr(
        n_items: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Shape {
            model: "similarity",
            message,
        };
        if indptr.len() != n_items + 1 || indptr.first() != Some(&0) {
            return Err(bad(format!(
                "indptr must have {} entries starting at 0",
                n_items + 1
            )));
        }
        if indices.len() != values.len() || indptr.last() != Some(&indices.len()) {
            return Err(bad(
                "indptr, indices and values disagree on the number of entries".into(),
            ));
        }
        if let Some(i) = (0..n_items).find(|&i| indptr[i] > indptr[i + 1]) {
            return Err(bad(format!("indptr decreases at row {i}")));
        }
        for i in 0..n_items {
            let (start, end) = (indptr[i], indptr[i + 1]);
            let row: Vec<(u32, f32)> = indices[start..end]
                .iter()
                .copied()
                .zip(values[start..end].iter().copied())
                .collect();
            if let Some(&(j, _)) = row
                .iter()
                .find(|&&(j, _)| j as usize >= n_items || j as usize == i)
            {
                return Err(bad(format!("row {i} has an invalid neighbour {j}")));
            }
            if row.iter().any(|&(_, w)| !w.is_finite()) {
                return Err(bad(format!("row {i} has a non-finite weight")));
            }
            if row
                .windows(2)
                .any(|w| best_first(&w[0], &w[1]) != Ordering::Less)
            {
                return Err(bad(format!("row {i} is not sorted best-first")));
            }
        }
        Ok(Self {
            n_items,
            indptr,
            indices,
            values,
        })
    }

    /// Builds the CSR arrays from finished rows (already best-first).
    fn from_rows(n_items: usize, rows: Vec<Vec<(u32, f32)>>) -> Self {
        let nnz = rows.iter().map(Vec::len).sum();
        let mut indptr = Vec::with_capacity(n_items + 1);
        let mut indices = Vec::with_capacity(nnz);
        let mut values = Vec::with_capacity(nnz);
        indptr.push(0);
        for row in rows {
            for (j, w) in row {
                indices.push(j);
                values.push(w);
            }
            indptr.push(indices.len());
        }
        Self {
            n_items,
            indptr,
            indices,
            values,
        }
    }

    /// Number of items (rows and columns).
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Number of stored neighbour entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The neighbours of `item`, best first, and their weights; empty outside
    /// the catalogue.
    pub fn row(&self, item: u32) -> (&[u32], &[f32]) {
        let i = item as usize;
        if i >= self.n_items {
            return (&[], &[]);
        }
        let range = self.indptr[i]..self.indptr[i + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    /// S_ij, 0 when `j` is not among the neighbours of `i`.
    pub fn get(&self, i: u32, j: u32) -> f32 {
        let (items, weights) = self.row(i);
        items
            .iter()
            .position(|&k| k == j)
            .map_or(0.0, |p| weights[p])
    }

    /// Row offsets: row `i` occupies `indptr()[i]..indptr()[i + 1]`.
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// Neighbour index of every entry, row after row.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Weight of every entry, aligned with [`Self::indices`].
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Scales every row to sum to 1 in absolute value (rows of zeros stay), so
    /// that a history item with many strong neighbours does not drown the
    /// others. Order within a row is unchanged.
    pub fn normalize_rows_l1(&mut self) {
        for i in 0..self.n_items {
            let row = &mut self.values[self.indptr[i]..self.indptr[i + 1]];
            let sum: f32 = row.iter().map(|w| w.abs()).sum();
            if sum > 0.0 {
                row.iter_mut().for_each(|w| *w /= sum);
            }
        }
    }

    /// `scores = Σ_i w_i · S_i·` over the weighted history: every history item
    /// spreads its weight to its neighbours. History items outside the catalogue
    /// are ignored; `scores` beyond the catalogue are left at 0.
    pub fn score_into(&self, history: History<'_>, scores: &mut [f32]) {
        scores.fill(0.0);
        for &(item, w) in history {
            if w == 0.0 {
                continue;
            }
            let (items, weights) = self.row(item);
            for (&j, &s) in items.iter().zip(weights) {
                if let Some(slot) = scores.get_mut(j as usize) {
                    *slot += w * s;
                }
            }
        }
    }

    /// The first `n` neighbours of `item` (its most similar items).
    pub fn top_neighbours(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        let (items, weights) = self.row(item);
        items
            .iter()
            .copied()
            .zip(weights.iter().copied())
            .take(n)
            .collect()
    }
}

/// The top `k` entries of every row of `finish(L·R)`, computed sparsely.
///
/// `left` is items × users (row `i`: the users of item `i` with a weight
/// a_iu), `right` is users × items (b_uj). For every item `i` and every item
/// `j ≠ i`, the dot product d_ij = Σ_u a_iu · b_uj is summed over `i`'s users
/// in increasing order; where it is not zero, `finish(d_ij, v_i, v_j)` gives the
/// final weight, `v` being `item_values` (one number per item, e.g. its norm).
/// Weights that are zero or not finite are dropped; of the rest the `k` largest
/// are kept (ties to the lower index), best first.
///
/// The finishing formula sees items only through `item_values` on purpose: the
/// builder renumbers items internally for cache locality and hands `finish`
/// the values in that order, so the per-entry work reads memory that is
/// already hot instead of jumping across the catalogue.
///
/// Fails unless the product is a square items × items matrix (`left` is
/// n × m and `right` m × n) and `item_values` has one value per item.
pub fn top_k_product<F>(
    left: &Interactions,
    right: &Interactions,
    item_values: &[f32],
    k: usize,
    finish: F,
) -> Result<SparseSimilarity, ModelError>
where
    F: Fn(f32, f32, f32) -> f32 + Sync,
{
    if left.n_items() != right.n_users()
        || left.n_users() != right.n_items()
        || item_values.len() != right.n_items()
    {
        return Err(ModelError::Shape {
            model: "similarity",
            message: format!(
                "cannot multiply {} × {} by {} × {} with {} item values",
                left.n_users(),
                left.n_items(),
                right.n_users(),
                right.n_items(),
                item_values.len()
            ),
        });
    }
    let n = right.n_items();
    if k == 0 {
        return Ok(SparseSimilarity::from_rows(n, vec![Vec::new(); n]));
    }
    let right = Relabeled::by_popularity(right, item_values);
    let rows: Vec<Vec<(u32, f32)>> = (0..n as u32)
        .into_par_iter()
        // Bounds how often a scratch buffer (4 bytes per item) is allocated.
        .with_min_len(64)
        .map_init(
            || Accumulator::new(n),
            |acc, i| acc.row(i, left, &right, k, &finish),
        )
        .collect();
    Ok(SparseSimilarity::from_rows(n, rows))
}

/// The right-hand factor with its columns renumbered by decreasing
/// popularity.
///
/// Popular items are reached by almost every row, so giving them the lowest
/// numbers packs the hot part of the accumulator into a few cache lines;
/// without it every access is a random jump over the whole catalogue. Rows
/// stay in the original order (each row's entries are no longer sorted, which
/// the product does not need), so every dot product is summed in exactly the
/// same order as without renumbering.
struct Relabeled<'a> {
    indptr: &'a [usize],
    /// New column numbers, aligned with `values`.
    indices: Vec<u32>,
    values: &'a [f32],
    /// `original[new]` is the original column number.
    original: Vec<u32>,
    /// `renumbered[original]` is the new column number.
    renumbered: Vec<u32>,
    /// The item values in the new order.
    item_values: Vec<f32>,
    /// Whether every value is exactly 1 (binary data).
    unit_values: bool,
}

impl<'a> Relabeled<'a> {
    fn by_popularity(x: &'a Interactions, item_values: &[f32]) -> Self {
        let counts = x.column_counts();
        let mut original: Vec<u32> = (0..x.n_items() as u32).collect();
        original.sort_by_key(|&j| (std::cmp::Reverse(counts[j as usize]), j));
        let mut new = vec![0u32; x.n_items()];
        for (rank, &j) in original.iter().enumerate() {
            new[j as usize] = rank as u32;
        }
        Self {
            indptr: x.indptr(),
            indices: x.indices().iter().map(|&j| new[j as usize]).collect(),
            values: x.values(),
            item_values: original.iter().map(|&j| item_values[j as usize]).collect(),
            original,
            renumbered: new,
            unit_values: x.values().iter().all(|&v| v == 1.0),
        }
    }
}

/// The running selection of a row's best `k` candidates.
struct Best<'a> {
    /// At most `2k` candidates (original item, weight), shrunk to the best `k`
    /// whenever full.
    candidates: &'a mut Vec<(u32, f32)>,
    k: usize,
    /// The k-th best weight after the last shrink: anything below can never
    /// make the cut, so it is not even stored.
    threshold: f32,
}

impl Best<'_> {
    /// Considers column `j` (renumbered) with weight `w`; zero and non-finite
    /// weights are dropped.
    #[inline(always)]
    fn offer(&mut self, j: u32, w: f32, original: &[u32]) {
        if !(w.is_finite() && w != 0.0 && w >= self.threshold) {
            return;
        }
        self.candidates.push((original[j as usize], w));
        if self.candidates.len() >= 2 * self.k {
            self.candidates
                .select_nth_unstable_by(self.k - 1, best_first);
            self.candidates.truncate(self.k);
            self.threshold = self.candidates[self.k - 1].1;
        }
    }
}

/// Per-thread scratch for one row of the sparse product.
struct Accumulator {
    /// The running dot product of every (renumbered) column. A column is
    /// recorded in `touched` when a product lands on a zero slot, and set back
    /// to zero when the row is finished, so the buffer is never cleared as a
    /// whole and stays 4 bytes per item (cache-resident for 100k items).
    sums: Vec<f32>,
    /// Columns the current row reached, in `touched[..n_touched]` (a column
    /// whose sum came back to exactly zero may appear twice; the second visit
    /// reads zero and is skipped). The vector is only ever grown, and written
    /// by index, so that recording a column needs no branch.
    touched: Vec<u32>,
    /// The best candidates of the current row (see [`Best`]).
    candidates: Vec<(u32, f32)>,
}

impl Accumulator {
    fn new(n: usize) -> Self {
        Self {
            sums: vec![0.0; n],
            touched: Vec::new(),
            candidates: Vec::new(),
        }
    }

    fn row<F>(
        &mut self,
        i: u32,
        left: &Interactions,
        right: &Relabeled<'_>,
        k: usize,
        finish: &F,
    ) -> Vec<(u32, f32)>
    where
        F: Fn(f32, f32, f32) -> f32,
    {
        let n_touched = if right.unit_values {
            self.accumulate::<true>(i, left, right)
        } else {
            self.accumulate::<false>(i, left, right)
        };
        self.candidates.clear();
        let mut best = Best {
            candidates: &mut self.candidates,
            k,
            threshold: f32::NEG_INFINITY,
        };
        let own = right.renumbered[i as usize];
        let row_value = right.item_values[own as usize];
        let mut offer = |j: u32, sum: f32| {
            if j != own {
                let w = finish(sum, row_value, right.item_values[j as usize]);
                best.offer(j, w, &right.original);
            }
        };
        for &j in &self.touched[..n_touched] {
            let sum = std::mem::take(&mut self.sums[j as usize]);
            if sum != 0.0 {
                offer(j, sum);
            }
        }
        if self.candidates.len() > k {
            self.candidates.select_nth_unstable_by(k - 1, best_first);
            self.candidates.truncate(k);
        }
        self.candidates.sort_unstable_by(best_first);
        self.candidates.clone()
    }

    /// Adds row `i` of the product into `sums`; returns how many entries of
    /// `touched` it recorded. `UNIT` skips reading `right`'s values when they
    /// are all 1 (binary data), which halves the memory traffic of the hot
    /// loop.
    fn accumulate<const UNIT: bool>(
        &mut self,
        i: u32,
        left: &Interactions,
        right: &Relabeled<'_>,
    ) -> usize {
        let sums = &mut self.sums[..];
        let mut n_touched = 0;
        let (users, left_weights) = left.row(i);
        for (k, (&u, &a)) in users.iter().zip(left_weights).enumerate() {
            // The rows of different users lie far apart: fetching upcoming
            // rows' offsets and first entries while this row is summed hides
            // most of the memory latency that otherwise dominates.
            if let Some(&later) = users.get(k + 2 * PREFETCH_AHEAD) {
                prefetch(right.indptr, later as usize);
            }
            if let Some(&next) = users.get(k + PREFETCH_AHEAD) {
                let start = right.indptr[next as usize];
                prefetch(&right.indices, start);
                if !UNIT {
                    prefetch(right.values, start);
                }
            }
            let range = right.indptr[u as usize]..right.indptr[u as usize + 1];
            let cols = &right.indices[range.clone()];
            if self.touched.len() < n_touched + cols.len() {
                self.touched.resize(n_touched + cols.len(), 0);
            }
            let touched = &mut self.touched[n_touched..n_touched + cols.len()];
            let mut recorded = 0;
            // Renumbered columns are below the item count by construction, so
            // no index check below can fail; `recorded` never exceeds the
            // number of columns visited, so the slot written is in range.
            if UNIT {
                for &j in cols {
                    let sum = &mut sums[j as usize];
                    touched[recorded] = j;
                    recorded += usize::from(*sum == 0.0);
                    *sum += a;
                }
            } else {
                for (&j, &b) in cols.iter().zip(&right.values[range]) {
                    let sum = &mut sums[j as usize];
                    touched[recorded] = j;
                    recorded += usize::from(*sum == 0.0);
                    *sum += a * b;
                }
            }
            n_touched += recorded;
        }
        n_touched
    }
}

/// How many users ahead the row of a user is fetched (and twice as far ahead
/// its offsets): rows average a few dozen entries, too short to hide a memory
/// access behind one row of work.
const PREFETCH_AHEAD: usize = 3;

/// Asks the CPU to start loading `data[at]` into the cache; does nothing if
/// `at` is out of bounds or on other architectures.
#[inline(always)]
fn prefetch<T>(data: &[T], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(element) = data.get(at) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint: it has no architectural effect,
        // cannot fault, and the address is a live element of `data` anyway.
        // `_mm_prefetch` needs SSE, which every x86-64 CPU has.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(element).cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tephra_core::Duplicates;

    fn matrix(n_rows: usize, n_cols: usize, cells: &[(u32, u32, f32)]) -> Interactions {
        Interactions::from_triples(n_rows, n_cols, cells.iter().copied(), Duplicates::Max).unwrap()
    }

    /// The same computation with dense matrices and a full sort.
    fn brute_force(
        left: &Interactions,
        right: &Interactions,
        values: &[f32],
        k: usize,
        finish: impl Fn(f32, f32, f32) -> f32,
    ) -> Vec<Vec<(u32, f32)>> {
        let (n_rows, n_inner, n_cols) = (left.n_users(), left.n_items(), right.n_items());
        let dense = |m: &Interactions, rows: usize, cols: usize| {
            let mut d = vec![vec![None::<f32>; cols]; rows];
            for (r, row) in d.iter_mut().enumerate() {
                let (idx, vals) = m.row(r as u32);
                for (&c, &v) in idx.iter().zip(vals) {
                    row[c as usize] = Some(v);
                }
            }
            d
        };
        let l = dense(left, n_rows, n_inner);
        let r = dense(right, n_inner, n_cols);
        (0..n_rows)
            .map(|i| {
                let mut row: Vec<(u32, f32)> = (0..n_cols)
                    .filter(|&j| j != i)
                    .filter_map(|j| {
                        let mut dot = None::<f32>;
                        for u in 0..n_inner {
                            if let (Some(a), Some(b)) = (l[i][u], r[u][j]) {
                                dot = Some(dot.map_or(a * b, |d| d + a * b));
                            }
                        }
                        let dot = dot.filter(|&d| d != 0.0)?;
                        let w = finish(dot, values[i], values[j]);
                        (w.is_finite() && w != 0.0).then_some((j as u32, w))
                    })
                    .collect();
                row.sort_by(best_first);
                row.truncate(k);
                row
            })
            .collect()
    }

    #[test]
    fn keeps_the_best_k_without_the_diagonal() {
        // Users {0,1,2}, {0,1}, {0,2}, {1}: co-occurrence counts of item 0 are
        // (self 3), item 1: 2, item 2: 2.
        let x = matrix(
            4,
            3,
            &[
                (0, 0, 1.0),
                (0, 1, 1.0),
                (0, 2, 1.0),
                (1, 0, 1.0),
                (1, 1, 1.0),
                (2, 0, 1.0),
                (2, 2, 1.0),
                (3, 1, 1.0),
            ],
        );
        let ones = [1.0; 3];
        let s = top_k_product(&x.transpose(), &x, &ones, 1, |d, _, _| d).unwrap();
        assert_eq!(s.row(0), (&[1u32][..], &[2.0f32][..]));
        assert_eq!(s.row(1), (&[0u32][..], &[2.0f32][..]));
        assert_eq!(s.row(2), (&[0u32][..], &[2.0f32][..]));
        let index = [0.0, 1.0, 2.0];
        let all = top_k_product(&x.transpose(), &x, &index, 10, |d, _, j| d + j).unwrap();
        assert_eq!(all.row(0), (&[2u32, 1][..], &[4.0f32, 3.0][..]));
        assert_eq!(all.get(0, 2), 4.0);
        assert_eq!(all.get(0, 0), 0.0);
        let mut scores = vec![9.0; 3];
        all.score_into(&[(0, 2.0), (9, 1.0)], &mut scores);
        assert_eq!(scores, vec![0.0, 6.0, 8.0]);
        assert_eq!(all.top_neighbours(0, 1), vec![(2, 4.0)]);
        assert!(top_k_product(&x, &x, &ones, 3, |d, _, _| d).is_err());
        assert!(top_k_product(&x.transpose(), &x, &[1.0], 3, |d, _, _| d).is_err());
        let none = top_k_product(&x.transpose(), &x, &ones, 0, |d, _, _| d).unwrap();
        assert_eq!((none.n_items(), none.nnz()), (3, 0));
    }

    #[test]
    fn normalizes_rows_and_checks_snapshots() {
        let mut s =
            SparseSimilarity::from_csr(3, vec![0, 2, 2, 3], vec![2, 1, 0], vec![3.0, 1.0, 0.5])
                .unwrap();
        s.normalize_rows_l1();
        assert_eq!(s.row(0).1, &[0.75, 0.25]);
        assert_eq!(s.row(2).1, &[1.0]);
        let again = SparseSimilarity::from_csr(
            3,
            s.indptr().to_vec(),
            s.indices().to_vec(),
            s.values().to_vec(),
        );
        assert_eq!(again.unwrap(), s);
        // Diagonal, out of range, unsorted, non-finite, inconsistent offsets.
        assert!(SparseSimilarity::from_csr(2, vec![0, 1, 1], vec![0], vec![1.0]).is_err());
        assert!(SparseSimilarity::from_csr(2, vec![0, 1, 1], vec![5], vec![1.0]).is_err());
        assert!(
            SparseSimilarity::from_csr(3, vec![0, 2, 2, 2], vec![1, 2], vec![1.0, 2.0]).is_err()
        );
        assert!(SparseSimilarity::from_csr(2, vec![0, 1, 1], vec![1], vec![f32::NAN]).is_err());
        assert!(SparseSimilarity::from_csr(2, vec![0, 2, 1], vec![1], vec![1.0]).is_err());
    }

    fn random_pair() -> impl Strategy<Value = (Interactions, Interactions, usize)> {
        (1usize..12, 1usize..20, 0usize..8).prop_flat_map(|(n_items, n_users, k)| {
            // Zero and negative weights too: sums that cancel to exactly zero.
            let cell = (0..n_users as u32, 0..n_items as u32, -3i8..4)
                .prop_map(|(u, i, w)| (u, i, f32::from(w)));
            proptest::collection::vec(cell, 0..100).prop_map(move |cells| {
                let x = matrix(n_users, n_items, &cells);
                (x.transpose(), x, k)
            })
        })
    }

    /// Binary data: the fast path for unit weights, and many exact ties.
    fn random_binary() -> impl Strategy<Value = (Interactions, Interactions, usize)> {
        (1usize..30, 1usize..40, 1usize..6).prop_flat_map(|(n_items, n_users, k)| {
            let cell = (0..n_users as u32, 0..n_items as u32).prop_map(|(u, i)| (u, i, 1.0));
            proptest::collection::vec(cell, 0..300).prop_map(move |cells| {
                let x = matrix(n_users, n_items, &cells);
                (x.transpose(), x, k)
            })
        })
    }

    proptest! {
        #[test]
        fn equals_a_dense_brute_force_on_binary_data((left, right, k) in random_binary()) {
            let counts: Vec<f32> = right.column_counts().into_iter().map(|c| c as f32).collect();
            let jaccard = |d: f32, a: f32, b: f32| d / (a + b - d);
            let sparse = top_k_product(&left, &right, &counts, k, jaccard).unwrap();
            let dense = brute_force(&left, &right, &counts, k, jaccard);
            for (i, want) in dense.iter().enumerate() {
                prop_assert_eq!(&sparse.top_neighbours(i as u32, usize::MAX), want, "row {}", i);
            }
        }

        #[test]
        fn equals_a_dense_brute_force((left, right, k) in random_pair(), shift in -3i8..3) {
            // A finish that depends on both items and d, can be negative or zero, and ties.
            let values: Vec<f32> = (0..right.n_items()).map(|i| (i % 3) as f32).collect();
            let finish = |d: f32, a: f32, b: f32| (d - f32::from(shift)) / (1.0 + (a + b) % 3.0);
            let sparse = top_k_product(&left, &right, &values, k, finish).unwrap();
            let dense = brute_force(&left, &right, &values, k, finish);
            prop_assert_eq!(sparse.n_items(), dense.len());
            for (i, want) in dense.iter().enumerate() {
                let got = sparse.top_neighbours(i as u32, usize::MAX);
                prop_assert_eq!(&got, want, "row {}", i);
            }
        }
    }
}
