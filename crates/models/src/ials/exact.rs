//! Exact solves and the training objective, in `f64`.
//!
//! Fold-in answers one request at a time, so it can afford the exact d × d
//! Cholesky solve (d³/3 ≈ 90k flops at d = 64, far below a millisecond) instead
//! of a few CG steps: a history always gets the same vector, whatever state a
//! training run left behind. The loss is only needed by tests and diagnostics.

use rayon::prelude::*;
use tephra_core::Interactions;

use super::factors::Factors;
use super::IalsConfig;

/// The d × d Gram matrix FᵀF of a factor matrix, row-major, in `f64`.
pub(crate) fn gram_f64(factors: &Factors) -> Vec<f64> {
    let d = factors.dim();
    let partial = |rows: std::ops::Range<usize>| {
        let mut g = vec![0f64; d * d];
        for r in rows {
            let v = factors.get(r).unwrap_or_default();
            for i in 0..d {
                let vi = f64::from(v[i]);
                for j in 0..=i {
                    g[i * d + j] += vi * f64::from(v[j]);
                }
            }
        }
        g
    };
    let blocks: Vec<Vec<f64>> = (0..factors.n_rows().div_ceil(1024))
        .into_par_iter()
        .map(|b| partial(b * 1024..((b + 1) * 1024).min(factors.n_rows())))
        .collect();
    let mut g = vec![0f64; d * d];
    for block in blocks {
        for (t, x) in g.iter_mut().zip(block) {
            *t += x;
        }
    }
    for i in 0..d {
        for j in 0..i {
            g[j * d + i] = g[i * d + j];
        }
    }
    g
}

/// Solves (α0·G + Σ_k (c_k − α0)·v_k v_kᵀ + λ·I) w = Σ_k c_k·v_k exactly, where
/// `gram` is the d × d Gram matrix G of the fixed side and `entries` yields each
/// observed vector v_k with its confidence c_k.
///
/// The matrix is positive definite whenever λ > 0 and every c_k ≥ 0; should
/// rounding still break the factorization, the zero vector (no preference) is
/// returned rather than garbage.
pub(crate) fn solve_exact<'v>(
    gram: &[f64],
    dim: usize,
    alpha0: f32,
    lambda: f32,
    entries: impl Iterator<Item = (&'v [f32], f32)>,
) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { solve_exact_avx2(gram, dim, alpha0, lambda, entries) };
    }
    solve_exact_body(gram, dim, alpha0, lambda, entries)
}

/// [`solve_exact`] compiled for AVX2 and FMA: the same code, whose row updates
/// and dot products the compiler turns into 4-wide vector instructions. Fold-in
/// runs on every personalized request, so this is on the serving path.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn solve_exact_avx2<'v>(
    gram: &[f64],
    dim: usize,
    alpha0: f32,
    lambda: f32,
    entries: impl Iterator<Item = (&'v [f32], f32)>,
) -> Vec<f32> {
    solve_exact_body(gram, dim, alpha0, lambda, entries)
}

#[inline(always)]
fn solve_exact_body<'v>(
    gram: &[f64],
    dim: usize,
    alpha0: f32,
    lambda: f32,
    entries: impl Iterator<Item = (&'v [f32], f32)>,
) -> Vec<f32> {
    let d = dim;
    let alpha0 = f64::from(alpha0);
    let mut a: Vec<f64> = gram.iter().map(|g| alpha0 * g).collect();
    for i in 0..d {
        a[i * d + i] += f64::from(lambda);
    }
    let mut b = vec![0f64; d];
    let mut v64 = vec![0f64; d];
    for (v, c) in entries {
        let c = f64::from(c);
        let excess = c - alpha0;
        for (x, &y) in v64.iter_mut().zip(v) {
            *x = f64::from(y);
        }
        for (bi, &vi) in b.iter_mut().zip(&v64) {
            *bi += c * vi;
        }
        // Lower triangle only: the factorization reads nothing else.
        for i in 0..d {
            let scaled = excess * v64[i];
            for (x, &vj) in a[i * d..=i * d + i].iter_mut().zip(&v64[..=i]) {
                *x += scaled * vj;
            }
        }
    }
    match cholesky_solve(&mut a, &mut b, d) {
        Some(()) => b.iter().map(|&x| x as f32).collect(),
        None => vec![0.0; d],
    }
}

/// Σ x_k·y_k with four independent partial sums, which lets the compiler
/// vectorize the reduction (a single running sum is one long dependency chain).
#[inline(always)]
fn dot4(x: &[f64], y: &[f64]) -> f64 {
    let mut s = [0f64; 4];
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in xc.zip(yc) {
        for k in 0..4 {
            s[k] += a[k] * b[k];
        }
    }
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// Factors the lower triangle of the symmetric `a` (row-major d × d) in place
/// as LLᵀ and overwrites `b` with the solution of a·x = b. `None` if `a` is not
/// positive definite.
#[inline(always)]
fn cholesky_solve(a: &mut [f64], b: &mut [f64], d: usize) -> Option<()> {
    for j in 0..d {
        let row_j = j * d;
        let diag = a[row_j + j] - dot4(&a[row_j..row_j + j], &a[row_j..row_j + j]);
        if !(diag > 0.0 && diag.is_finite()) {
            return None;
        }
        let diag = diag.sqrt();
        a[row_j + j] = diag;
        for i in j + 1..d {
            let row_i = i * d;
            let (head, tail) = a.split_at_mut(row_i);
            let x = tail[j] - dot4(&tail[..j], &head[row_j..row_j + j]);
            tail[j] = x / diag;
        }
    }
    // L y = b, then Lᵀ x = y.
    for i in 0..d {
        let x = b[i] - dot4(&a[i * d..i * d + i], &b[..i]);
        b[i] = x / a[i * d + i];
    }
    for i in (0..d).rev() {
        let mut x = b[i];
        for k in i + 1..d {
            x -= a[k * d + i] * b[k];
        }
        b[i] = x / a[i * d + i];
    }
    Some(())
}

/// The iALS objective (see [`IalsConfig`]) of `users` and `items` on `x`, in
/// `f64`: Σ_observed c·(1 − ŷ)² + α0·Σ_unobserved ŷ² + Σ_u λ_u‖w_u‖² + Σ_i λ_i‖h_i‖².
///
/// The unobserved sum runs over all pairs as α0·⟨WᵀW, HᵀH⟩ minus the observed
/// pairs, so the cost is O(d·nnz + d²·(users + items)), not users × items.
pub fn training_loss(
    x: &Interactions,
    config: &IalsConfig,
    users: &Factors,
    items: &Factors,
) -> f64 {
    let alpha0 = f64::from(config.unobserved_weight);
    let gw = gram_f64(users);
    let gh = gram_f64(items);
    let all_pairs: f64 = gw.iter().zip(&gh).map(|(a, b)| a * b).sum();
    let norm2 = |v: &[f32]| v.iter().map(|&a| f64::from(a) * f64::from(a)).sum::<f64>();

    let per_user: Vec<f64> = (0..x.n_users())
        .into_par_iter()
        .with_min_len(256)
        .map(|u| {
            let w = users.get(u).unwrap_or_default();
            let (indices, values) = x.row(u as u32);
            let mut loss = 0.0;
            for (&i, &value) in indices.iter().zip(values) {
                let h = items.get(i as usize).unwrap_or_default();
                let y: f64 = w
                    .iter()
                    .zip(h)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                let c = f64::from(config.confidence(value));
                loss += c * (1.0 - y) * (1.0 - y) - alpha0 * y * y;
            }
            let lambda = f64::from(config.row_regularization(indices.len(), x.n_items()));
            loss + lambda * norm2(w)
        })
        .collect();
    let counts = x.column_counts();
    let item_penalty: f64 = (0..x.n_items())
        .map(|i| {
            let lambda = config.row_regularization(counts[i] as usize, x.n_users());
            f64::from(lambda) * norm2(items.get(i).unwrap_or_default())
        })
        .sum();
    alpha0 * all_pairs + per_user.iter().sum::<f64>() + item_penalty
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // [[4, 2], [2, 3]] x = [2, 5] → x = [-0.5, 2].
        let mut a = vec![4.0, 0.0, 2.0, 3.0];
        let mut b = vec![2.0, 5.0];
        cholesky_solve(&mut a, &mut b, 2).unwrap();
        assert!((b[0] + 0.5).abs() < 1e-12 && (b[1] - 2.0).abs() < 1e-12);
        let mut singular = vec![1.0, 0.0, 1.0, 1.0];
        assert!(cholesky_solve(&mut singular, &mut [1.0, 1.0], 2).is_none());
    }
}
