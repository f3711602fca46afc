//! EASE^R (Steck 2019): a closed-form linear item-to-item model.
//!
//! With X the users × items matrix, G = XᵀX + λI and P = G⁻¹, the weights are
//! B_ij = −P_ij / P_jj for i ≠ j and B_jj = 0; a history x scores x·B. No
//! iterations, one hyper-parameter, and on MovieLens-sized catalogues it is the
//! strongest single model on the standard protocol.
//!
//! Cost and memory: XᵀX is built straight from the sparse matrix (Σ_u |I_u|²
//! multiply-adds, in parallel over items), then G is inverted through its
//! Cholesky factor — G is symmetric positive definite, so LLᵀ (n³/3), the
//! triangular inverse (n³/3) and the triangular product L⁻ᵀL⁻¹ (n³/3) replace a
//! general LU inverse (≈ 2n³). Training holds two dense n × n `f32` matrices at
//! once (10,000 items: 800 MB); the trained model keeps one (400 MB). That is why
//! [`EaseConfig::max_items`] refuses large catalogues up front instead of
//! running the machine out of memory.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    cholesky_in_place, cholesky_in_place_scratch, LltError, LltRegularization,
};
use faer::linalg::matmul::triangular::{matmul, BlockStructure};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use tephra_core::Interactions;

use crate::error::ModelError;
use crate::recommender::{History, Recommender};

const NAME: &str = "ease";

/// EASE^R hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EaseConfig {
    /// L2 regularization λ added to the Gram diagonal; larger values shrink the
    /// weights towards zero (250–1000 on MovieLens-100K).
    pub lambda: f32,
    /// Largest catalogue accepted: training needs 2 · n² · 4 bytes.
    pub max_items: usize,
}

impl Default for EaseConfig {
    /// λ = 500 and at most 20,000 items (3.2 GB while training).
    fn default() -> Self {
        Self {
            lambda: 500.0,
            max_items: 20_000,
        }
    }
}

impl EaseConfig {
    /// Peak bytes training would need for `n_items` items.
    pub fn training_bytes(n_items: usize) -> u64 {
        2 * (n_items as u64) * (n_items as u64) * 4
    }
}

/// A trained EASE^R model: the dense item × item weight matrix B.
#[derive(Debug, Clone, PartialEq)]
pub struct Ease {
    n_items: usize,
    /// Row-major: row `i` (`weights[i·n .. (i+1)·n]`) is what history item `i`
    /// adds to every item's score, so scoring reads one contiguous row per
    /// history item.
    weights: Vec<f32>,
}

impl Ease {
    /// Trains on `x` (users × items; weights as given, usually 1.0).
    pub fn fit(x: &Interactions, config: &EaseConfig) -> Result<Self, ModelError> {
        if !(config.lambda.is_finite() && config.lambda > 0.0) {
            return Err(ModelError::InvalidConfig {
                model: NAME,
                message: format!("lambda {} must be a positive number", config.lambda),
            });
        }
        let n = x.n_items();
        if n > config.max_items {
            return Err(ModelError::TooManyItems {
                model: NAME,
                n_items: n,
                max_items: config.max_items,
                bytes_needed: EaseConfig::training_bytes(n),
            });
        }
        if n == 0 {
            return Ok(Self {
                n_items: 0,
                weights: Vec::new(),
            });
        }
        let mut p = gram(x, config.lambda);
        let par = Par::rayon(0);
        {
            let req = cholesky_in_place_scratch::<f32>(n, par, Default::default());
            let mut buffer = MemBuffer::new(req);
            let g = MatMut::from_column_major_slice_mut(&mut p, n, n);
            cholesky_in_place(
                g,
                LltRegularization::default(),
                par,
                MemStack::new(&mut buffer),
                Default::default(),
            )
            .map_err(|LltError::NonPositivePivot { index }| {
                ModelError::NotPositiveDefinite {
                    model: NAME,
                    pivot: index,
                }
            })?;
        }
        // L⁻¹ into a second buffer, then P = L⁻ᵀ L⁻¹ (lower half) over L, which is
        // no longer needed.
        let mut l_inv = vec![0f32; n * n];
        invert_lower_triangular(
            MatMut::from_column_major_slice_mut(&mut l_inv, n, n),
            MatRef::from_column_major_slice(&p, n, n),
            par,
        );
        {
            let l_inv = MatRef::from_column_major_slice(&l_inv, n, n);
            matmul(
                MatMut::from_column_major_slice_mut(&mut p, n, n),
                BlockStructure::TriangularLower,
                Accum::Replace,
                l_inv.transpose(),
                BlockStructure::TriangularUpper,
                l_inv,
                BlockStructure::TriangularLower,
                1.0f32,
                par,
            );
        }
        // The weights reuse the L⁻¹ buffer.
        let mut weights = l_inv;
        weights_from_inverse(&p, n, &mut weights);
        Ok(Self {
            n_items: n,
            weights,
        })
    }

    /// Rebuilds a model from its weight matrix (row-major, `n_items²` values),
    /// e.g. when loading a snapshot.
    pub fn from_weights(n_items: usize, weights: Vec<f32>) -> Result<Self, ModelError> {
        if n_items.checked_mul(n_items) != Some(weights.len()) {
            return Err(ModelError::Shape {
                model: NAME,
                message: format!(
                    "{} weights do not form a {n_items} × {n_items} matrix",
                    weights.len()
                ),
            });
        }
        Ok(Self { n_items, weights })
    }

    /// The weight matrix B, row-major: `weights()[i * n_items + j]` = B_ij, the
    /// contribution of history item `i` to the score of item `j`.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// B_ij (0 outside the catalogue).
    pub fn weight(&self, i: u32, j: u32) -> f32 {
        let (i, j) = (i as usize, j as usize);
        if i < self.n_items && j < self.n_items {
            self.weights[i * self.n_items + j]
        } else {
            0.0
        }
    }
}

impl Recommender for Ease {
    fn name(&self) -> &'static str {
        NAME
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    /// x·B for the weighted history; history items outside the catalogue (added
    /// after training) are ignored.
    fn score(&self, history: History<'_>, scores: &mut [f32]) {
        let n = self.n_items;
        let len = n.min(scores.len());
        let scores = &mut scores[..len];
        scores.fill(0.0);
        for &(item, w) in history {
            let i = item as usize;
            if i >= n || w == 0.0 {
                continue;
            }
            let row = &self.weights[i * n..i * n + scores.len()];
            for (s, &b) in scores.iter_mut().zip(row) {
                *s += w * b;
            }
        }
    }
}

/// G = XᵀX + λI, dense, column-major (symmetric, so also row-major).
///
/// Column `i` is Σ over the users u of item i of x_ui · x_u: one pass over the
/// transposed matrix, every column built independently in parallel.
fn gram(x: &Interactions, lambda: f32) -> Vec<f32> {
    let n = x.n_items();
    let xt = x.transpose();
    let mut g = vec![0f32; n * n];
    g.par_chunks_mut(n).enumerate().for_each(|(i, column)| {
        let (users, user_weights) = xt.row(i as u32);
        for (&u, &w_ui) in users.iter().zip(user_weights) {
            let (items, weights) = x.row(u);
            for (&j, &w_uj) in items.iter().zip(weights) {
                column[j as usize] += w_ui * w_uj;
            }
        }
        column[i] += lambda;
    });
    g
}

/// Side of the square tiles the weights are written in: a 64 × 64 tile of `f32`
/// (16 KiB) stays in L1 while it is read against its transpose.
const TILE: usize = 64;

/// B_ij = −P_ij / P_jj, B_jj = 0, written row-major into `out`, from the lower
/// half of P (column-major in `p`; the upper half is not valid).
fn weights_from_inverse(p: &[f32], n: usize, out: &mut [f32]) {
    let diagonal: Vec<f32> = (0..n).map(|j| p[j * n + j]).collect();
    // P(i, j) from the lower half: column min(i, j), row max(i, j).
    let lower = |i: usize, j: usize| if i >= j { p[j * n + i] } else { p[i * n + j] };
    out.par_chunks_mut(TILE * n)
        .enumerate()
        .for_each(|(block, rows)| {
            let i0 = block * TILE;
            let n_rows = rows.len() / n;
            for j0 in (0..n).step_by(TILE) {
                let j1 = (j0 + TILE).min(n);
                for r in 0..n_rows {
                    let i = i0 + r;
                    let row = &mut rows[r * n..(r + 1) * n];
                    for j in j0..j1 {
                        row[j] = if i == j {
                            0.0
                        } else {
                            -lower(i, j) / diagonal[j]
                        };
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tephra_core::Duplicates;

    /// An independent reference: Gauss–Jordan inverse in f64, then the EASE formula.
    fn reference_weights(dense_x: &[Vec<f64>], n: usize, lambda: f64) -> Vec<f64> {
        let mut g = vec![vec![0f64; 2 * n]; n];
        for (i, row) in g.iter_mut().enumerate() {
            for j in 0..n {
                row[j] = dense_x.iter().map(|u| u[i] * u[j]).sum::<f64>();
            }
            row[i] += lambda;
            row[n + i] = 1.0;
        }
        for c in 0..n {
            let pivot = (c..n)
                .max_by(|&a, &b| g[a][c].abs().total_cmp(&g[b][c].abs()))
                .unwrap();
            g.swap(c, pivot);
            let d = g[c][c];
            for v in g[c].iter_mut() {
                *v /= d;
            }
            for r in 0..n {
                if r != c {
                    let f = g[r][c];
                    let pivot_row = g[c].clone();
                    for (v, p) in g[r].iter_mut().zip(pivot_row) {
                        *v -= f * p;
                    }
                }
            }
        }
        let p = |i: usize, j: usize| g[i][n + j];
        let mut b = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    b[i * n + j] = -p(i, j) / p(j, j);
                }
            }
        }
        b
    }

    fn matrix(n_users: usize, n_items: usize, cells: &[(u32, u32, f32)]) -> Interactions {
        Interactions::from_triples(n_users, n_items, cells.iter().copied(), Duplicates::Max)
            .unwrap()
    }

    #[test]
    fn two_items_by_hand() {
        // Users: {0,1}, {0}, {0,1}. XᵀX = [[3,2],[2,2]]; G = [[4,2],[2,3]] for λ = 1.
        // P = G⁻¹ = [[3,−2],[−2,4]] / 8, so B_01 = −P_01/P_11 = 0.5 and
        // B_10 = −P_10/P_00 = 2/3.
        let x = matrix(
            3,
            2,
            &[
                (0, 0, 1.0),
                (0, 1, 1.0),
                (1, 0, 1.0),
                (2, 0, 1.0),
                (2, 1, 1.0),
            ],
        );
        let ease = Ease::fit(
            &x,
            &EaseConfig {
                lambda: 1.0,
                ..Default::default()
            },
        )
        .unwrap();
        assert!((ease.weight(0, 1) - 0.5).abs() < 1e-6);
        assert!((ease.weight(1, 0) - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(ease.weight(0, 0), 0.0);
        assert_eq!(ease.weight(5, 0), 0.0);
        let mut scores = vec![9.0; 2];
        ease.score(&[(0, 2.0), (7, 1.0)], &mut scores);
        assert!((scores[0] - 0.0).abs() < 1e-6 && (scores[1] - 1.0).abs() < 1e-6);
        assert_eq!(ease.similar_items(0, 5), vec![(1, ease.weight(0, 1))]);
    }

    #[test]
    fn refuses_bad_configurations() {
        let x = matrix(1, 3, &[(0, 0, 1.0)]);
        let err = Ease::fit(
            &x,
            &EaseConfig {
                lambda: 1.0,
                max_items: 2,
            },
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ModelError::TooManyItems {
                n_items: 3,
                max_items: 2,
                bytes_needed: 72,
                ..
            }
        ));
        assert!(err.to_string().contains("limited to 2 items"));
        for lambda in [0.0, -1.0, f32::NAN] {
            let err = Ease::fit(
                &x,
                &EaseConfig {
                    lambda,
                    max_items: 10,
                },
            )
            .unwrap_err();
            assert!(matches!(err, ModelError::InvalidConfig { .. }));
        }
        assert!(Ease::from_weights(2, vec![0.0; 3]).is_err());
        let empty = Ease::fit(&matrix(2, 0, &[]), &EaseConfig::default()).unwrap();
        assert_eq!(empty.n_items(), 0);
    }

    fn check_against_reference(x: &Interactions, lambda: f32) -> Result<(), TestCaseError> {
        let (n, n_users) = (x.n_items(), x.n_users());
        let ease = Ease::fit(
            x,
            &EaseConfig {
                lambda,
                max_items: 1000,
            },
        )
        .unwrap();
        let mut dense = vec![vec![0f64; n]; n_users];
        for (u, row) in dense.iter_mut().enumerate() {
            let (items, weights) = x.row(u as u32);
            for (&i, &w) in items.iter().zip(weights) {
                row[i as usize] = f64::from(w);
            }
        }
        let reference = reference_weights(&dense, n, f64::from(lambda));
        let scale = reference.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for i in 0..n {
            prop_assert_eq!(ease.weight(i as u32, i as u32), 0.0);
            for j in 0..n {
                let got = f64::from(ease.weight(i as u32, j as u32));
                let want = reference[i * n + j];
                prop_assert!(
                    (got - want).abs() <= 1e-4 * scale,
                    "B[{}][{}] = {} vs {}",
                    i,
                    j,
                    got,
                    want
                );
            }
        }
        // Scoring is x·B.
        let history: Vec<(u32, f32)> = (0..n as u32)
            .step_by(2)
            .map(|i| (i, 0.5 + i as f32))
            .collect();
        let mut scores = vec![0f32; n];
        ease.score(&history, &mut scores);
        for (j, &score) in scores.iter().enumerate() {
            let want: f64 = history
                .iter()
                .map(|&(i, w)| f64::from(w) * reference[i as usize * n + j])
                .sum();
            prop_assert!((f64::from(score) - want).abs() <= 1e-3 * scale * n as f64);
        }
        Ok(())
    }

    /// A pseudo-random binary matrix, `per_user` draws per user.
    fn pseudo_random(n_users: u32, n_items: usize, per_user: usize, seed: u64) -> Interactions {
        let mut state = seed | 1;
        let mut cells = Vec::new();
        for u in 0..n_users {
            for _ in 0..per_user {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                cells.push((u, (state % n_items as u64) as u32, 1.0));
            }
        }
        matrix(n_users as usize, n_items, &cells)
    }

    #[test]
    fn matches_the_reference_on_a_catalogue_big_enough_for_blocked_kernels() {
        let x = pseudo_random(400, 150, 12, 42);
        check_against_reference(&x, 5.0).unwrap();
    }

    fn random_matrix() -> impl Strategy<Value = (usize, usize, Vec<(u32, u32, f32)>, f32)> {
        (2usize..14, 1usize..40).prop_flat_map(|(n_items, n_users)| {
            let cell = (0..n_users as u32, 0..n_items as u32, 1u8..4)
                .prop_map(|(u, i, w)| (u, i, f32::from(w)));
            (
                Just(n_items),
                Just(n_users),
                proptest::collection::vec(cell, 0..120),
                0.5f32..50.0,
            )
        })
    }

    proptest! {
        #[test]
        fn matches_a_gauss_jordan_reference((n, n_users, cells, lambda) in random_matrix()) {
            let x = matrix(n_users, n, &cells);
            check_against_reference(&x, lambda)?;
        }

        #[test]
        fn diagonal_is_zero(n_items in 1usize..150, seed in any::<u64>()) {
            let x = pseudo_random(200, n_items, 8, seed);
            let ease = Ease::fit(&x, &EaseConfig { lambda: 10.0, max_items: 1000 }).unwrap();
            for i in 0..n_items as u32 {
                prop_assert_eq!(ease.weight(i, i), 0.0);
            }
            prop_assert!(ease.weights().iter().all(|w| w.is_finite()));
        }
    }
}
