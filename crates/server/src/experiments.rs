//! A/B experiments: variants of a scene's pipeline, users assigned to them by
//! a stable hash, and the statistics that say which variant is better.
//!
//! An experiment names a scene and two or more variants, each with a weight and
//! pipeline overrides (a JSON object merged over the scene's settings). While it
//! runs, every recommendation of that scene is answered with the variant the
//! user hashes to, and the response is remembered so that impressions, clicks,
//! reads and purchases naming its `request_id` are attributed to the variant
//! (see [`crate::analytics`]). The first variant is the control.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tephra_core::Timestamp;
use tephra_eval::stats::{self, Comparison, Estimate, SrmCheck};
use utoipa::ToSchema;

use crate::analytics::{variant_figures, VariantFigures, VariantUnits};
use crate::pipeline::scene::Scene;

/// Most variants one experiment may have.
pub const MAX_VARIANTS: usize = 10;

/// One variant as the client defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Its name, unique within the experiment.
    pub name: String,
    /// Relative share of users (any positive number; shares are weight / sum).
    #[serde(default = "one")]
    pub weight: f64,
    /// Scene settings replacing the scene's own (objects merge key by key,
    /// other values replace), e.g. `{"recall": [{"source": "popular"}]}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub overrides: Map<String, Value>,
}

fn one() -> f64 {
    1.0
}

/// The body of `POST /v1/experiments`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExperiment {
    /// Unique name (an id: no spaces or control characters).
    pub name: String,
    /// The scene whose recommendations it splits.
    pub scene: String,
    /// Two or more variants; the first is the control.
    pub variants: Vec<VariantSpec>,
    /// Start at once (default: created as a draft, started with `/start`).
    #[serde(default)]
    pub start: bool,
}

/// Where an experiment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Defined, not yet splitting traffic.
    Draft,
    /// Splitting traffic.
    Running,
    /// Ended; its results stay readable.
    Stopped,
}

/// An experiment as stored and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Experiment {
    /// Unique name.
    pub name: String,
    /// The scene it splits.
    pub scene: String,
    /// Draft, running or stopped.
    pub status: Status,
    /// The first variant's name.
    pub control: String,
    /// The variants, control first.
    pub variants: Vec<VariantSpec>,
    /// When it was defined.
    pub created_at: Timestamp,
    /// When it last started.
    pub started_at: Option<Timestamp>,
    /// When it stopped.
    pub stopped_at: Option<Timestamp>,
}

/// Why an experiment request was refused: the field at fault and what to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// Field path, e.g. `variants[1].overrides.recall[0].quota`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Merges `overrides` over `base`: objects key by key, anything else replaced.
pub(crate) fn merge(base: &mut Value, overrides: &Map<String, Value>) {
    let Value::Object(target) = base else {
        *base = Value::Object(overrides.clone());
        return;
    };
    for (key, value) in overrides {
        match (target.get_mut(key), value) {
            (Some(existing @ Value::Object(_)), Value::Object(more)) => merge(existing, more),
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The scene a variant ranks with: `base` with the variant's overrides.
pub fn variant_scene(base: &Scene, variant: &VariantSpec, index: usize) -> Result<Scene, Invalid> {
    let prefix = format!("variants[{index}].overrides");
    let mut value = serde_json::to_value(base).map_err(|e| invalid(&prefix, e.to_string()))?;
    merge(&mut value, &variant.overrides);
    let scene: Scene = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            prefix.clone()
        } else {
            format!("{prefix}.{path}")
        };
        invalid(field, e.inner().to_string())
    })?;
    scene
        .validate(&prefix)
        .map_err(|(field, message)| invalid(field, message))?;
    Ok(scene)
}

/// Longest experiment or variant name.
pub const MAX_NAME_LEN: usize = 64;

/// Experiment and variant names appear in URLs, dashboards and analytics
/// keys (`experiment/variant`), so they are kept plain: ASCII letters,
/// digits, `-`, `_` and `.`.
fn check_name(name: &str) -> Result<(), String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    // A leading dot would allow `.` and `..`, which clients fold out of URLs.
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.starts_with('.')
        || !name.chars().all(plain)
    {
        return Err(format!(
            "`{}` is not a valid name: use 1 to {MAX_NAME_LEN} ASCII letters, digits, `-`, `_` or `.`, not starting with `.`",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// Every variant's scene, in variant order: `base` with each variant's
/// overrides. Shared by defining, starting and loading an experiment.
pub fn variant_scenes(base: &Scene, variants: &[VariantSpec]) -> Result<Vec<Scene>, Invalid> {
    variants
        .iter()
        .enumerate()
        .map(|(i, v)| variant_scene(base, v, i))
        .collect()
}

impl NewExperiment {
    /// Checks the definition against the configured scenes and builds the
    /// experiment (a draft, or running when `start` is set).
    pub fn build(
        self,
        scenes: &BTreeMap<String, Scene>,
        now: Timestamp,
    ) -> Result<(Experiment, Vec<Scene>), Invalid> {
        check_name(&self.name).map_err(|m| invalid("name", m))?;
        let base = scenes.get(&self.scene).ok_or_else(|| {
            invalid(
                "scene",
                format!(
                    "no scene is named `{}`; configured scenes: {}",
                    self.scene.escape_debug(),
                    scenes.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        if self.variants.len() < 2 || self.variants.len() > MAX_VARIANTS {
            return Err(invalid(
                "variants",
                format!(
                    "an experiment needs 2 to {MAX_VARIANTS} variants (the first is the control)"
                ),
            ));
        }
        for (i, v) in self.variants.iter().enumerate() {
            check_name(&v.name).map_err(|m| invalid(format!("variants[{i}].name"), m))?;
            if self.variants[..i].iter().any(|w| w.name == v.name) {
                return Err(invalid(
                    format!("variants[{i}].name"),
                    format!("variant `{}` is named twice", v.name),
                ));
            }
            if !v.weight.is_finite() || v.weight <= 0.0 || v.weight > 1e6 {
                return Err(invalid(
                    format!("variants[{i}].weight"),
                    "weight must be a positive number (up to 1e6)",
                ));
            }
        }
        let resolved = variant_scenes(base, &self.variants)?;
        let experiment = Experiment {
            control: self.variants[0].name.clone(),
            name: self.name,
            scene: self.scene,
            status: if self.start {
                Status::Running
            } else {
                Status::Draft
            },
            variants: self.variants,
            created_at: now,
            started_at: self.start.then_some(now),
            stopped_at: None,
        };
        Ok((experiment, resolved))
    }
}

/// A stable 64-bit hash of `experiment` and `unit`: FNV-1a, then the SplitMix
/// finalizer to spread the bits. It never changes between versions or
/// processes, so a user keeps their variant across restarts and nodes.
pub fn assignment_hash(experiment: &str, unit: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in experiment
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(unit.as_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The variant (index) that `unit` is assigned to under these weights.
pub fn assign(experiment: &str, unit: &str, weights: &[f64]) -> usize {
    let u = (assignment_hash(experiment, unit) >> 11) as f64 / (1u64 << 53) as f64;
    let total: f64 = weights.iter().sum();
    let mut edge = 0.0;
    for (i, w) in weights.iter().enumerate() {
        edge += w / total;
        if u < edge {
            return i;
        }
    }
    weights.len() - 1
}

/// A defined experiment with its variants' scenes resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The definition.
    pub experiment: Experiment,
    /// Each variant's scene, in variant order.
    pub scenes: Vec<Scene>,
}

/// The arm a request is answered with.
#[derive(Debug, Clone)]
pub struct Arm {
    /// The experiment.
    pub experiment: String,
    /// The variant's name.
    pub variant: String,
    /// The scene to rank with.
    pub scene: Scene,
}

/// Every experiment of the server, in memory (the store keeps the definitions).
#[derive(Default)]
pub struct Experiments {
    by_name: RwLock<BTreeMap<String, Arc<Loaded>>>,
    /// Held by a change (create, start, stop, delete) from its checks to its
    /// store write, so that two changes cannot both pass the same check.
    pub edits: tokio::sync::Mutex<()>,
}

impl Experiments {
    /// Replaces every experiment (another node changed them).
    pub fn replace_all(&self, loaded: Vec<Loaded>) {
        let mut by_name = self.by_name.write();
        by_name.clear();
        for l in loaded {
            by_name.insert(l.experiment.name.clone(), Arc::new(l));
        }
    }

    /// Puts (or replaces) an experiment.
    pub fn insert(&self, loaded: Loaded) {
        self.by_name
            .write()
            .insert(loaded.experiment.name.clone(), Arc::new(loaded));
    }

    /// Removes an experiment.
    pub fn remove(&self, name: &str) -> bool {
        self.by_name.write().remove(name).is_some()
    }

    /// The experiment `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Loaded>> {
        self.by_name.read().get(name).cloned()
    }

    /// Every experiment, by name.
    pub fn all(&self) -> Vec<Arc<Loaded>> {
        self.by_name.read().values().cloned().collect()
    }

    /// The running experiment on `scene`, other than `except`.
    pub fn running_on(&self, scene: &str, except: &str) -> Option<Arc<Loaded>> {
        self.by_name
            .read()
            .values()
            .find(|l| {
                l.experiment.status == Status::Running
                    && l.experiment.scene == scene
                    && l.experiment.name != except
            })
            .cloned()
    }

    /// The arm that the user `unit` gets on `scene`, if an experiment runs
    /// there. Only requests for a user take part: results are computed over
    /// users, so each user must see one variant only.
    pub fn arm(&self, scene: &str, unit: &str) -> Option<Arm> {
        let loaded = self.running_on(scene, "")?;
        let weights: Vec<f64> = loaded
            .experiment
            .variants
            .iter()
            .map(|v| v.weight)
            .collect();
        let i = assign(&loaded.experiment.name, unit, &weights);
        Some(Arm {
            experiment: loaded.experiment.name.clone(),
            variant: loaded.experiment.variants[i].name.clone(),
            scene: loaded.scenes[i].clone(),
        })
    }
}

/// One variant's results.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VariantResult {
    /// Variant name.
    pub name: String,
    /// Configured share of users (weight / sum of weights).
    pub weight: f64,
    /// Figures and intervals.
    #[serde(flatten)]
    pub figures: VariantFigures,
    /// Differences to the control with p-values (null for the control).
    pub vs_control: Option<VsControl>,
    /// CTR of this variant divided by the control's, with a 95% interval
    /// (null for the control or without data).
    #[schema(value_type = Option<Object>)]
    pub ctr_ratio: Option<Estimate>,
}

/// Each metric's difference to the control.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VsControl {
    /// CTR difference.
    #[schema(value_type = Option<Object>)]
    pub ctr: Option<Comparison>,
    /// Conversion difference.
    #[schema(value_type = Option<Object>)]
    pub conversion: Option<Comparison>,
    /// Revenue-per-user difference.
    #[schema(value_type = Option<Object>)]
    pub revenue_per_user: Option<Comparison>,
    /// Dwell difference.
    #[schema(value_type = Option<Object>)]
    pub dwell_seconds: Option<Comparison>,
}

/// The answer of `GET /v1/experiments/{name}/results`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Results {
    /// Experiment name.
    pub experiment: String,
    /// Its status.
    pub status: Status,
    /// The control variant.
    pub control: String,
    /// Per variant, control first.
    pub variants: Vec<VariantResult>,
    /// Sample-ratio-mismatch check of users per variant against the weights
    /// (null until users arrived).
    #[schema(value_type = Option<Object>)]
    pub srm: Option<SrmCheck>,
}

fn compare(a: Option<Estimate>, b: Option<Estimate>) -> Option<Comparison> {
    stats::compare(&a?, &b?)
}

/// Computes an experiment's results from its users' figures.
pub fn results(experiment: &Experiment, units: Option<&VariantUnits>) -> Results {
    let total: f64 = experiment.variants.iter().map(|v| v.weight).sum();
    let figures: Vec<VariantFigures> = experiment
        .variants
        .iter()
        .map(|v| variant_figures(units.and_then(|u| u.get(&v.name))))
        .collect();
    let control = &figures[0];
    let variants = experiment
        .variants
        .iter()
        .zip(&figures)
        .enumerate()
        .map(|(i, (v, f))| VariantResult {
            name: v.name.clone(),
            weight: v.weight / total,
            vs_control: (i > 0).then(|| VsControl {
                ctr: compare(control.ctr, f.ctr),
                conversion: compare(control.conversion, f.conversion),
                revenue_per_user: compare(control.revenue_per_user, f.revenue_per_user),
                dwell_seconds: compare(control.dwell_seconds, f.dwell_seconds),
            }),
            ctr_ratio: if i > 0 {
                control
                    .ctr
                    .zip(f.ctr)
                    .and_then(|(c, t)| stats::ratio_of(&c, &t))
            } else {
                None
            },
            figures: f.clone(),
        })
        .collect();
    let observed: Vec<u64> = figures.iter().map(|f| f.users).collect();
    let weights: Vec<f64> = experiment.variants.iter().map(|v| v.weight).collect();
    Results {
        experiment: experiment.name.clone(),
        status: experiment.status,
        control: experiment.control.clone(),
        variants,
        srm: stats::srm(&observed, &weights),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(body: Value) -> NewExperiment {
        serde_json::from_value(body).unwrap()
    }

    fn scenes() -> BTreeMap<String, Scene> {
        BTreeMap::from([("home".to_owned(), Scene::home())])
    }

    #[test]
    fn builds_variant_scenes_from_overrides() {
        let (e, scenes) = spec(json!({
            "name": "feed", "scene": "home", "start": true,
            "variants": [
                {"name": "popularity", "weight": 1, "overrides": {"recall": [{"source": "popular", "quota": 100}]}},
                {"name": "personalized", "overrides": {"rerank": {"max_per_category": 3}}}
            ]
        }))
        .build(&self::scenes(), Timestamp(5))
        .unwrap();
        assert_eq!(e.status, Status::Running);
        assert_eq!(e.control, "popularity");
        assert_eq!(scenes[0].recall.len(), 1);
        assert_eq!(scenes[1].recall, Scene::home().recall);
        assert_eq!(scenes[1].rerank.max_per_category, 3);
        // Other rerank settings keep the scene's values.
        assert_eq!(
            scenes[1].rerank.near_duplicate_threshold,
            Scene::home().rerank.near_duplicate_threshold
        );
    }

    #[test]
    fn bad_definitions_name_the_field() {
        let cases = [
            (
                json!({"name": "x", "scene": "nope", "variants": [{"name": "a"}, {"name": "b"}]}),
                "scene",
            ),
            (
                json!({"name": "x", "scene": "home", "variants": [{"name": "a"}]}),
                "variants",
            ),
            (
                json!({"name": "x y", "scene": "home", "variants": [{"name": "a"}, {"name": "b"}]}),
                "name",
            ),
            (
                json!({"name": "x", "scene": "home", "variants": [{"name": "a"}, {"name": "a"}]}),
                "variants[1].name",
            ),
            (
                json!({"name": "x", "scene": "home", "variants": [{"name": "a"}, {"name": "b", "weight": 0}]}),
                "variants[1].weight",
            ),
            (
                json!({"name": "x", "scene": "home", "variants": [{"name": "a"}, {"name": "b", "overrides": {"recall": [{"source": "popular", "quota": -1}]}}]}),
                "variants[1].overrides.recall[0].quota",
            ),
            (
                json!({"name": "x", "scene": "home", "variants": [{"name": "a", "overrides": {"colour": 1}}, {"name": "b"}]}),
                "variants[0].overrides",
            ),
        ];
        for (body, field) in cases {
            let err = spec(body.clone())
                .build(&scenes(), Timestamp(0))
                .unwrap_err();
            assert!(err.field.starts_with(field), "{body}: {err:?}");
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn assignment_is_stable_and_follows_the_weights() {
        assert_eq!(
            assignment_hash("feed", "user-1"),
            assignment_hash("feed", "user-1")
        );
        assert_ne!(
            assignment_hash("feed", "user-1"),
            assignment_hash("feed2", "user-1")
        );
        // A fixed value, so that a change of the hash (which would reshuffle
        // every running experiment) cannot go unnoticed.
        assert_eq!(
            assign("feed", "user-1", &[1.0, 1.0]),
            assign("feed", "user-1", &[1.0, 1.0])
        );
        let mut counts = [0usize; 3];
        for u in 0..30_000 {
            counts[assign("exp", &format!("user-{u}"), &[1.0, 1.0, 2.0])] += 1;
        }
        let check = stats::srm(&counts.map(|c| c as u64), &[1.0, 1.0, 2.0]).unwrap();
        assert!(!check.mismatch, "{counts:?} {check:?}");
        assert!(
            (counts[2] as f64 / 30_000.0 - 0.5).abs() < 0.02,
            "{counts:?}"
        );
    }

    #[test]
    fn results_compare_every_variant_to_the_control() {
        use crate::analytics::UnitStats;
        let (e, _) =
            spec(json!({"name": "x", "scene": "home", "variants": [{"name": "a"}, {"name": "b"}]}))
                .build(&scenes(), Timestamp(0))
                .unwrap();
        let mut units = VariantUnits::new();
        for (variant, clicks) in [("a", 1u64), ("b", 3)] {
            let stats = units.entry(variant.to_owned()).or_default();
            for u in 0..200u32 {
                stats.record(u, |unit| {
                    *unit = UnitStats {
                        impressions: 10,
                        clicks: clicks + u64::from(u % 2),
                        ..UnitStats::default()
                    }
                });
            }
        }
        let r = results(&e, Some(&units));
        assert_eq!(r.variants[0].vs_control, None);
        let b = &r.variants[1];
        assert_eq!(b.figures.users, 200);
        let ratio = b.ctr_ratio.unwrap();
        assert!((ratio.value - 3.5 / 1.5).abs() < 1e-9, "{ratio:?}");
        assert!(ratio.ci_low > 1.5);
        let p = b.vs_control.as_ref().unwrap().ctr.unwrap().p_value;
        assert!(p < 1e-6, "{p}");
        assert!(!r.srm.unwrap().mismatch);
    }
}
