//! The popularity baseline as a trained [`Recommender`].
//!
//! Every collaborative model must beat "recommend what most users took"; having
//! it behind the same trait lets evaluation, blends and snapshots treat it like
//! any other model (a blend may also use it as a small popularity prior).

use tephra_core::Interactions;

use crate::error::ModelError;
use crate::recommender::{History, Recommender};

const NAME: &str = "popularity";

/// Scores every item by the number of training users who interacted with it,
/// whatever the history.
#[derive(Debug, Clone, PartialEq)]
pub struct MostPopular {
    counts: Vec<f32>,
}

impl MostPopular {
    /// Counts the users of each item in `x` (entries with weight 0 count too:
    /// they are interactions).
    pub fn fit(x: &Interactions) -> Self {
        Self {
            counts: x.column_counts().into_iter().map(|c| c as f32).collect(),
        }
    }

    /// Rebuilds the model from its per-item counts, e.g. from a snapshot.
    pub fn from_counts(counts: Vec<f32>) -> Result<Self, ModelError> {
        if let Some(c) = counts.iter().find(|c| !c.is_finite()) {
            return Err(ModelError::Shape {
                model: NAME,
                message: format!("item count {c} is not a finite number"),
            });
        }
        Ok(Self { counts })
    }

    /// Training users per item, indexed by item.
    pub fn counts(&self) -> &[f32] {
        &self.counts
    }
}

impl Recommender for MostPopular {
    fn name(&self) -> &'static str {
        NAME
    }

    fn n_items(&self) -> usize {
        self.counts.len()
    }

    fn score(&self, _history: History<'_>, scores: &mut [f32]) {
        let len = scores.len().min(self.counts.len());
        scores[..len].copy_from_slice(&self.counts[..len]);
        scores[len..].fill(0.0);
    }

    /// Popularity knows nothing about similarity: the most popular other items.
    fn similar_items(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        if item as usize >= self.counts.len() {
            return Vec::new();
        }
        crate::rank::top_n(&self.counts, n, |i| i != item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tephra_core::Duplicates;

    #[test]
    fn scores_are_user_counts() {
        let x = Interactions::from_triples(
            3,
            3,
            [(0, 0, 1.0), (1, 0, 1.0), (1, 0, 1.0), (2, 2, 1.0)],
            Duplicates::Max,
        )
        .unwrap();
        let model = MostPopular::fit(&x);
        let mut scores = vec![9.0; 3];
        model.score(&[(1, 1.0)], &mut scores);
        assert_eq!(scores, vec![2.0, 0.0, 1.0]);
        assert_eq!(model.similar_items(0, 5), vec![(2, 1.0), (1, 0.0)]);
        assert!(model.similar_items(7, 5).is_empty());
        assert!(MostPopular::from_counts(vec![f32::NAN]).is_err());
    }
}
