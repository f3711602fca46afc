//! Scenes: named placements (`home`, `item_page`, …), each a pipeline of recall
//! sources, a ranker and rerank rules, configured in the config file.
//!
//! ```toml
//! [scenes.home]
//! freshness_weight = 0.05
//! freshness_half_life_hours = 24
//! recall = [
//!   { source = "collaborative", quota = 200, weight = 1.0 },
//!   { source = "trending", quota = 30, weight = 0.1 },
//! ]
//! [scenes.home.rerank]
//! max_per_category = 3
//! mmr_lambda = 0.8
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The scene a request without `scene` uses.
pub const DEFAULT_SCENE: &str = "home";
/// The scene `GET /v1/items/{id}/similar` uses by default.
pub const SIMILAR_SCENE: &str = "item_page";
/// The default impression fatigue of the built-in scenes: off. (0.7 would make
/// an item shown twice without a click score half.)
pub const DEFAULT_IMPRESSION_DECAY: f64 = 1.0;
/// Most candidates one recall source may return.
pub const MAX_QUOTA: usize = 10_000;

/// Where candidates come from. Each source scores its candidates on its own
/// scale; the ranker normalizes every source to `0..=1` before blending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The promoted model scoring the user's current history (iALS folds the
    /// user in at request time; EASE scores the history directly).
    Collaborative,
    /// The model's neighbours of the user's most recent items (or of the
    /// request's context item), weighted by recency.
    ItemToItem,
    /// Items similar by text, tags and categories (BM25) to the user's most
    /// recent items or the context item: the only signal a new item has.
    Content,
    /// Most positive events in a time-decayed window.
    Trending,
    /// Most recently published.
    Latest,
    /// Most positive events overall.
    Popular,
    /// The items the caller supplied in `candidates`, in the caller's order.
    Candidates,
}

impl SourceKind {
    /// Every source, in the order of [`SourceKind::index`].
    pub const ALL: [SourceKind; 7] = [
        SourceKind::Collaborative,
        SourceKind::ItemToItem,
        SourceKind::Content,
        SourceKind::Trending,
        SourceKind::Latest,
        SourceKind::Popular,
        SourceKind::Candidates,
    ];

    /// A dense index, for per-source arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in configuration and responses.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Collaborative => "collaborative",
            SourceKind::ItemToItem => "item_to_item",
            SourceKind::Content => "content",
            SourceKind::Trending => "trending",
            SourceKind::Latest => "latest",
            SourceKind::Popular => "popular",
            SourceKind::Candidates => "candidates",
        }
    }
}

/// Number of recall sources.
pub const N_SOURCES: usize = SourceKind::ALL.len();

/// One recall source of a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecallSpec {
    /// Which source.
    pub source: SourceKind,
    /// How many candidates it contributes at most.
    #[serde(default = "default_quota")]
    pub quota: usize,
    /// Its weight in the blend (scores are normalized to `0..=1` first).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// For `item_to_item` and `content`: how many of the user's most recent
    /// items seed it (a request's context item seeds it alone).
    #[serde(default = "default_recent")]
    pub recent: usize,
}

fn default_quota() -> usize {
    100
}

fn default_weight() -> f64 {
    1.0
}

fn default_recent() -> usize {
    3
}

impl RecallSpec {
    fn new(source: SourceKind, quota: usize, weight: f64) -> Self {
        Self {
            source,
            quota,
            weight,
            recent: default_recent(),
        }
    }
}

/// An item shown at a fixed position (0 = first) whenever it may be shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    /// Item id.
    pub item: String,
    /// Position in the list, counted from 0.
    pub position: usize,
}

/// What happens to the ranked list before it is answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RerankSettings {
    /// At most this many items per category in one response; 0 = no cap.
    pub max_per_category: usize,
    /// Maximal marginal relevance: 1 ranks by score alone; lower values trade
    /// score for items whose categories differ from those already placed.
    pub mmr_lambda: f64,
    /// Share of the list given to fresh or trending items the user would not
    /// otherwise see (0 = none).
    pub exploration: f64,
    /// Two items whose content similarity (cosine of their BM25 term vectors)
    /// is at least this are near-duplicates; only the better one stays. 0 = off.
    pub near_duplicate_threshold: f64,
    /// Items placed at fixed positions.
    pub pinned: Vec<Pinned>,
}

impl Default for RerankSettings {
    fn default() -> Self {
        Self {
            max_per_category: 0,
            mmr_lambda: 1.0,
            exploration: 0.0,
            near_duplicate_threshold: 0.95,
            pinned: Vec::new(),
        }
    }
}

/// A named placement: recall sources, the blend, and rerank rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scene {
    /// The recall sources, each with its quota and weight.
    pub recall: Vec<RecallSpec>,
    /// Weight of freshness (`2^(-age / half-life)` of the publish time) in the blend.
    pub freshness_weight: f64,
    /// Half-life of freshness, in hours.
    pub freshness_half_life_hours: f64,
    /// Impression fatigue: each earlier impression of an item to this user
    /// (without a click, which would block the item) multiplies its score by
    /// this factor, so a feed stops repeating what the user keeps skipping.
    /// 1 = off.
    pub impression_decay: f64,
    /// Rules applied to the ranked list.
    pub rerank: RerankSettings,
}

impl Default for Scene {
    /// The `home` feed.
    fn default() -> Self {
        Self::home()
    }
}

impl Scene {
    /// A personalized feed: the model leads; item-to-item and content neighbours
    /// of the latest items, trending, latest and popular items join with small
    /// weights (they decide among items the model rates alike, and fill the list
    /// for users the model knows nothing about).
    pub fn home() -> Self {
        Self {
            recall: vec![
                RecallSpec::new(SourceKind::Collaborative, 200, 1.0),
                RecallSpec::new(SourceKind::ItemToItem, 50, 0.2),
                RecallSpec {
                    recent: 2,
                    ..RecallSpec::new(SourceKind::Content, 20, 0.05)
                },
                RecallSpec::new(SourceKind::Trending, 30, 0.1),
                RecallSpec::new(SourceKind::Latest, 10, 0.02),
                RecallSpec::new(SourceKind::Popular, 30, 0.05),
                RecallSpec::new(SourceKind::Candidates, 1000, 1.0),
            ],
            freshness_weight: 0.0,
            freshness_half_life_hours: 24.0,
            impression_decay: DEFAULT_IMPRESSION_DECAY,
            rerank: RerankSettings::default(),
        }
    }

    /// Items beside an item: the model's neighbours and content neighbours of
    /// the context item, then popular items.
    pub fn item_page() -> Self {
        Self {
            recall: vec![
                RecallSpec::new(SourceKind::ItemToItem, 100, 1.0),
                RecallSpec::new(SourceKind::Content, 100, 1.0),
                RecallSpec::new(SourceKind::Popular, 30, 0.05),
                RecallSpec::new(SourceKind::Candidates, 1000, 1.0),
            ],
            freshness_weight: 0.0,
            freshness_half_life_hours: 24.0,
            impression_decay: DEFAULT_IMPRESSION_DECAY,
            rerank: RerankSettings::default(),
        }
    }

    /// The scenes a fresh configuration has.
    pub fn defaults() -> BTreeMap<String, Scene> {
        BTreeMap::from([
            (DEFAULT_SCENE.to_owned(), Scene::home()),
            (SIMILAR_SCENE.to_owned(), Scene::item_page()),
        ])
    }

    /// Checks the values deserialization cannot; the error names the setting
    /// below `prefix` (e.g. `scenes.home`).
    pub fn validate(&self, prefix: &str) -> Result<(), (String, String)> {
        let bad = |field: String, msg: &str| Err((field, msg.to_owned()));
        for (i, spec) in self.recall.iter().enumerate() {
            let field = |name: &str| format!("{prefix}.recall[{i}].{name}");
            if spec.quota > MAX_QUOTA {
                return bad(field("quota"), &format!("must be at most {MAX_QUOTA}"));
            }
            if !spec.weight.is_finite() || spec.weight < 0.0 {
                return bad(field("weight"), "must be a number ≥ 0");
            }
            if spec.recent > 100 {
                return bad(field("recent"), "must be at most 100");
            }
        }
        if !self.freshness_weight.is_finite() || self.freshness_weight < 0.0 {
            return bad(format!("{prefix}.freshness_weight"), "must be a number ≥ 0");
        }
        let hl = self.freshness_half_life_hours;
        if !hl.is_finite() || hl <= 0.0 {
            return bad(
                format!("{prefix}.freshness_half_life_hours"),
                "must be a positive number of hours",
            );
        }
        if !(self.impression_decay > 0.0 && self.impression_decay <= 1.0) {
            return bad(
                format!("{prefix}.impression_decay"),
                "must be above 0 and at most 1 (1 = off)",
            );
        }
        let r = &self.rerank;
        if !(0.0..=1.0).contains(&r.mmr_lambda) {
            return bad(
                format!("{prefix}.rerank.mmr_lambda"),
                "must be between 0 and 1",
            );
        }
        if !(0.0..=0.5).contains(&r.exploration) {
            return bad(
                format!("{prefix}.rerank.exploration"),
                "must be between 0 and 0.5",
            );
        }
        if !(0.0..=1.0).contains(&r.near_duplicate_threshold) {
            return bad(
                format!("{prefix}.rerank.near_duplicate_threshold"),
                "must be between 0 (off) and 1",
            );
        }
        for (i, pin) in r.pinned.iter().enumerate() {
            if let Err(e) = tephra_core::validate_id("item", &pin.item) {
                return bad(format!("{prefix}.rerank.pinned[{i}].item"), &e.message);
            }
        }
        Ok(())
    }

    /// The spec of `source`, if the scene uses it.
    pub fn spec(&self, source: SourceKind) -> Option<&RecallSpec> {
        self.recall.iter().find(|s| s.source == source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_parse_from_toml() {
        for (name, scene) in Scene::defaults() {
            scene.validate(&format!("scenes.{name}")).unwrap();
        }
        let scene: Scene = toml::from_str(
            r#"
            freshness_weight = 0.2
            recall = [{ source = "trending", quota = 5 }, { source = "content", weight = 0.5, recent = 1 }]
            [rerank]
            max_per_category = 2
            pinned = [{ item = "promo", position = 0 }]
            "#,
        )
        .unwrap();
        assert_eq!(scene.recall[0].quota, 5);
        assert_eq!(scene.recall[0].weight, 1.0);
        assert_eq!(scene.recall[1].recent, 1);
        assert_eq!(scene.rerank.max_per_category, 2);
        assert_eq!(scene.rerank.mmr_lambda, 1.0);
        assert!(toml::from_str::<Scene>(r#"recall = [{ source = "magic" }]"#).is_err());
        assert!(toml::from_str::<Scene>("colour = 1").is_err());
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut scene = Scene::home();
        scene.recall[1].weight = f64::NAN;
        assert_eq!(
            scene.validate("scenes.home").unwrap_err().0,
            "scenes.home.recall[1].weight"
        );
        let mut scene = Scene::home();
        scene.rerank.mmr_lambda = 1.5;
        assert_eq!(
            scene.validate("scenes.x").unwrap_err().0,
            "scenes.x.rerank.mmr_lambda"
        );
        let mut scene = Scene::home();
        scene.rerank.pinned.push(Pinned {
            item: String::new(),
            position: 0,
        });
        assert_eq!(
            scene.validate("scenes.x").unwrap_err().0,
            "scenes.x.rerank.pinned[0].item"
        );
    }
}
