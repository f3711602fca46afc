//! Full-ranking evaluation of any [`Recommender`] on a [`Split`].
//!
//! For every user with a test set: build the weighted history from the ordered
//! training timeline, score **all** items, exclude the user's training items,
//! take the top K and compare with the test set. Never sampled negatives: sampled
//! metrics can reorder models. Users are processed in parallel with rayon, each
//! worker reusing one score buffer.

use rayon::prelude::*;
use tephra_models::rank::top_n;
use tephra_models::Recommender;

use crate::metrics::{Accumulator, Metrics};
use crate::split::{Split, Step};
use crate::EvalError;

pub use tephra_models::HistoryWeighting;

/// The `(item, weight)` history a model scores, from a timeline (oldest first).
///
/// The same code the server uses ([`tephra_models::weighted_history`]): an item
/// that occurs several times appears once, with the weight of its latest
/// occurrence. Returned sorted by item.
pub fn weighted_history(steps: &[Step], weighting: HistoryWeighting) -> Vec<(u32, f32)> {
    tephra_models::weighted_history(steps.iter().map(|s| s.item), weighting)
}

/// What to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Cutoffs K (10 and 20 by default).
    pub ks: Vec<usize>,
    /// How the training history is weighted for scoring.
    pub weighting: HistoryWeighting,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            ks: vec![10, 20],
            weighting: HistoryWeighting::Plain,
        }
    }
}

/// Evaluates `model` on every user of `split` that has a test set.
///
/// The model must know the split's item catalogue (`model.n_items()` equal to
/// the split's item count).
pub fn evaluate(
    model: &dyn Recommender,
    split: &Split,
    options: &EvalOptions,
) -> Result<Metrics, EvalError> {
    let n_items = split.train.n_items();
    if model.n_items() != n_items {
        return Err(EvalError::ModelMismatch(format!(
            "the {} model scores {} items but the data set has {n_items}",
            model.name(),
            model.n_items()
        )));
    }
    check_options(options)?;
    let popularity = split.train.item_popularity();
    evaluate_with(split, options, &popularity, |history, scores| {
        model.score(history, scores)
    })
}

/// Like [`evaluate`] for any scoring function `score(history, scores)`, e.g. a
/// blend of models being tuned, without wrapping it in a [`Recommender`].
/// `popularity` is the training popularity of every item (for the
/// average-popularity metric).
pub fn evaluate_with(
    split: &Split,
    options: &EvalOptions,
    popularity: &[u32],
    score: impl Fn(&[(u32, f32)], &mut [f32]) + Sync,
) -> Result<Metrics, EvalError> {
    check_options(options)?;
    let n_items = split.train.n_items();
    let users: Vec<u32> = split.test_users().collect();
    let fresh = || Accumulator::new(&options.ks, n_items);
    let max_k = fresh().max_k();
    let accumulator = users
        .par_iter()
        .with_min_len(64)
        .fold(
            || (fresh(), vec![0f32; n_items]),
            |(mut acc, mut scores), &user| {
                let steps = split.train.user(user);
                let history = weighted_history(steps, options.weighting);
                scores.fill(0.0);
                score(&history, &mut scores);
                for &(item, _) in &history {
                    if let Some(s) = scores.get_mut(item as usize) {
                        *s = f32::NEG_INFINITY;
                    }
                }
                let ranked: Vec<u32> = top_n(&scores, max_k, |_| true)
                    .into_iter()
                    .map(|(i, _)| i)
                    .collect();
                acc.add(&ranked, &split.test[user as usize], popularity);
                (acc, scores)
            },
        )
        .map(|(acc, _)| acc)
        .reduce(fresh, Accumulator::merge);
    Ok(accumulator.finish())
}

fn check_options(options: &EvalOptions) -> Result<(), EvalError> {
    if options.ks.is_empty() || options.ks.contains(&0) {
        return Err(EvalError::InvalidArgument(
            "cutoffs K must be a non-empty list of positive numbers".into(),
        ));
    }
    if let HistoryWeighting::Recency { half_life } = options.weighting {
        if !(half_life > 0.0 && half_life.is_finite()) {
            return Err(EvalError::InvalidArgument(format!(
                "half-life {half_life} must be a positive number of events"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tephra_core::Timestamp;

    fn steps(items: &[u32]) -> Vec<Step> {
        items
            .iter()
            .enumerate()
            .map(|(k, &item)| Step {
                time: Timestamp(k as i64),
                item,
                value: 1.0,
            })
            .collect()
    }

    #[test]
    fn recency_weights_halve_per_half_life_and_latest_repeat_wins() {
        let h = weighted_history(
            &steps(&[5, 3, 5, 1]),
            HistoryWeighting::Recency { half_life: 1.0 },
        );
        // Ages: 5 → 3 and 1 (latest wins: 2^-1), 3 → 2 (2^-2), 1 → 0 (1).
        assert_eq!(h, vec![(1, 1.0), (3, 0.25), (5, 0.5)]);
        let plain = weighted_history(&steps(&[2, 2, 0]), HistoryWeighting::Plain);
        assert_eq!(plain, vec![(0, 1.0), (2, 1.0)]);
        assert!(weighted_history(&[], HistoryWeighting::Plain).is_empty());
        let w = HistoryWeighting::Recency { half_life: 10.0 };
        assert!((w.weight(10) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn options_are_checked() {
        let bad_k = EvalOptions {
            ks: vec![0],
            ..Default::default()
        };
        assert!(check_options(&bad_k).is_err());
        let bad_half_life = EvalOptions {
            weighting: HistoryWeighting::Recency { half_life: 0.0 },
            ..Default::default()
        };
        assert!(check_options(&bad_half_life).is_err());
        assert!(check_options(&EvalOptions::default()).is_ok());
    }
}
