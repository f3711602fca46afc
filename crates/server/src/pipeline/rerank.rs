//! Rerank rules: near-duplicate removal, per-category caps and MMR,
//! exploration slots, pinned positions, and filling a short list.

use std::collections::{HashMap, HashSet};

use super::scene::RerankSettings;
use super::{Features, Placement, Ranked, Request, Source};
use crate::live::{HeadList, LiveState};

/// Near-duplicates are looked for among this many items placed before.
const NEAR_DUPLICATE_WINDOW: usize = 50;
/// Exploration picks among this many of the trending and latest heads.
const EXPLORE_POOL: usize = 50;

/// Turns the ranked candidates (best first) into the first `wanted` items of
/// the answer. Every item placed passes `allow`; none is placed twice.
pub(super) fn rerank(
    live: &LiveState,
    rules: &RerankSettings,
    ranked: Vec<Ranked>,
    wanted: usize,
    allow: &dyn Fn(u32) -> bool,
    request: &Request<'_>,
) -> Vec<Ranked> {
    let mut list = Placed {
        live,
        rules,
        items: Vec::with_capacity(wanted.min(ranked.len())),
        per_category: HashMap::new(),
    };
    select(&mut list, ranked, wanted);
    fill(&mut list, wanted, allow, request);
    let mut out = list.items;
    let mut placed: HashSet<u32> = out.iter().map(|r| r.item).collect();
    explore(live, rules, &mut out, &mut placed, wanted, allow, request);
    pin(&mut out, &mut placed, wanted, allow, request);
    out
}

/// The list being built, with what the diversity rules need to know about it.
struct Placed<'a> {
    live: &'a LiveState,
    rules: &'a RerankSettings,
    items: Vec<Ranked>,
    per_category: HashMap<u32, usize>,
}

impl Placed<'_> {
    /// Whether `item` may join: its categories are under their cap and it is
    /// not a near-duplicate of a recently placed item.
    fn fits(&self, item: u32) -> bool {
        let cap = self.rules.max_per_category;
        if cap > 0
            && self
                .live
                .item_categories(item)
                .iter()
                .any(|c| self.per_category.get(c).copied().unwrap_or(0) >= cap)
        {
            return false;
        }
        let threshold = self.rules.near_duplicate_threshold as f32;
        let content = self.live.content();
        if threshold > 0.0 && content.contains(item) {
            let start = self.items.len().saturating_sub(NEAR_DUPLICATE_WINDOW);
            if self.items[start..]
                .iter()
                .any(|r| content.cosine(r.item, item) >= threshold)
            {
                return false;
            }
        }
        true
    }

    fn push(&mut self, r: Ranked) {
        for &c in self.live.item_categories(r.item) {
            *self.per_category.entry(c).or_default() += 1;
        }
        self.items.push(r);
    }
}

/// Greedy selection: in score order (or by maximal marginal relevance when
/// `mmr_lambda < 1`), skipping near-duplicates and items whose category is
/// already at its cap.
fn select(placed: &mut Placed<'_>, mut ranked: Vec<Ranked>, wanted: usize) {
    if placed.rules.mmr_lambda >= 1.0 {
        for r in ranked {
            if placed.items.len() == wanted {
                break;
            }
            if placed.fits(r.item) {
                placed.push(r);
            }
        }
        return;
    }
    // MMR over a window of the best candidates: relevance (the score relative
    // to the best) against the largest category overlap with items placed.
    let lambda = placed.rules.mmr_lambda;
    let live = placed.live;
    ranked.truncate(wanted.saturating_mul(4).saturating_add(20));
    let top = ranked
        .first()
        .map_or(1.0, |r| r.score.abs().max(f64::EPSILON));
    while placed.items.len() < wanted && !ranked.is_empty() {
        // Items that do not fit now never will: caps only fill up.
        ranked.retain(|r| placed.fits(r.item));
        let best = ranked
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let overlap = placed
                    .items
                    .iter()
                    .map(|o| jaccard(live.item_categories(o.item), live.item_categories(r.item)))
                    .fold(0.0, f64::max);
                (i, lambda * r.score / top - (1.0 - lambda) * overlap)
            })
            .fold(None, |best: Option<(usize, f64)>, (i, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((i, v)),
            });
        let Some((i, _)) = best else { break };
        let r = ranked.remove(i);
        placed.push(r);
    }
}

/// Jaccard similarity of two sorted category lists (0 when both are empty).
fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 0.0;
    }
    let common = a.iter().filter(|c| b.binary_search(c).is_ok()).count();
    common as f64 / (a.len() + b.len() - common) as f64
}

/// Gives `round(wanted × exploration)` evenly spread slots to trending or
/// recently published items not already placed, chosen at random (seeded by
/// the request) among the heads of those lists.
fn explore(
    live: &LiveState,
    rules: &RerankSettings,
    out: &mut Vec<Ranked>,
    placed: &mut HashSet<u32>,
    wanted: usize,
    allow: &dyn Fn(u32) -> bool,
    request: &Request<'_>,
) {
    let slots = (wanted as f64 * rules.exploration).round() as usize;
    if slots == 0 {
        return;
    }
    let fresh = |i: u32| allow(i) && !placed.contains(&i);
    let trending = live.head_top(HeadList::Trending, &fresh, EXPLORE_POOL, request.now);
    let latest = live.head_top(HeadList::Latest, &fresh, EXPLORE_POOL, request.now);
    // The hottest and the newest, alternately; slots draw from the first few.
    let mut pool: Vec<(u32, Source)> = Vec::new();
    for k in 0..EXPLORE_POOL {
        for (list, source) in [(&trending, Source::Trending), (&latest, Source::Latest)] {
            if let Some(&(item, _)) = list.get(k) {
                if pool.iter().all(|&(i, _)| i != item) {
                    pool.push((item, source));
                }
            }
        }
    }
    pool.truncate(slots.saturating_mul(2).max(4));
    let mut state = request.seed;
    for slot in 0..slots {
        if pool.is_empty() {
            break;
        }
        state = splitmix(state);
        let (item, source) = pool.swap_remove((state % pool.len() as u64) as usize);
        let position = ((slot + 1) * wanted / (slots + 1)).min(out.len());
        placed.insert(item);
        out.insert(
            position,
            Ranked {
                item,
                score: 0.0,
                source,
                features: Features::default(),
                placement: Placement::Explored,
            },
        );
    }
    while out.len() > wanted {
        if let Some(dropped) = out.pop() {
            placed.remove(&dropped.item);
        }
    }
}

/// Moves (or inserts) pinned items to their positions, when they may be shown.
fn pin(
    out: &mut Vec<Ranked>,
    placed: &mut HashSet<u32>,
    wanted: usize,
    allow: &dyn Fn(u32) -> bool,
    request: &Request<'_>,
) {
    let mut pinned = request.pinned.clone();
    pinned.sort_by_key(|&(_, position)| position);
    for (item, position) in pinned {
        if position >= wanted || !allow(item) {
            continue;
        }
        if let Some(at) = out.iter().position(|r| r.item == item) {
            out.remove(at);
        }
        placed.insert(item);
        out.insert(
            position.min(out.len()),
            Ranked {
                item,
                score: 0.0,
                source: Source::Pinned,
                features: Features::default(),
                placement: Placement::Pinned,
            },
        );
    }
    while out.len() > wanted {
        if let Some(dropped) = out.pop() {
            placed.remove(&dropped.item);
        }
    }
}

/// Fills a list shorter than `wanted` with popular, then recently published
/// items that pass the same rules, so that a request is answered in full
/// whenever enough items may be shown.
fn fill(
    placed: &mut Placed<'_>,
    wanted: usize,
    allow: &dyn Fn(u32) -> bool,
    request: &Request<'_>,
) {
    for (list, source) in [
        (HeadList::Popular, Source::Popular),
        (HeadList::Latest, Source::Latest),
    ] {
        if placed.items.len() >= wanted {
            return;
        }
        let taken: HashSet<u32> = placed.items.iter().map(|r| r.item).collect();
        // Over-fetched: some may break a cap or duplicate a placed item.
        let missing = (wanted - placed.items.len())
            .saturating_mul(2)
            .saturating_add(8);
        let more = placed.live.head_top(
            list,
            &|i| allow(i) && !taken.contains(&i),
            missing,
            request.now,
        );
        for (item, _) in more {
            if placed.items.len() >= wanted {
                return;
            }
            if placed.fits(item) {
                placed.push(Ranked {
                    item,
                    score: 0.0,
                    source,
                    features: Features::default(),
                    placement: Placement::Filled,
                });
            }
        }
    }
}

/// SplitMix64: a cheap, well-mixed step of the exploration stream.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaccard_of_category_lists() {
        assert_eq!(jaccard(&[], &[]), 0.0);
        assert_eq!(jaccard(&[1, 2], &[1, 2]), 1.0);
        assert_eq!(jaccard(&[1, 2], &[2, 3]), 1.0 / 3.0);
        assert_eq!(jaccard(&[1], &[]), 0.0);
    }
}
