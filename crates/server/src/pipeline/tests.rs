//! Pipeline behaviour on a live state fed the way the server feeds it.

use std::collections::HashSet;

use proptest::prelude::*;
use tephra_core::{Item, Timestamp};

use super::scene::{Pinned, RecallSpec, RerankSettings, Scene, SourceKind};
use super::*;
use crate::live::fixture::Fixture;

const HOUR: i64 = 3_600_000;

fn at_hours(h: i64) -> Timestamp {
    Timestamp(h * HOUR)
}

impl Fixture {
    fn run(&self, scene: &Scene, request: &Request<'_>) -> Vec<Ranked> {
        run(
            &self.live,
            None,
            scene,
            &BlendRanker::for_scene(scene),
            request,
        )
    }
}

fn request<'a>(n: usize, now: Timestamp) -> Request<'a> {
    Request {
        history: &[],
        blocked: Vec::new(),
        context_item: None,
        candidates: &[],
        categories: &[],
        pinned: Vec::new(),
        n,
        offset: 0,
        now,
        seed: 7,
        shown: &[],
    }
}

fn item(id: &str, title: &str, categories: &[&str]) -> Item {
    Item {
        title: title.to_owned(),
        categories: categories.iter().map(|c| c.to_string()).collect(),
        ..Item::placeholder(id, at_hours(1))
    }
}

#[test]
fn candidates_rank_in_the_callers_order_and_pins_take_their_positions() {
    let mut f = Fixture::new(24.0);
    for i in 0..6 {
        f.upsert(item(&format!("i{i}"), "", &[]));
    }
    let candidates = [f.index("i4"), f.index("i2"), f.index("i5")];
    let scene = Scene {
        recall: vec![RecallSpec {
            source: SourceKind::Candidates,
            quota: 10,
            weight: 1.0,
            recent: 1,
        }],
        ..Scene::home()
    };
    let mut req = request(3, at_hours(2));
    req.candidates = &candidates;
    assert_eq!(f.ids(&f.run(&scene, &req)), ["i4", "i2", "i5"]);
    req.pinned = vec![(f.index("i0"), 1), (f.index("i5"), 0)];
    let out = f.run(&scene, &req);
    assert_eq!(f.ids(&out), ["i5", "i0", "i4"]);
    assert_eq!(out[0].placement, Placement::Pinned);
    assert_eq!(out[0].source, Source::Pinned);
    // A pinned item the request may not show is not pinned.
    req.blocked = vec![f.index("i0")];
    assert_eq!(f.ids(&f.run(&scene, &req)), ["i5", "i4", "i2"]);
}

#[test]
fn category_caps_and_mmr_diversify_and_near_duplicates_go() {
    let mut f = Fixture::new(24.0);
    let now = at_hours(10);
    let specs = [
        ("a1", "alpha one", "x"),
        ("a2", "alpha two", "x"),
        ("a3", "alpha three", "x"),
        ("b1", "beta one", "y"),
        ("b2", "beta two", "y"),
    ];
    for (i, (id, title, cat)) in specs.iter().enumerate() {
        f.upsert(item(id, title, &[cat]));
        // a1 most popular, then a2, a3, b1, b2.
        for u in 0..(10 - i) {
            f.event(&format!("u{u}"), id, "click", at_hours(2));
        }
    }
    let mut scene = Scene {
        recall: vec![RecallSpec {
            source: SourceKind::Popular,
            quota: 10,
            weight: 1.0,
            recent: 1,
        }],
        ..Scene::home()
    };
    assert_eq!(f.ids(&f.run(&scene, &request(3, now))), ["a1", "a2", "a3"]);
    scene.rerank.max_per_category = 2;
    assert_eq!(f.ids(&f.run(&scene, &request(3, now))), ["a1", "a2", "b1"]);
    scene.rerank.max_per_category = 0;
    scene.rerank.mmr_lambda = 0.3;
    assert_eq!(f.ids(&f.run(&scene, &request(2, now))), ["a1", "b1"]);
    // Identical texts: only the better one stays.
    scene.rerank.mmr_lambda = 1.0;
    f.upsert(item("b2", "alpha one", &["x"]));
    let out = f.ids(&f.run(&scene, &request(5, now)));
    assert!(!out.contains(&"b2") || !out.contains(&"a1"), "{out:?}");
    scene.rerank.near_duplicate_threshold = 0.0;
    let out = f.ids(&f.run(&scene, &request(5, now)));
    assert!(out.contains(&"b2") && out.contains(&"a1"), "{out:?}");
}

#[test]
fn exploration_takes_its_share_of_slots_from_fresh_items() {
    let mut f = Fixture::new(24.0);
    // Long after the old items' events: they are popular but no longer trending.
    let now = at_hours(30_000);
    for i in 0..20 {
        f.upsert(item(&format!("old{i}"), "", &[]));
        for u in 0..(25 - i) {
            f.event(&format!("u{u}"), &format!("old{i}"), "click", at_hours(1));
        }
    }
    for i in 0..5 {
        f.upsert(Item {
            published_at: at_hours(29_999),
            ..item(&format!("new{i}"), "", &[])
        });
    }
    let mut scene = Scene {
        recall: vec![RecallSpec {
            source: SourceKind::Popular,
            quota: 50,
            weight: 1.0,
            recent: 1,
        }],
        ..Scene::home()
    };
    let plain = f.run(&scene, &request(10, now));
    assert!(plain.iter().all(|r| r.placement == Placement::Ranked));
    scene.rerank.exploration = 0.2;
    let explored = f.run(&scene, &request(10, now));
    assert_eq!(explored.len(), 10);
    let slots: Vec<&Ranked> = explored
        .iter()
        .filter(|r| r.placement == Placement::Explored)
        .collect();
    assert_eq!(slots.len(), 2, "{:?}", f.ids(&explored));
    for r in slots {
        assert!(f.live.item_id(r.item).unwrap().starts_with("new"));
    }
}

#[test]
fn neighbour_sources_start_from_the_latest_items() {
    let mut f = Fixture::new(24.0);
    f.upsert(item("ev", "electric car battery", &[]));
    f.upsert(item("ev2", "battery electric car range", &[]));
    f.upsert(item("chip", "chip fab 2nm", &[]));
    f.upsert(item("chip2", "new 2nm chip", &[]));
    let history = [(f.index("ev"), 1), (f.index("chip"), 2)];
    let scene = Scene {
        recall: vec![RecallSpec {
            source: SourceKind::Content,
            quota: 10,
            weight: 1.0,
            recent: 1,
        }],
        ..Scene::home()
    };
    let mut req = request(1, at_hours(3));
    req.history = &history;
    req.blocked = vec![f.index("ev"), f.index("chip")];
    assert_eq!(f.ids(&f.run(&scene, &req)), ["chip2"]);
    req.context_item = Some(f.index("ev"));
    assert_eq!(f.ids(&f.run(&scene, &req)), ["ev2"]);
}

/// A random pipeline: which sources, quotas, weights, and rerank rules.
fn scene_strategy() -> impl Strategy<Value = Scene> {
    (
        proptest::collection::vec((0usize..7, 0usize..12, 0.0f64..2.0, 1usize..4), 0..7),
        (
            0usize..3,
            0.0f64..=1.0,
            0.0f64..=0.5,
            prop_oneof![Just(0.0), Just(0.9)],
        ),
        proptest::collection::vec((0u8..12, 0usize..6), 0..3),
        0.0f64..1.0,
    )
        .prop_map(
            |(recall, (cap, lambda, exploration, dup), pins, fresh)| Scene {
                recall: recall
                    .into_iter()
                    .map(|(s, quota, weight, recent)| RecallSpec {
                        source: SourceKind::ALL[s],
                        quota,
                        weight,
                        recent,
                    })
                    .collect(),
                freshness_weight: fresh,
                freshness_half_life_hours: 24.0,
                impression_decay: 0.7,
                rerank: RerankSettings {
                    max_per_category: cap,
                    mmr_lambda: lambda,
                    exploration,
                    near_duplicate_threshold: dup,
                    pinned: pins
                        .into_iter()
                        .map(|(i, position)| Pinned {
                            item: format!("item-{i}"),
                            position,
                        })
                        .collect(),
                },
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the pipeline, excluded, seen, hidden, expired and deleted items
    /// never appear, no item appears twice, and pages that block what earlier
    /// pages answered never repeat an item.
    #[test]
    fn forbidden_items_never_appear_in_any_pipeline(
        scene in scene_strategy(),
        flags in proptest::collection::vec(0u8..6, 12),
        events in proptest::collection::vec((0u8..4, 0u8..12, 0u8..3, 0i64..50), 0..40),
        n in 1usize..8,
        exclude in proptest::collection::vec(0u8..12, 0..3),
        candidates in proptest::collection::vec(0u8..14, 0..6),
    ) {
        let now = at_hours(50);
        let mut f = Fixture::new(24.0);
        let mut forbidden_items = HashSet::new();
        for (i, &flag) in flags.iter().enumerate() {
            let id = format!("item-{i}");
            let mut it = item(&id, if i % 3 == 0 { "same words here" } else { "other" }, &[["x", "y", "z"][i % 3]]);
            it.published_at = at_hours(i as i64);
            match flag {
                1 => it.hidden = true,
                2 => it.expires_at = Some(at_hours(40)),
                _ => {}
            }
            let index = f.upsert(it);
            if flag == 3 {
                f.live.delete_item(index);
            }
            if (1..=3).contains(&flag) {
                forbidden_items.insert(id);
            }
        }
        for &(u, i, kind, h) in &events {
            let kind = ["click", "dislike", "impression"][kind as usize];
            f.event(&format!("user-{u}"), &format!("item-{i}"), kind, at_hours(h));
        }
        let user = f.live.user_index("user-0");
        let history = user.map_or_else(Vec::new, |u| f.live.user_history(u));
        let seen: HashSet<u32> = user.map_or_else(HashSet::new, |u| f.live.interacted(u).collect());
        let excluded: HashSet<u32> = exclude.iter().filter_map(|&i| f.items.get(&format!("item-{i}"))).collect();
        let candidates: Vec<u32> = candidates.iter().filter_map(|&i| f.items.get(&format!("item-{i}"))).collect();
        let pinned: Vec<(u32, usize)> = scene.rerank.pinned.iter()
            .filter_map(|p| Some((f.items.get(&p.item)?, p.position)))
            .collect();
        let mut served: Vec<u32> = Vec::new();
        for _page in 0..3 {
            let mut req = request(n, now);
            req.history = &history;
            req.blocked = seen.iter().chain(&excluded).chain(&served).copied().collect();
            req.candidates = &candidates;
            req.pinned = pinned.clone();
            let out = f.run(&scene, &req);
            prop_assert!(out.len() <= n);
            let mut page = HashSet::new();
            for r in &out {
                let id = f.live.item_id(r.item).unwrap().to_owned();
                prop_assert!(!forbidden_items.contains(&id), "{id} is hidden, expired or deleted");
                prop_assert!(!seen.contains(&r.item), "{id} was seen");
                prop_assert!(!excluded.contains(&r.item), "{id} was excluded");
                prop_assert!(!served.contains(&r.item), "{id} repeats an earlier page");
                prop_assert!(page.insert(r.item), "{id} twice in one page");
            }
            served.extend(out.iter().map(|r| r.item));
        }
    }
}
