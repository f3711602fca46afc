//! EASE^R plus a sequential item-to-item term: what a user does *next*.
//!
//! EASE learns which items go together, regardless of order. On a temporal
//! split the next items follow from the latest ones, so this model adds a
//! forward co-occurrence matrix T to the EASE weights B:
//!
//! - T_ij = Σ over every timeline and every pair "i, then j at most `window`
//!   steps later" of `decay^(gap − 1)`;
//! - normalized T_ij / √((rowsum_i + 1)(colsum_j + 1)) so that very popular
//!   items do not dominate;
//! - scaled to the mean magnitude of B, so that `beta` is a unit-free mixing
//!   weight;
//! - W = B + beta · T, scored as x·W.
//!
//! Fed a recency-weighted history (half-life 7 events) this is Tephra's default
//! serving model: on MovieLens-100K's standard protocol it reaches NDCG@10 ≈
//! 0.269 against 0.199 for plain EASE. The two terms are folded into one dense
//! matrix at training time, so scoring and memory cost the same as EASE.

use serde::{Deserialize, Serialize};

use crate::ease::{Ease, EaseConfig};
use crate::error::ModelError;
use crate::recommender::{History, Recommender};

const NAME: &str = "seq_ease";

/// Hyper-parameters of [`SeqEase`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeqEaseConfig {
    /// EASE's L2 regularization λ (> 0).
    pub lambda: f32,
    /// Weight of the sequential term relative to the EASE weights (≥ 0; 0 is
    /// plain EASE).
    pub beta: f32,
    /// How many later steps of a timeline count as "next" (≥ 1).
    pub window: usize,
    /// Weight factor per extra step of distance, in (0, 1].
    pub decay: f32,
    /// Largest catalogue accepted (dense n × n matrices, as EASE).
    pub max_items: usize,
}

impl Default for SeqEaseConfig {
    /// λ = 800, β = 2, window 80, decay 0.97: tuned on a validation split of
    /// MovieLens-100K cut from the training part (never on test).
    fn default() -> Self {
        Self {
            lambda: 800.0,
            beta: 2.0,
            window: 80,
            decay: 0.97,
            max_items: EaseConfig::default().max_items,
        }
    }
}

impl SeqEaseConfig {
    fn check(&self) -> Result<(), ModelError> {
        let invalid = |message: String| {
            Err(ModelError::InvalidConfig {
                model: NAME,
                message,
            })
        };
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return invalid(format!("beta {} must be a non-negative number", self.beta));
        }
        if self.window == 0 {
            return invalid("window must be at least 1".into());
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return invalid(format!("decay {} must be in (0, 1]", self.decay));
        }
        Ok(())
    }
}

/// A trained EASE + sequential model: one dense item × item weight matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqEase {
    combined: Ease,
}

impl SeqEase {
    /// Trains on the binary matrix `x` (for EASE) and the per-user timelines
    /// `sequences` (`(item, timestamp)` in time order, for the sequential term)
    /// over the same `x.n_items()` items.
    pub fn fit(
        x: &tephra_core::Interactions,
        sequences: &[Vec<(u32, i64)>],
        config: &SeqEaseConfig,
    ) -> Result<Self, ModelError> {
        config.check()?;
        let n = x.n_items();
        let ease = Ease::fit(
            x,
            &EaseConfig {
                lambda: config.lambda,
                max_items: config.max_items,
            },
        )?;
        if let Some((item, _)) = sequences.iter().flatten().find(|(i, _)| *i as usize >= n) {
            return Err(ModelError::InvalidData(format!(
                "sequence item {item} is outside the {n} items of the matrix"
            )));
        }
        let sequential = forward_cooccurrence(n, sequences, config.window, config.decay);
        let scale = mean_abs(ease.weights()) / mean_abs(&sequential).max(1e-12);
        let beta = f64::from(config.beta) * scale;
        let mut weights = ease.weights().to_vec();
        for (w, t) in weights.iter_mut().zip(&sequential) {
            *w += (beta * f64::from(*t)) as f32;
        }
        Self::from_weights(n, weights)
    }

    /// Rebuilds a model from its combined weight matrix (row-major, n²
    /// values), e.g. when loading a snapshot.
    pub fn from_weights(n_items: usize, weights: Vec<f32>) -> Result<Self, ModelError> {
        Ok(Self {
            combined: Ease::from_weights(n_items, weights)?,
        })
    }

    /// The combined matrix W = B + beta·T, row-major.
    pub fn weights(&self) -> &[f32] {
        self.combined.weights()
    }
}

impl Recommender for SeqEase {
    fn name(&self) -> &'static str {
        NAME
    }

    fn n_items(&self) -> usize {
        self.combined.n_items()
    }

    /// x·W; history items outside the catalogue are ignored.
    fn score(&self, history: History<'_>, scores: &mut [f32]) {
        self.combined.score(history, scores);
    }
}

/// Normalized forward co-occurrence T (row-major n × n), before scaling.
fn forward_cooccurrence(
    n: usize,
    sequences: &[Vec<(u32, i64)>],
    window: usize,
    decay: f32,
) -> Vec<f32> {
    let mut t = vec![0f32; n * n];
    for steps in sequences {
        for (k, &(a, _)) in steps.iter().enumerate() {
            let mut w = 1.0f32;
            for &(b, _) in steps.iter().skip(k + 1).take(window) {
                t[a as usize * n + b as usize] += w;
                w *= decay;
            }
        }
    }
    let rows: Vec<f32> = t
        .chunks_exact(n.max(1))
        .map(|row| row.iter().sum::<f32>() + 1.0)
        .collect();
    let mut cols = vec![0f32; n];
    for row in t.chunks_exact(n.max(1)) {
        for (c, &v) in cols.iter_mut().zip(row) {
            *c += v;
        }
    }
    cols.iter_mut().for_each(|c| *c += 1.0);
    for (row, &row_sum) in t.chunks_exact_mut(n.max(1)).zip(&rows) {
        for (v, &col_sum) in row.iter_mut().zip(&cols) {
            *v /= (row_sum * col_sum).sqrt();
        }
    }
    t
}

fn mean_abs(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(x.abs())).sum::<f64>() / v.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use tephra_core::{Duplicates, Interactions};

    fn binary(n_items: usize, sequences: &[Vec<(u32, i64)>]) -> Interactions {
        let triples = sequences
            .iter()
            .enumerate()
            .flat_map(|(u, s)| s.iter().map(move |&(i, _)| (u as u32, i, 1.0)));
        Interactions::from_triples(sequences.len(), n_items, triples, Duplicates::Max).unwrap()
    }

    /// Timelines with one step per millisecond.
    fn timed(items: &[&[u32]]) -> Vec<Vec<(u32, i64)>> {
        items
            .iter()
            .map(|s| s.iter().enumerate().map(|(t, &i)| (i, t as i64)).collect())
            .collect()
    }

    #[test]
    fn the_item_that_follows_scores_highest() {
        // Items 0 and 1 always co-occur, but 1 always comes after 0 and 2 is
        // seen with both in either order: after 0, the model must expect 1.
        let mut raw: Vec<&[u32]> = Vec::new();
        for k in 0..20 {
            raw.push(&[0, 1]);
            raw.push(if k % 2 == 0 { &[2, 3] } else { &[3, 2] });
        }
        let sequences = timed(&raw);
        let x = binary(4, &sequences);
        let config = SeqEaseConfig {
            lambda: 1.0,
            ..Default::default()
        };
        let model = SeqEase::fit(&x, &sequences, &config).unwrap();
        let mut scores = vec![0f32; 4];
        model.score(&[(0, 1.0)], &mut scores);
        assert!(scores[1] > scores[2] && scores[1] > scores[3], "{scores:?}");
        // Without the sequential term the order of 0 → 1 and 1 → 0 is the
        // same; with it, "1 after 0" beats "0 after 1".
        let mut after_1 = vec![0f32; 4];
        model.score(&[(1, 1.0)], &mut after_1);
        assert!(scores[1] > after_1[0], "{scores:?} vs {after_1:?}");
        let plain = SeqEase::fit(
            &x,
            &sequences,
            &SeqEaseConfig {
                beta: 0.0,
                ..config
            },
        )
        .unwrap();
        let mut p1 = vec![0f32; 4];
        let mut p0 = vec![0f32; 4];
        plain.score(&[(0, 1.0)], &mut p1);
        plain.score(&[(1, 1.0)], &mut p0);
        assert!((p1[1] - p0[0]).abs() < 1e-5);
    }

    #[test]
    fn beta_zero_is_plain_ease() {
        let sequences = timed(&[&[0, 1, 2], &[2, 1], &[0, 2], &[1, 0, 2]]);
        let x = binary(3, &sequences);
        let model = SeqEase::fit(
            &x,
            &sequences,
            &SeqEaseConfig {
                lambda: 2.0,
                beta: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        let ease = Ease::fit(
            &x,
            &EaseConfig {
                lambda: 2.0,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(model.weights(), ease.weights());
        assert_eq!(model.name(), "seq_ease");
    }

    #[test]
    fn refuses_bad_input() {
        let sequences = timed(&[&[0, 1]]);
        let x = binary(2, &sequences);
        for config in [
            SeqEaseConfig {
                beta: -1.0,
                ..Default::default()
            },
            SeqEaseConfig {
                window: 0,
                ..Default::default()
            },
            SeqEaseConfig {
                decay: 0.0,
                ..Default::default()
            },
            SeqEaseConfig {
                lambda: 0.0,
                ..Default::default()
            },
        ] {
            assert!(SeqEase::fit(&x, &sequences, &config).is_err(), "{config:?}");
        }
        let err = SeqEase::fit(&x, &timed(&[&[0, 5]]), &SeqEaseConfig::default()).unwrap_err();
        assert!(matches!(err, ModelError::InvalidData(_)));
    }
}
