//! Service configuration: every setting with its default.
//!
//! The `tephra` binary layers it (defaults, then a TOML file, then `TEPHRA_*`
//! environment variables, then flags); this module only defines the shape, the
//! defaults and the checks, so that every way of starting a server agrees.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tephra_core::{EventTypes, ValidationError};
use tephra_models::registry::{default_serving, ModelSpec};
use tephra_models::retrieval::RetrievalConfig;
use tephra_models::HistoryWeighting;

use crate::model_manager::AUTO_MODEL;
use crate::pipeline::scene::{Scene, DEFAULT_SCENE};

/// The whole configuration of one Tephra process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the embedded store (created if missing).
    pub data_dir: PathBuf,
    /// HTTP server settings.
    pub server: ServerSettings,
    /// Which event types exist and what they mean.
    pub events: EventTypes,
    /// Recommendation settings.
    pub recommend: RecommendSettings,
    /// Model training and promotion.
    pub training: TrainingSettings,
    /// How factor models' items are retrieved: exact scoring below
    /// `exact_below` items, an approximate (IVF) index above.
    pub retrieval: RetrievalConfig,
    /// Named placements, each a recall → rank → rerank pipeline; `home` and
    /// `item_page` exist by default.
    pub scenes: BTreeMap<String, Scene>,
    /// Attribution and analytics.
    pub analytics: AnalyticsSettings,
}

/// Attribution and analytics settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsSettings {
    /// Recommendation responses remembered for attributing later events to
    /// them (about 130 bytes plus 8 per answered item each).
    pub max_tracked_requests: usize,
    /// How long after its last page a response can still be attributed, in hours.
    pub attribution_window_hours: f64,
    /// Event types that count as clicks (the numerator of CTR).
    pub click_types: Vec<String>,
    /// Event types that count as conversions; their value is the revenue.
    pub purchase_types: Vec<String>,
    /// Event types whose value is reading time in seconds.
    pub read_types: Vec<String>,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            max_tracked_requests: 500_000,
            attribution_window_hours: 24.0,
            click_types: vec!["click".to_owned()],
            purchase_types: vec!["purchase".to_owned()],
            read_types: vec!["read".to_owned()],
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            server: ServerSettings::default(),
            events: EventTypes::default(),
            recommend: RecommendSettings::default(),
            training: TrainingSettings::default(),
            retrieval: RetrievalConfig::default(),
            scenes: Scene::defaults(),
            analytics: AnalyticsSettings::default(),
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// When set, every `/v1` route requires `Authorization: Bearer <api_key>`.
    pub api_key: Option<String>,
    /// Largest accepted request body, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Most elements in one batch (items, users or events); 413 above.
    pub max_batch: usize,
    /// Requests taking longer are answered with 503.
    pub request_timeout_secs: u64,
    /// Events may name items the catalogue does not have yet; they are created as
    /// bare placeholders. When false, such events are refused with 404.
    pub create_unknown_items: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_key: None,
            max_body_bytes: 16 * 1024 * 1024,
            max_batch: 10_000,
            request_timeout_secs: 30,
            create_unknown_items: true,
        }
    }
}

/// Recommendation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecommendSettings {
    /// Half-life of trending counters, in hours.
    pub trending_half_life_hours: f64,
    /// Number of items answered when `n` is not given.
    pub default_n: usize,
    /// Largest accepted `n` (and `n + offset`).
    pub max_n: usize,
}

impl Default for RecommendSettings {
    fn default() -> Self {
        Self {
            trending_half_life_hours: 24.0,
            default_n: 10,
            max_n: 1000,
        }
    }
}

/// Model training settings: what is trained, when, and how it is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingSettings {
    /// Whether `serve` retrains in the background.
    pub enabled: bool,
    /// Retrain at least this often (seconds) when any positive event arrived.
    pub interval_secs: u64,
    /// Retrain as soon as this many positive events arrived since the last run.
    pub min_new_events: u64,
    /// The model to train and serve: `auto` (the default: EASE with a
    /// sequential term up to 15,000 items, iALS above), or a registry spec such
    /// as `seq_ease`, `ease:lambda=500`, `ials:factors=64`, `itemknn`, or JSON.
    pub model: String,
    /// Recency weighting of a user's history when scoring: the age, in events,
    /// at which an event's weight halves; 0 weighs every event alike.
    pub recency_half_life: f32,
    /// Share of each user's latest positive events held out to judge a candidate
    /// (the standard per-user temporal protocol uses 0.2).
    pub holdout_fraction: f64,
    /// Most users the holdout evaluation scores (each costs a pass over the
    /// catalogue); a larger user base is sampled evenly.
    pub holdout_users: usize,
}

impl Default for TrainingSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 3600,
            min_new_events: 1000,
            model: AUTO_MODEL.to_owned(),
            recency_half_life: match default_serving().weighting {
                HistoryWeighting::Recency { half_life } => half_life,
                HistoryWeighting::Plain => 0.0,
            },
            holdout_fraction: 0.2,
            holdout_users: 5000,
        }
    }
}

impl Config {
    /// Checks values that deserialization alone cannot, naming the setting to fix.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let bad =
            |field: &str, msg: &str| Err(ValidationError::field("invalid_config", field, msg));
        self.events.validate()?;
        if let Some(key) = &self.server.api_key {
            if key.len() < 16 {
                return bad(
                    "server.api_key",
                    "an API key must be at least 16 characters long",
                );
            }
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes", "must be at least 1024 bytes");
        }
        if self.server.max_batch == 0 {
            return bad("server.max_batch", "must be at least 1");
        }
        if self.server.request_timeout_secs == 0 {
            return bad("server.request_timeout_secs", "must be at least 1 second");
        }
        let hl = self.recommend.trending_half_life_hours;
        if !hl.is_finite() || hl <= 0.0 {
            return bad(
                "recommend.trending_half_life_hours",
                "must be a positive number of hours",
            );
        }
        let t = &self.training;
        if t.interval_secs == 0 {
            return bad("training.interval_secs", "must be at least 1 second");
        }
        if t.model.trim() != AUTO_MODEL {
            if let Err(e) = t.model.parse::<ModelSpec>() {
                return bad("training.model", &e.to_string());
            }
        }
        if t.holdout_users == 0 {
            return bad("training.holdout_users", "must be at least 1");
        }
        if let Err(message) = self.retrieval.validate() {
            return bad("retrieval", &message);
        }
        if !self.scenes.contains_key(DEFAULT_SCENE) {
            return bad(
                "scenes",
                "a scene named `home` must exist: requests without a scene use it",
            );
        }
        for (name, scene) in &self.scenes {
            if tephra_core::validate_id("scene", name).is_err() {
                return bad(
                    "scenes",
                    &format!("`{}` is not a valid scene name", name.escape_debug()),
                );
            }
            if let Err((field, message)) = scene.validate(&format!("scenes.{name}")) {
                return bad(&field, &message);
            }
        }
        if !t.recency_half_life.is_finite() || t.recency_half_life < 0.0 {
            return bad(
                "training.recency_half_life",
                "must be 0 (no recency weighting) or a positive number of events",
            );
        }
        if t.holdout_fraction.is_nan() || t.holdout_fraction <= 0.0 || t.holdout_fraction >= 1.0 {
            return bad("training.holdout_fraction", "must be between 0 and 1");
        }
        let a = &self.analytics;
        if a.max_tracked_requests == 0 {
            return bad("analytics.max_tracked_requests", "must be at least 1");
        }
        if !a.attribution_window_hours.is_finite() || a.attribution_window_hours <= 0.0 {
            return bad(
                "analytics.attribution_window_hours",
                "must be a positive number of hours",
            );
        }
        // A list left at its default may name types the configuration removed
        // (they just never match); a list someone wrote must name real types.
        let defaults = AnalyticsSettings::default();
        for (field, types, default) in [
            (
                "analytics.click_types",
                &a.click_types,
                &defaults.click_types,
            ),
            (
                "analytics.purchase_types",
                &a.purchase_types,
                &defaults.purchase_types,
            ),
            ("analytics.read_types", &a.read_types, &defaults.read_types),
        ] {
            if types == default {
                continue;
            }
            if let Some(t) = types.iter().find(|t| self.events.classify(t).is_none()) {
                return bad(
                    field,
                    &format!(
                        "`{}` is not a configured event type (see [events])",
                        t.escape_debug()
                    ),
                );
            }
        }
        if self.recommend.default_n == 0 || self.recommend.default_n > self.recommend.max_n {
            return bad(
                "recommend.default_n",
                "must be between 1 and recommend.max_n",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn toml_overrides_and_unknown_keys() {
        let c: Config =
            toml_like(r#"{"server":{"listen":"0.0.0.0:9000"},"recommend":{"default_n":5}}"#);
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.recommend.default_n, 5);
        assert_eq!(c.recommend.max_n, 1000);
        assert!(serde_json::from_str::<Config>(r#"{"sever":{}}"#).is_err());
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut c = Config::default();
        c.recommend.trending_half_life_hours = 0.0;
        assert_eq!(
            c.validate().unwrap_err().field.as_deref(),
            Some("recommend.trending_half_life_hours")
        );
        let mut c = Config::default();
        c.server.api_key = Some("short".into());
        assert_eq!(
            c.validate().unwrap_err().field.as_deref(),
            Some("server.api_key")
        );
    }

    #[test]
    fn analytics_types_must_be_configured_unless_left_at_their_defaults() {
        let mut c = Config::default();
        c.events.positive = vec!["click".into()];
        c.validate().unwrap();
        c.analytics.purchase_types = vec!["order".into()];
        assert_eq!(
            c.validate().unwrap_err().field.as_deref(),
            Some("analytics.purchase_types")
        );
        c.events.positive.push("order".into());
        c.validate().unwrap();
    }

    fn toml_like(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }
}
