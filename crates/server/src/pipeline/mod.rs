//! The serving pipeline: recall → rank → rerank, configured per scene.
//!
//! 1. **Recall.** Every source of the scene proposes up to its quota of items
//!    the request may show (the filter drops hidden, expired, deleted,
//!    excluded, category-filtered and already-seen items before any scoring):
//!    the promoted model from the user's current history, the model's and the
//!    content index's neighbours of the latest items (or of the context item),
//!    trending, latest, popular, and the caller's candidates.
//! 2. **Rank.** Each source's scores are normalized to `0..=1`; a [`Ranker`]
//!    (today the scene's weighted blend plus freshness) scores the union.
//! 3. **Rerank.** Near-duplicates go, per-category caps and MMR diversify,
//!    exploration slots show fresh or trending items, pinned items take their
//!    positions, and popular then latest items fill a list the sources could
//!    not fill.
//!
//! Everything runs on the in-memory state under its read lock; nothing touches
//! the disk, and an event accepted a moment earlier already counts.

pub mod rank;
mod rerank;
pub mod scene;
pub mod session;

use std::collections::HashMap;

use serde::Serialize;
use tephra_core::Timestamp;
use utoipa::ToSchema;

pub use rank::{BlendRanker, Features, Ranker};
use scene::{RecallSpec, Scene, SourceKind, N_SOURCES};

use crate::live::{HeadList, LiveState};
use crate::model_manager::Promoted;

/// Where an answered item came from: the source that contributed most to its
/// score, or the rerank rule that placed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The promoted model, from the user's current history.
    Collaborative,
    /// The model's neighbours of the user's latest items or the context item.
    ItemToItem,
    /// Similar by text, tags and categories (BM25).
    Content,
    /// Most positive events in a time-decayed window.
    Trending,
    /// Most recently published.
    Latest,
    /// Most positive events overall.
    Popular,
    /// Supplied by the caller.
    Candidates,
    /// Pinned to its position by the scene.
    Pinned,
}

impl Source {
    /// The name used in responses, events' attribution and analytics.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Collaborative => "collaborative",
            Source::ItemToItem => "item_to_item",
            Source::Content => "content",
            Source::Trending => "trending",
            Source::Latest => "latest",
            Source::Popular => "popular",
            Source::Candidates => "candidates",
            Source::Pinned => "pinned",
        }
    }
}

impl From<SourceKind> for Source {
    fn from(kind: SourceKind) -> Self {
        match kind {
            SourceKind::Collaborative => Source::Collaborative,
            SourceKind::ItemToItem => Source::ItemToItem,
            SourceKind::Content => Source::Content,
            SourceKind::Trending => Source::Trending,
            SourceKind::Latest => Source::Latest,
            SourceKind::Popular => Source::Popular,
            SourceKind::Candidates => Source::Candidates,
        }
    }
}

/// How an item got its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// By its score.
    Ranked,
    /// In an exploration slot.
    Explored,
    /// At its pinned position.
    Pinned,
    /// Filling a list the sources could not fill.
    Filled,
}

/// One answered item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    /// Dense item index.
    pub item: u32,
    /// The ranker's score (0 for filled items).
    pub score: f64,
    /// See [`Source`].
    pub source: Source,
    /// What the ranker saw.
    pub features: Features,
    /// See [`Placement`].
    pub placement: Placement,
}

/// One request to the pipeline, in dense indices.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The user's positive events `(item, ms)`, oldest first (or an anonymous
    /// session's).
    pub history: &'a [(u32, i64)],
    /// Items never to answer: the user's seen and negative items, the caller's
    /// `exclude`, the session's earlier pages, the context item.
    pub blocked: Vec<u32>,
    /// The item the request is about (`similar`, an item page), if any.
    pub context_item: Option<u32>,
    /// The caller's candidates, in the caller's order.
    pub candidates: &'a [u32],
    /// Categories every answered item must have.
    pub categories: &'a [String],
    /// Items pinned to positions (dense index, position from 0).
    pub pinned: Vec<(u32, usize)>,
    /// How many items.
    pub n: usize,
    /// How many top items to skip.
    pub offset: usize,
    /// The request's clock.
    pub now: Timestamp,
    /// Seeds exploration, so one request id explores the same way twice.
    pub seed: u64,
    /// Items shown to the user before, with how often (for impression
    /// fatigue).
    pub shown: &'a [(u32, u16)],
}

/// Runs `scene` for `request` (see the module docs); at most `request.n`
/// items, best first, after skipping `request.offset`.
pub fn run(
    live: &LiveState,
    model: Option<&Promoted>,
    scene: &Scene,
    ranker: &dyn Ranker,
    request: &Request<'_>,
) -> Vec<Ranked> {
    if request.n == 0 {
        return Vec::new();
    }
    let Some(filter) = live.request_filter(
        request.categories,
        request.blocked.iter().copied(),
        request.now,
    ) else {
        return Vec::new();
    };
    let allow = |item: u32| filter.allows(item);
    // Never more than the catalogue holds, whatever the request asks.
    let wanted = request.offset.saturating_add(request.n).min(live.n_items());
    if wanted <= request.offset {
        return Vec::new();
    }
    let mut pool = Pool::default();
    for spec in &scene.recall {
        let quota = match spec.source {
            SourceKind::Candidates => spec.quota,
            _ => spec.quota.max(wanted),
        };
        if quota == 0 {
            continue;
        }
        let found = recall(live, model, spec, quota, &allow, request);
        pool.add(spec.source, &found, spec.quota);
    }
    let half_life_ms = scene.freshness_half_life_hours * 3_600_000.0;
    let shown: HashMap<u32, u16> = request.shown.iter().copied().collect();
    let mut ranked: Vec<Ranked> = pool
        .candidates
        .into_iter()
        .map(|(item, mut features)| {
            features.shown = shown.get(&item).copied().unwrap_or(0);
            features.freshness = live.published_at(item).map_or(0.0, |at| {
                let age = (request.now.millis() - at.millis()).max(0) as f64;
                (-age / half_life_ms).exp2() as f32
            });
            let score = ranker.score(&features);
            let (parts, _) = ranker.contributions(&features);
            let source = SourceKind::ALL
                .iter()
                .filter(|k| features.present & (1 << k.index()) != 0)
                .max_by(|a, b| {
                    parts[a.index()]
                        .total_cmp(&parts[b.index()])
                        .then(b.index().cmp(&a.index()))
                })
                .map_or(Source::Popular, |&k| k.into());
            Ranked {
                item,
                score,
                source,
                features,
                placement: Placement::Ranked,
            }
        })
        .collect();
    ranked.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
    let mut out = rerank::rerank(live, &scene.rerank, ranked, wanted, &allow, request);
    out.drain(..request.offset.min(out.len()));
    out.truncate(request.n);
    out
}

/// One source's candidates, best first, with the source's own scores.
fn recall(
    live: &LiveState,
    model: Option<&Promoted>,
    spec: &RecallSpec,
    quota: usize,
    allow: &dyn Fn(u32) -> bool,
    request: &Request<'_>,
) -> Vec<(u32, f32)> {
    let head = |list: HeadList| -> Vec<(u32, f32)> {
        live.head_top(list, allow, quota, request.now)
            .into_iter()
            .map(|(item, score)| (item, score as f32))
            .collect()
    };
    match spec.source {
        SourceKind::Collaborative => model.map_or_else(Vec::new, |m| {
            m.recall_user(request.history, quota, allow, request.candidates)
        }),
        SourceKind::ItemToItem => model.map_or_else(Vec::new, |m| {
            m.recall_neighbours(&seeds(request, spec.recent), quota, allow)
        }),
        SourceKind::Content => accumulate(&seeds(request, spec.recent), quota, |seed| {
            let mut similar = live
                .content()
                .similar(seed, quota.saturating_mul(2).saturating_add(16));
            similar.retain(|&(item, score)| score > 0.0 && allow(item));
            similar
        }),
        SourceKind::Trending => head(HeadList::Trending),
        SourceKind::Latest => head(HeadList::Latest),
        SourceKind::Popular => head(HeadList::Popular),
        SourceKind::Candidates => {
            let allowed: Vec<u32> = request
                .candidates
                .iter()
                .copied()
                .filter(|&item| allow(item))
                .take(quota)
                .collect();
            let len = allowed.len();
            allowed
                .into_iter()
                .enumerate()
                .map(|(rank, item)| (item, (len - rank) as f32))
                .collect()
        }
    }
}

/// The items that seed neighbour sources, with their weights: the context
/// item alone, or the `recent` latest distinct items of the history, the
/// latest weighing 1 and each older one half the one after it.
fn seeds(request: &Request<'_>, recent: usize) -> Vec<(u32, f32)> {
    if let Some(item) = request.context_item {
        return vec![(item, 1.0)];
    }
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(recent);
    for &(item, _) in request.history.iter().rev() {
        if out.len() == recent {
            break;
        }
        if out.iter().all(|&(i, _)| i != item) {
            out.push((item, 0.5f32.powi(out.len() as i32)));
        }
    }
    out
}

/// Sums each seed's weighted neighbour scores; the `quota` best, best first.
pub(crate) fn accumulate(
    seeds: &[(u32, f32)],
    quota: usize,
    mut neighbours: impl FnMut(u32) -> Vec<(u32, f32)>,
) -> Vec<(u32, f32)> {
    let mut sums: HashMap<u32, f32> = HashMap::new();
    for &(seed, weight) in seeds {
        for (item, score) in neighbours(seed) {
            *sums.entry(item).or_default() += weight * score;
        }
    }
    let mut out: Vec<(u32, f32)> = sums.into_iter().collect();
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(quota);
    out
}

/// The union of every source's candidates with their normalized parts.
#[derive(Default)]
struct Pool {
    index: HashMap<u32, usize>,
    candidates: Vec<(u32, Features)>,
}

impl Pool {
    fn add(&mut self, source: SourceKind, found: &[(u32, f32)], scale: usize) {
        let scores: Vec<f32> = found.iter().map(|&(_, s)| s).collect();
        let normalized = rank::normalize_source(source, &scores, scale);
        for (&(item, _), part) in found.iter().zip(normalized) {
            let slot = *self.index.entry(item).or_insert_with(|| {
                self.candidates.push((item, Features::default()));
                self.candidates.len() - 1
            });
            let features = &mut self.candidates[slot].1;
            let i = source.index();
            if features.present & (1 << i) == 0 {
                features.present |= 1 << i;
                features.parts[i] = part;
            }
        }
    }
}

/// The names of the sources whose bits are set in `present`, for `explain`.
pub fn source_names(present: u8) -> Vec<&'static str> {
    SourceKind::ALL
        .iter()
        .filter(|k| present & (1 << k.index()) != 0)
        .map(|k| k.name())
        .collect()
}

/// `N_SOURCES` is small enough for the `present` bit set.
const _: () = assert!(N_SOURCES <= 8);

#[cfg(test)]
mod tests;
