//! The one interface every collaborative model serves through.

/// A user's history as the models see it: dense item indices with a weight each
/// (1.0 for a plain interaction; smaller for older events when recency weighting
/// is on). Order does not matter; an item appears at most once.
pub type History<'a> = &'a [(u32, f32)];

/// A trained model that scores items for a history.
///
/// Scoring takes the *current history*, not a user index, on purpose: the server
/// answers from what the user did a millisecond ago (real-time fold-in), brand-new
/// users are served the same way as old ones, and offline evaluation feeds the
/// training part of a split through the very same call.
pub trait Recommender: Send + Sync {
    /// A short stable name, e.g. `ease`, `ials`, `itemknn`.
    fn name(&self) -> &'static str;

    /// Number of items the model knows (the length `scores` must have).
    fn n_items(&self) -> usize;

    /// Writes a score for every item into `scores` (`scores.len() == n_items()`);
    /// higher is better. Items of the history are scored too; callers exclude them.
    fn score(&self, history: History<'_>, scores: &mut [f32]);

    /// Items most similar to `item`, best first, excluding `item` itself.
    ///
    /// The default scores a one-item history, which is what item-to-item
    /// models mean by similarity; factor models may override it.
    fn similar_items(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        let mut scores = vec![0.0; self.n_items()];
        if (item as usize) >= scores.len() {
            return Vec::new();
        }
        self.score(&[(item, 1.0)], &mut scores);
        scores[item as usize] = f32::NEG_INFINITY;
        crate::rank::top_n(&scores, n, |_| true)
    }
}
