//! A weighted blend of several trained models.
//!
//! Models disagree in useful ways (EASE is strong on co-occurrence, iALS
//! generalizes to rare items, popularity is a prior), but their raw scores live
//! on unrelated scales. Each part's scores are therefore normalized per query
//! before the weighted sum, so a weight means "how much this model counts", not
//! "how large its numbers happen to be". Choosing the weights (a small search on
//! a validation split) is evaluation's job; this module only blends.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::recommender::{History, Recommender};

const NAME: &str = "blend";

/// How each part's scores are brought to a common scale, per query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// (s − mean) / standard deviation over all items: robust to offsets.
    #[default]
    ZScore,
    /// s / max |s|: keeps zero at zero.
    MaxAbs,
    /// Raw scores (only sensible for models on the same scale).
    None,
}

/// Several models over the same items, each with a weight.
#[derive(Debug, Clone)]
pub struct Blend<R> {
    parts: Vec<(R, f32)>,
    normalization: Normalization,
    n_items: usize,
}

impl<R: Recommender> Blend<R> {
    /// Blends `parts` (model, weight). Refuses an empty list, a non-finite
    /// weight, or parts that know different numbers of items.
    pub fn new(parts: Vec<(R, f32)>, normalization: Normalization) -> Result<Self, ModelError> {
        let invalid = |message: String| ModelError::InvalidConfig {
            model: NAME,
            message,
        };
        let Some((first, _)) = parts.first() else {
            return Err(invalid("a blend needs at least one part".into()));
        };
        let n_items = first.n_items();
        for (model, weight) in &parts {
            if !weight.is_finite() {
                return Err(invalid(format!(
                    "the weight {weight} of {} is not a finite number",
                    model.name()
                )));
            }
            if model.n_items() != n_items {
                return Err(invalid(format!(
                    "{} knows {} items but {} knows {n_items}",
                    model.name(),
                    model.n_items(),
                    first.name()
                )));
            }
        }
        Ok(Self {
            parts,
            normalization,
            n_items,
        })
    }

    /// The parts and their weights.
    pub fn parts(&self) -> &[(R, f32)] {
        &self.parts
    }

    /// Changes the weights in place (same order as the parts), e.g. while a
    /// search tries combinations without retraining anything.
    pub fn set_weights(&mut self, weights: &[f32]) -> Result<(), ModelError> {
        if weights.len() != self.parts.len() || weights.iter().any(|w| !w.is_finite()) {
            return Err(ModelError::InvalidConfig {
                model: NAME,
                message: format!(
                    "{} weights given for {} parts (all must be finite)",
                    weights.len(),
                    self.parts.len()
                ),
            });
        }
        for ((_, w), &new) in self.parts.iter_mut().zip(weights) {
            *w = new;
        }
        Ok(())
    }

    /// How scores are normalized.
    pub fn normalization(&self) -> Normalization {
        self.normalization
    }
}

impl<R: Recommender> Recommender for Blend<R> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score(&self, history: History<'_>, scores: &mut [f32]) {
        scores.fill(0.0);
        let mut part_scores = vec![0f32; scores.len()];
        for (model, weight) in &self.parts {
            if *weight == 0.0 {
                continue;
            }
            part_scores.fill(0.0);
            model.score(history, &mut part_scores);
            let (offset, scale) = normalizer(&part_scores, self.normalization);
            let factor = weight * scale;
            for (s, &p) in scores.iter_mut().zip(&part_scores) {
                *s += factor * (p - offset);
            }
        }
    }
}

/// `(offset, scale)` such that `(s − offset) · scale` is normalized; a constant
/// score vector (no information) gets scale 0.
fn normalizer(scores: &[f32], normalization: Normalization) -> (f32, f32) {
    let finite = || {
        scores
            .iter()
            .filter(|s| s.is_finite())
            .map(|&s| f64::from(s))
    };
    match normalization {
        Normalization::None => (0.0, 1.0),
        Normalization::MaxAbs => {
            let max = finite().fold(0.0f64, |m, s| m.max(s.abs()));
            (0.0, if max > 0.0 { (1.0 / max) as f32 } else { 0.0 })
        }
        Normalization::ZScore => {
            let (n, sum, sum_sq) = finite().fold((0usize, 0.0f64, 0.0f64), |(n, a, b), s| {
                (n + 1, a + s, b + s * s)
            });
            if n == 0 {
                return (0.0, 0.0);
            }
            let mean = sum / n as f64;
            let variance = (sum_sq / n as f64 - mean * mean).max(0.0);
            let std = variance.sqrt();
            if std > 1e-12 * mean.abs().max(1.0) {
                (mean as f32, (1.0 / std) as f32)
            } else {
                (mean as f32, 0.0)
            }
        }
    }
}

/// Lets a blend (or anything generic over [`Recommender`]) hold boxed models.
impl<R: Recommender + ?Sized> Recommender for Box<R> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn n_items(&self) -> usize {
        (**self).n_items()
    }
    fn score(&self, history: History<'_>, scores: &mut [f32]) {
        (**self).score(history, scores)
    }
    fn similar_items(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        (**self).similar_items(item, n)
    }
}

/// Lets a blend share models that are also served on their own.
impl<R: Recommender + ?Sized> Recommender for Arc<R> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn n_items(&self) -> usize {
        (**self).n_items()
    }
    fn score(&self, history: History<'_>, scores: &mut [f32]) {
        (**self).score(history, scores)
    }
    fn similar_items(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        (**self).similar_items(item, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model with fixed scores.
    struct Fixed(Vec<f32>);

    impl Recommender for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn n_items(&self) -> usize {
            self.0.len()
        }
        fn score(&self, _: History<'_>, scores: &mut [f32]) {
            scores.copy_from_slice(&self.0);
        }
    }

    fn scores_of(blend: &Blend<Fixed>) -> Vec<f32> {
        let mut s = vec![0f32; blend.n_items()];
        blend.score(&[], &mut s);
        s
    }

    #[test]
    fn scale_does_not_matter_after_normalization() {
        // The same ranking at scales 1 and 1000 counts equally.
        let a = Fixed(vec![1.0, 2.0, 3.0]);
        let b = Fixed(vec![3000.0, 2000.0, 1000.0]);
        let blend = Blend::new(vec![(a, 1.0), (b, 1.0)], Normalization::ZScore).unwrap();
        let s = scores_of(&blend);
        assert!(s.iter().all(|v| v.abs() < 1e-5), "{s:?}");
        let mut blend = blend;
        blend.set_weights(&[2.0, 1.0]).unwrap();
        let s = scores_of(&blend);
        assert!(s[2] > s[1] && s[1] > s[0], "{s:?}");
        assert!(blend.set_weights(&[1.0]).is_err());
    }

    #[test]
    fn max_abs_and_raw() {
        let a = Fixed(vec![0.0, 2.0, -4.0]);
        let blend = Blend::new(vec![(a, 2.0)], Normalization::MaxAbs).unwrap();
        assert_eq!(scores_of(&blend), vec![0.0, 1.0, -2.0]);
        let blend = Blend::new(vec![(Fixed(vec![1.0, 5.0]), 0.5)], Normalization::None).unwrap();
        assert_eq!(scores_of(&blend), vec![0.5, 2.5]);
        // A constant part carries no information and adds nothing.
        let blend = Blend::new(vec![(Fixed(vec![3.0, 3.0]), 1.0)], Normalization::ZScore).unwrap();
        assert_eq!(scores_of(&blend), vec![0.0, 0.0]);
    }

    #[test]
    fn refuses_inconsistent_parts() {
        assert!(Blend::<Fixed>::new(vec![], Normalization::ZScore).is_err());
        let parts = vec![(Fixed(vec![1.0]), 1.0), (Fixed(vec![1.0, 2.0]), 1.0)];
        assert!(Blend::new(parts, Normalization::ZScore).is_err());
        assert!(Blend::new(vec![(Fixed(vec![1.0]), f32::NAN)], Normalization::ZScore).is_err());
        let boxed: Box<dyn Recommender> = Box::new(Fixed(vec![1.0, 2.0]));
        let blend = Blend::new(vec![(boxed, 1.0)], Normalization::None).unwrap();
        assert_eq!(blend.n_items(), 2);
    }
}
