//! Turning a user's ordered timeline into the weighted history models score.
//!
//! Lives in the models crate so that offline evaluation and the server build
//! histories with the very same code: a model tuned offline with a half-life of
//! 7 events must be served with a half-life of 7 events, computed identically.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// How a user's ordered history is weighted before scoring.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HistoryWeighting {
    /// Every distinct item weighs 1.0.
    #[default]
    Plain,
    /// An item weighs `2^(−age / half_life)`, where `age` counts the user's
    /// later events (0 for the latest event). On a temporal split what a user did
    /// last predicts what comes next, so this is the strongest single lever.
    Recency {
        /// Age, in events, at which the weight halves; must be positive.
        half_life: f32,
    },
}

impl HistoryWeighting {
    /// The weight of an event `age` events before the latest.
    pub fn weight(&self, age: usize) -> f32 {
        match *self {
            HistoryWeighting::Plain => 1.0,
            HistoryWeighting::Recency { half_life } => (-(age as f32) / half_life).exp2(),
        }
    }

    /// Refuses a half-life that is not a positive finite number of events, so a
    /// bad configuration fails at startup instead of producing NaN scores.
    pub fn validate(&self) -> Result<(), ModelError> {
        match *self {
            HistoryWeighting::Recency { half_life }
                if !(half_life > 0.0 && half_life.is_finite()) =>
            {
                Err(ModelError::InvalidSpec(format!(
                    "half-life {half_life} must be a positive number of events"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// The `(item, weight)` history a model scores, from a user's items in time
/// order (oldest first).
///
/// An item that occurs several times appears once, with the weight of its latest
/// occurrence (the reference evaluation script assigns weights in time order, so
/// the last one wins). Returned sorted by item.
pub fn weighted_history<I>(items: I, weighting: HistoryWeighting) -> Vec<(u32, f32)>
where
    I: IntoIterator<Item = u32>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let n = items.len();
    let mut history: Vec<(u32, f32, usize)> = items
        .enumerate()
        .map(|(k, item)| (item, weighting.weight(n - 1 - k), k))
        .collect();
    // Sort by item, latest occurrence first, then keep the first of each item.
    history.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)));
    history.dedup_by_key(|h| h.0);
    history
        .into_iter()
        .map(|(item, weight, _)| (item, weight))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recency_weights_halve_per_half_life_and_latest_repeat_wins() {
        let h = weighted_history([5, 3, 5, 1], HistoryWeighting::Recency { half_life: 1.0 });
        // Ages: 5 → 3 and 1 (latest wins: 2^-1), 3 → 2 (2^-2), 1 → 0 (1).
        assert_eq!(h, vec![(1, 1.0), (3, 0.25), (5, 0.5)]);
        assert_eq!(
            weighted_history([2, 2, 0], HistoryWeighting::Plain),
            vec![(0, 1.0), (2, 1.0)]
        );
        assert!(weighted_history(Vec::new(), HistoryWeighting::Plain).is_empty());
        let w = HistoryWeighting::Recency { half_life: 10.0 };
        assert!((w.weight(10) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn validates_and_round_trips_through_json() {
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(HistoryWeighting::Recency { half_life: bad }
                .validate()
                .is_err());
        }
        let w = HistoryWeighting::Recency { half_life: 7.0 };
        assert!(w.validate().is_ok());
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(json, r#"{"kind":"recency","half_life":7.0}"#);
        assert_eq!(serde_json::from_str::<HistoryWeighting>(&json).unwrap(), w);
        assert!(serde_json::from_str::<HistoryWeighting>(r#"{"kind":"recency","x":1}"#).is_err());
    }
}
