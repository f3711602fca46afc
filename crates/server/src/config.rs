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
    /// How the embedded store acknowledges writes.
    pub storage: StorageSettings,
    /// Cluster mode: PostgreSQL as the store and Redis between the nodes.
    pub cluster: ClusterSettings,
}

/// Cluster mode: several stateless nodes over PostgreSQL and Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// `postgres://…`: keep every tenant's data in PostgreSQL instead of the
    /// data directory. Unset (the default): the embedded store.
    pub store: Option<String>,
    /// `redis://…`: what the nodes share in real time (changes, model
    /// announcements, rate limits). Required with `store`.
    pub cache: Option<String>,
    /// Prefix of every Redis key and channel, so that clusters can share a Redis.
    pub namespace: String,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            store: None,
            cache: None,
            namespace: "tephra".to_owned(),
        }
    }
}

/// When a write is acknowledged, and so what a crash can take away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityMode {
    /// Acknowledged once fsynced; concurrent writes share one fsync (group
    /// commit). Nothing acknowledged is lost, even on power loss.
    Immediate,
    /// Acknowledged once committed in memory; fsynced at least every
    /// `sync_interval_ms`. A crash loses at most about that much.
    Periodic,
}

/// Storage settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// `immediate` (the default) or `periodic`.
    pub durability: DurabilityMode,
    /// In `periodic` mode, the longest time an acknowledged write may wait
    /// for its fsync, in milliseconds.
    pub sync_interval_ms: u64,
    /// Page cache of each tenant's store file, in MiB. Requests are answered
    /// from memory, so the cache mostly serves writes and event reads.
    pub cache_mib: usize,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            durability: DurabilityMode::Immediate,
            sync_interval_ms: 100,
            cache_mib: 64,
        }
    }
}

impl StorageSettings {
    /// The embedded store's options for these settings.
    pub fn store_options(&self) -> tephra_store::StoreOptions {
        tephra_store::StoreOptions {
            durability: match self.durability {
                DurabilityMode::Immediate => tephra_store::Durability::Immediate,
                DurabilityMode::Periodic => tephra_store::Durability::Periodic {
                    interval: std::time::Duration::from_millis(self.sync_interval_ms),
                },
            },
            faults: None,
            cache_bytes: self.cache_mib.max(1) * 1024 * 1024,
        }
    }
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
            storage: StorageSettings::default(),
            cluster: ClusterSettings::default(),
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// A key with every scope on the `default` tenant: the one-tenant setup.
    /// When it or `admin_key` is set, every `/v1` route requires a key.
    pub api_key: Option<String>,
    /// The operator's key: required by `/admin` (tenants and their keys), and
    /// accepted on `/v1` routes with every scope for the tenant named by the
    /// `X-Tephra-Tenant` header (`default` without it).
    pub admin_key: Option<String>,
    /// Default rate limit of each key, in requests per second (0: none); a key
    /// may carry its own.
    pub rate_limit_per_sec: f64,
    /// Default burst of each key's rate limit: requests allowed at once after
    /// a quiet period.
    pub rate_limit_burst: u32,
    /// Most CPU-heavy requests (recommendations, similar items, training) run
    /// at once; more wait up to `admission_wait_ms`, then get 503.
    pub max_concurrent_heavy: usize,
    /// How long a heavy request may wait for a slot before 503, in milliseconds.
    pub admission_wait_ms: u64,
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
            admin_key: None,
            rate_limit_per_sec: 0.0,
            rate_limit_burst: 100,
            max_concurrent_heavy: 64,
            admission_wait_ms: 200,
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

/// Sections a tenant may set for itself; the rest (data directory, server
/// settings) belong to the whole process.
pub const TENANT_SECTIONS: [&str; 6] = [
    "events",
    "recommend",
    "training",
    "retrieval",
    "scenes",
    "analytics",
];

impl Config {
    /// This configuration with a tenant's own settings merged over it (objects
    /// key by key, anything else replaced), checked like a configuration file.
    /// Errors name the field under `settings`, e.g. `settings.recommend.default_n`.
    pub fn for_tenant(&self, settings: &serde_json::Value) -> Result<Config, ValidationError> {
        let invalid = |field: String, message: String| {
            ValidationError::field("invalid_settings", field, message)
        };
        let overrides = match settings {
            serde_json::Value::Null => return Ok(self.clone()),
            serde_json::Value::Object(map) => map,
            _ => {
                return Err(invalid(
                    "settings".into(),
                    "must be an object of configuration sections".into(),
                ))
            }
        };
        if let Some(key) = overrides
            .keys()
            .find(|k| !TENANT_SECTIONS.contains(&k.as_str()))
        {
            return Err(invalid(
                format!("settings.{key}"),
                format!(
                    "`{}` cannot be set per tenant; a tenant may set {}",
                    key.escape_debug(),
                    TENANT_SECTIONS.join(", ")
                ),
            ));
        }
        let mut value =
            serde_json::to_value(self).map_err(|e| invalid("settings".into(), e.to_string()))?;
        crate::experiments::merge(&mut value, overrides);
        let config: Config = serde_path_to_error::deserialize(value)
            .map_err(|e| invalid(format!("settings.{}", e.path()), e.inner().to_string()))?;
        config.validate().map_err(|mut e| {
            e.code = "invalid_settings";
            e.field = Some(format!("settings.{}", e.field.as_deref().unwrap_or("")));
            e
        })?;
        Ok(config)
    }

    /// Checks values that deserialization alone cannot, naming the setting to fix.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let bad =
            |field: &str, msg: &str| Err(ValidationError::field("invalid_config", field, msg));
        self.events.validate()?;
        for (field, key) in [
            ("server.api_key", &self.server.api_key),
            ("server.admin_key", &self.server.admin_key),
        ] {
            if key.as_ref().is_some_and(|k| k.len() < 16) {
                return bad(field, "a key must be at least 16 characters long");
            }
        }
        if self.server.api_key.is_some() && self.server.api_key == self.server.admin_key {
            return bad(
                "server.admin_key",
                "must differ from server.api_key: the admin key manages every tenant",
            );
        }
        let rate = self.server.rate_limit_per_sec;
        if !rate.is_finite() || rate < 0.0 {
            return bad(
                "server.rate_limit_per_sec",
                "must be 0 (no limit) or a positive number of requests per second",
            );
        }
        let c = &self.cluster;
        if let Some(url) = &c.store {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return bad(
                    "cluster.store",
                    "must be a PostgreSQL URL (postgres://user@host:5432/database)",
                );
            }
            if c.cache.is_none() {
                return bad(
                    "cluster.cache",
                    "set it (redis://host:6379) with cluster.store: the nodes share their changes through Redis",
                );
            }
        }
        if let Some(url) = &c.cache {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return bad("cluster.cache", "must be a Redis URL (redis://host:6379)");
            }
            if c.store.is_none() {
                return bad(
                    "cluster.store",
                    "set it (postgres://…) with cluster.cache: cluster nodes keep their data in PostgreSQL",
                );
            }
        }
        if c.namespace.is_empty() || c.namespace.contains(char::is_whitespace) {
            return bad("cluster.namespace", "must be a non-empty word");
        }
        if self.storage.sync_interval_ms == 0 {
            return bad(
                "storage.sync_interval_ms",
                "must be at least 1 millisecond; use durability = \"immediate\" to fsync every write",
            );
        }
        if self.server.max_concurrent_heavy == 0 {
            return bad("server.max_concurrent_heavy", "must be at least 1");
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
    #[test]
    fn cluster_settings_come_as_a_pair_of_urls() {
        let field = |f: &dyn Fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().err().and_then(|e| e.field)
        };
        assert_eq!(field(&|_| {}), None);
        assert_eq!(
            field(&|c| c.cluster.store = Some("postgres://db/x".into())),
            Some("cluster.cache".into())
        );
        assert_eq!(
            field(&|c| c.cluster.cache = Some("redis://r".into())),
            Some("cluster.store".into())
        );
        assert_eq!(
            field(&|c| {
                c.cluster.store = Some("mysql://db".into());
                c.cluster.cache = Some("redis://r".into());
            }),
            Some("cluster.store".into())
        );
        assert_eq!(
            field(&|c| {
                c.cluster.store = Some("postgresql://db/x".into());
                c.cluster.cache = Some("redis://r".into());
            }),
            None
        );
        assert_eq!(
            field(&|c| c.server.admin_key = Some("short".into())),
            Some("server.admin_key".into())
        );
        assert_eq!(
            field(&|c| {
                c.server.api_key = Some("same-key-0123456789".into());
                c.server.admin_key = Some("same-key-0123456789".into());
            }),
            Some("server.admin_key".into())
        );
    }

    #[test]
    fn tenant_settings_merge_over_the_server_and_name_bad_fields() {
        let base = Config::default();
        let small = base
            .for_tenant(&serde_json::json!({"recommend": {"default_n": 3}}))
            .unwrap();
        assert_eq!(small.recommend.default_n, 3);
        assert_eq!(
            small.recommend.max_n, base.recommend.max_n,
            "the rest stays"
        );
        let err = base
            .for_tenant(&serde_json::json!({"data_dir": "/elsewhere"}))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("settings.data_dir"));
        let err = base
            .for_tenant(&serde_json::json!({"recommend": {"max_n": 0}}))
            .unwrap_err();
        assert_eq!(err.code, "invalid_settings");
    }

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
