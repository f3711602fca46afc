//! The ranker: one score per candidate from its features.
//!
//! Today's ranker is a weighted blend; the [`Ranker`] trait takes the whole
//! feature vector so that a learned ranker (trained on impressions and clicks)
//! can replace it without touching recall or rerank.

use super::scene::{Scene, SourceKind, N_SOURCES};

/// What the ranker knows about one candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Features {
    /// Per source (by [`super::scene::SourceKind::index`]), the candidate's
    /// score normalized to `0..=1` within that source's candidates; 0 when the
    /// source did not return it.
    pub parts: [f32; N_SOURCES],
    /// Bit `i` set when source `i` returned the candidate.
    pub present: u8,
    /// `2^(-age / half-life)` of the publish time: 1 for a just-published item.
    pub freshness: f32,
    /// How often the item was shown to this user before.
    pub shown: u16,
}

/// Scores candidates; higher ranks first.
pub trait Ranker: Send + Sync {
    /// A short name reported by `explain`.
    fn name(&self) -> &'static str;
    /// The candidate's score.
    fn score(&self, features: &Features) -> f64;
    /// What each feature added to the score, for `explain` (per source, then
    /// freshness); a learned ranker may report its own attribution.
    fn contributions(&self, features: &Features) -> ([f64; N_SOURCES], f64);
}

/// A weighted sum of the normalized source scores plus weighted freshness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlendRanker {
    weights: [f64; N_SOURCES],
    freshness_weight: f64,
    impression_decay: f64,
}

impl BlendRanker {
    /// The blend a scene configures (sources it does not list weigh 0).
    pub fn for_scene(scene: &Scene) -> Self {
        let mut weights = [0.0; N_SOURCES];
        for spec in &scene.recall {
            weights[spec.source.index()] = spec.weight;
        }
        Self {
            weights,
            freshness_weight: scene.freshness_weight,
            impression_decay: scene.impression_decay,
        }
    }
}

impl Ranker for BlendRanker {
    fn name(&self) -> &'static str {
        "blend"
    }

    fn score(&self, features: &Features) -> f64 {
        let (parts, freshness) = self.contributions(features);
        parts.iter().sum::<f64>() + freshness
    }

    /// Each part times the impression fatigue `decay^shown`, so that the
    /// contributions still add up to the score.
    fn contributions(&self, features: &Features) -> ([f64; N_SOURCES], f64) {
        let fatigue = self.impression_decay.powi(i32::from(features.shown));
        let mut out = [0.0; N_SOURCES];
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.weights[i] * f64::from(features.parts[i]) * fatigue;
        }
        (
            out,
            self.freshness_weight * f64::from(features.freshness) * fatigue,
        )
    }
}

/// One source's scores (best first) on a common scale, 1 for its best item:
/// - the model's scores (any sign) by min–max over its first `scale` items
///   (items beyond go below 0, keeping the model's order);
/// - `latest` by rank (publish times in seconds are all alike relative to their
///   maximum), 1 for the newest down to 0 at rank `scale`;
/// - every other source (non-negative by construction) relative to its best,
///   so being proposed at all counts, and a much weaker item counts less.
///
/// The scale is the source's configured quota, not the request's page depth,
/// so an item's part does not change with `offset` or `n`.
pub fn normalize_source(source: SourceKind, scores: &[f32], scale: usize) -> Vec<f32> {
    let scale = scale.clamp(1, scores.len().max(1));
    match source {
        SourceKind::Collaborative => {
            let head = &scores[..scale.min(scores.len())];
            let (min, max) = head
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| {
                    (lo.min(s), hi.max(s))
                });
            let range = max - min;
            scores
                .iter()
                .map(|&s| {
                    if range > 0.0 && range.is_finite() {
                        ((s - min) / range).min(1.0)
                    } else {
                        1.0
                    }
                })
                .collect()
        }
        SourceKind::Latest => (0..scores.len())
            .map(|r| (1.0 - r as f32 / scale as f32).max(0.0))
            .collect(),
        _ => {
            let max = scores.iter().copied().fold(0.0f32, f32::max);
            scores
                .iter()
                .map(|&s| {
                    if max > 0.0 && max.is_finite() {
                        (s / max).clamp(0.0, 1.0)
                    } else {
                        1.0
                    }
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blend_weighs_normalized_parts_and_freshness() {
        let mut scene = Scene::home();
        scene.freshness_weight = 0.5;
        let ranker = BlendRanker::for_scene(&scene);
        let mut f = Features {
            freshness: 1.0,
            ..Features::default()
        };
        f.parts[SourceKind::Collaborative.index()] = 0.5;
        f.parts[SourceKind::Trending.index()] = 1.0;
        let expected = 0.5 * 1.0 + 0.1 * 1.0 + 0.5;
        assert!((ranker.score(&f) - expected).abs() < 1e-9);
        let (parts, freshness) = ranker.contributions(&f);
        assert_eq!(freshness, 0.5);
        assert!((parts[SourceKind::Trending.index()] - 0.1).abs() < 1e-9);
    }

    #[test]
    fn normalization_maps_to_unit_range() {
        assert_eq!(
            normalize_source(SourceKind::Collaborative, &[4.0, 2.0, 3.0], 3),
            vec![1.0, 0.0, 0.5]
        );
        assert_eq!(
            normalize_source(SourceKind::Collaborative, &[-1.0, -1.0], 5),
            vec![1.0, 1.0]
        );
        assert!(normalize_source(SourceKind::Popular, &[], 3).is_empty());
        assert_eq!(
            normalize_source(SourceKind::Trending, &[4.0, 2.0, 1.0], 2),
            vec![1.0, 0.5, 0.25]
        );
        assert_eq!(
            normalize_source(SourceKind::Latest, &[9e8, 8e8, 1.0, 0.0], 4),
            vec![1.0, 0.75, 0.5, 0.25]
        );
        assert_eq!(
            normalize_source(SourceKind::Latest, &[9e8, 8e8, 1.0, 0.0], 2),
            vec![1.0, 0.5, 0.0, 0.0]
        );
        // The scale is set by the first `scale` items: deeper ones go below 0.
        assert_eq!(
            normalize_source(SourceKind::Collaborative, &[3.0, 1.0, -1.0], 2),
            vec![1.0, 0.0, -1.0]
        );
    }

    #[test]
    fn earlier_impressions_scale_the_score_and_its_contributions() {
        let mut scene = Scene::home();
        scene.impression_decay = 0.5;
        let ranker = BlendRanker::for_scene(&scene);
        let mut f = Features::default();
        f.parts[SourceKind::Collaborative.index()] = 1.0;
        let fresh = ranker.score(&f);
        f.shown = 2;
        assert!((ranker.score(&f) - fresh * 0.25).abs() < 1e-12);
        let (parts, freshness) = ranker.contributions(&f);
        assert!((parts.iter().sum::<f64>() + freshness - ranker.score(&f)).abs() < 1e-12);
        scene.impression_decay = 1.0;
        assert_eq!(BlendRanker::for_scene(&scene).score(&f), fresh);
    }
}
