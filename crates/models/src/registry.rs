//! One way to name, configure and train every model.
//!
//! The server, the `tephra` CLI and offline evaluation all go through
//! [`ModelSpec`] (what to train, with which hyper-parameters), [`TrainingData`]
//! (what to train on) and [`fit`], so a configuration measured offline is
//! exactly the configuration served. A spec is written either as JSON/TOML
//! (`{"kind": "seq_ease", "lambda": 800}`) or as a compact string for the
//! command line (`seq_ease:lambda=800,beta=2`); omitted parameters take their
//! documented defaults.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tephra_core::{Duplicates, Interactions};

use crate::blend::{Blend, Normalization};
use crate::bpr::{Bpr, BprConfig};
use crate::ease::{Ease, EaseConfig};
use crate::error::ModelError;
use crate::ials::{IalsConfig, IalsModel};
use crate::itemknn::{ItemKnn, ItemKnnConfig, KnnSimilarity};
use crate::most_popular::MostPopular;
use crate::recency::{weighted_history, HistoryWeighting};
use crate::recommender::{History, Recommender};
use crate::rp3beta::{Rp3Beta, Rp3BetaConfig};
use crate::seq_ease::{SeqEase, SeqEaseConfig};

/// What every model trains on: the binary users × items matrix and, for
/// sequence-aware models, each user's timeline.
///
/// Both views come from the same events, built by [`TrainingData::from_sequences`],
/// so the server and evaluation feed models identically.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingData {
    /// Users × items, 1.0 for every pair that occurs (repeats collapsed).
    pub matrix: Interactions,
    /// Per user (dense index), `(item, timestamp in ms)` sorted by (time, item).
    pub sequences: Vec<Vec<(u32, i64)>>,
}

impl TrainingData {
    /// Builds the data from per-user timelines over `n_items` items. Each
    /// timeline is sorted by (time, item) here (the reference order), and the
    /// matrix gets 1.0 per distinct (user, item) pair.
    pub fn from_sequences(
        n_items: usize,
        mut sequences: Vec<Vec<(u32, i64)>>,
    ) -> Result<Self, ModelError> {
        for steps in &mut sequences {
            steps.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        }
        let triples = sequences
            .iter()
            .enumerate()
            .flat_map(|(u, steps)| steps.iter().map(move |&(item, _)| (u as u32, item, 1.0)));
        let matrix = Interactions::from_triples(sequences.len(), n_items, triples, Duplicates::Max)
            .map_err(|e| ModelError::InvalidData(e.to_string()))?;
        Ok(Self { matrix, sequences })
    }

    /// Number of users (rows).
    pub fn n_users(&self) -> usize {
        self.matrix.n_users()
    }

    /// Number of items in the catalogue the models will score.
    pub fn n_items(&self) -> usize {
        self.matrix.n_items()
    }

    /// `user`'s weighted history as models score it (empty for an unknown user).
    pub fn history(&self, user: u32, weighting: HistoryWeighting) -> Vec<(u32, f32)> {
        let steps = self
            .sequences
            .get(user as usize)
            .map_or(&[][..], Vec::as_slice);
        weighted_history(steps.iter().map(|&(item, _)| item), weighting)
    }
}

/// EASE^R parameters (see [`crate::ease`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EaseSpec {
    /// L2 regularization λ (> 0).
    pub lambda: f32,
    /// Largest catalogue accepted (training needs 8·n² bytes).
    pub max_items: usize,
}

impl Default for EaseSpec {
    /// λ = 250: best for a plain (unweighted) history on MovieLens-100K.
    fn default() -> Self {
        Self {
            lambda: 250.0,
            max_items: EaseConfig::default().max_items,
        }
    }
}

/// The popularity baseline has no parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopularitySpec {}

/// Item-kNN parameters, flat so that they fit a command line (see
/// [`crate::itemknn`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemKnnSpec {
    /// `cosine`, `jaccard` or `bm25`.
    pub similarity: KnnMeasure,
    /// Cosine shrinkage (≥ 0).
    pub shrinkage: f32,
    /// BM25 saturation k1 (≥ 0).
    pub k1: f32,
    /// BM25 length normalization b in [0, 1].
    pub b: f32,
    /// Neighbours kept per item.
    pub neighbours: usize,
}

/// The item-kNN similarity measures by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnnMeasure {
    /// Shrunk cosine.
    #[default]
    Cosine,
    /// Jaccard on user sets.
    Jaccard,
    /// BM25-weighted dot product.
    Bm25,
}

impl Default for ItemKnnSpec {
    /// Plain cosine with K = 100 (BM25 constants as `implicit`).
    fn default() -> Self {
        Self {
            similarity: KnnMeasure::Cosine,
            shrinkage: 0.0,
            k1: 1.2,
            b: 0.75,
            neighbours: 100,
        }
    }
}

impl ItemKnnSpec {
    fn config(&self) -> ItemKnnConfig {
        ItemKnnConfig {
            similarity: match self.similarity {
                KnnMeasure::Cosine => KnnSimilarity::Cosine {
                    shrinkage: self.shrinkage,
                },
                KnnMeasure::Jaccard => KnnSimilarity::Jaccard,
                KnnMeasure::Bm25 => KnnSimilarity::Bm25 {
                    k1: self.k1,
                    b: self.b,
                },
            },
            neighbours: self.neighbours,
        }
    }
}

/// RP3beta parameters (see [`crate::rp3beta`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rp3BetaSpec {
    /// Exponent on the transition probabilities (> 0).
    pub alpha: f32,
    /// Popularity penalty (≥ 0).
    pub beta: f32,
    /// Neighbours kept per item.
    pub neighbours: usize,
    /// Whether rows of the walk matrix are scaled to sum to 1.
    pub normalize_rows: bool,
}

impl Default for Rp3BetaSpec {
    /// The defaults of [`Rp3BetaConfig`].
    fn default() -> Self {
        let c = Rp3BetaConfig::default();
        Self {
            alpha: c.alpha,
            beta: c.beta,
            neighbours: c.neighbours,
            normalize_rows: c.normalize_rows,
        }
    }
}

impl Rp3BetaSpec {
    fn config(&self) -> Rp3BetaConfig {
        Rp3BetaConfig {
            alpha: self.alpha,
            beta: self.beta,
            neighbours: self.neighbours,
            normalize_rows: self.normalize_rows,
        }
    }
}

/// One part of a blend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlendPartSpec {
    /// The model.
    pub spec: ModelSpec,
    /// Its weight after score normalization.
    pub weight: f32,
}

/// A weighted blend of models (see [`crate::blend`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlendSpec {
    /// The parts, trained independently on the same data.
    pub parts: Vec<BlendPartSpec>,
    /// How part scores are normalized before weighting.
    pub normalization: Normalization,
}

/// Which model to train and with which hyper-parameters.
///
/// Serialized with a `kind` tag: `{"kind": "ease", "lambda": 250}`. Parsed from
/// the command line by [`FromStr`]: `ease`, `ease:lambda=250`,
/// `ials:factors=64,iterations=15`, or the JSON form (needed for `blend`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// EASE^R.
    Ease(EaseSpec),
    /// EASE^R plus the sequential next-item term.
    SeqEase(SeqEaseConfig),
    /// Most popular items, whatever the history.
    Popularity(PopularitySpec),
    /// Implicit ALS with conjugate-gradient updates.
    Ials(IalsConfig),
    /// Bayesian personalized ranking (SGD matrix factorization).
    Bpr(BprConfig),
    /// Item-kNN.
    #[serde(rename = "itemknn")]
    ItemKnn(ItemKnnSpec),
    /// RP3beta graph walk.
    #[serde(rename = "rp3beta")]
    Rp3Beta(Rp3BetaSpec),
    /// A weighted blend of other models.
    Blend(BlendSpec),
}

impl ModelSpec {
    /// The `kind` name, e.g. `seq_ease`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Ease(_) => "ease",
            ModelSpec::SeqEase(_) => "seq_ease",
            ModelSpec::Popularity(_) => "popularity",
            ModelSpec::Ials(_) => "ials",
            ModelSpec::Bpr(_) => "bpr",
            ModelSpec::ItemKnn(_) => "itemknn",
            ModelSpec::Rp3Beta(_) => "rp3beta",
            ModelSpec::Blend(_) => "blend",
        }
    }

    /// Every `kind` a spec may have.
    pub const KINDS: &'static [&'static str] = &[
        "ease",
        "seq_ease",
        "popularity",
        "ials",
        "bpr",
        "itemknn",
        "rp3beta",
        "blend",
    ];
}

impl FromStr for ModelSpec {
    type Err = ModelError;

    /// `kind[:key=value,key=value…]`, or a JSON object. Values are numbers,
    /// `true`/`false` or bare words (e.g. `similarity=bm25`).
    fn from_str(text: &str) -> Result<Self, ModelError> {
        let text = text.trim();
        if text.starts_with('{') {
            return serde_json::from_str(text).map_err(|e| ModelError::InvalidSpec(e.to_string()));
        }
        let (kind, params) = text.split_once(':').unwrap_or((text, ""));
        let kind = kind.trim();
        if !Self::KINDS.contains(&kind) {
            return Err(ModelError::InvalidSpec(format!(
                "unknown model `{kind}`; known models: {}",
                Self::KINDS.join(", ")
            )));
        }
        if kind == "blend" {
            return Err(ModelError::InvalidSpec(
                "a blend lists other models: write it as JSON, e.g. \
                 {\"kind\":\"blend\",\"parts\":[{\"spec\":{\"kind\":\"ease\"},\"weight\":1}]}"
                    .into(),
            ));
        }
        let mut object = Map::new();
        object.insert("kind".into(), Value::String(kind.into()));
        for param in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = param.split_once('=') else {
                return Err(ModelError::InvalidSpec(format!(
                    "`{param}` in `{text}` is not of the form key=value"
                )));
            };
            let key = key.trim();
            if key == "kind" || object.contains_key(key) {
                return Err(ModelError::InvalidSpec(format!(
                    "parameter `{key}` given twice in `{text}`"
                )));
            }
            object.insert(key.into(), parse_value(value.trim()));
        }
        serde_json::from_value(Value::Object(object))
            .map_err(|e| ModelError::InvalidSpec(format!("{kind}: {e}")))
    }
}

fn parse_value(value: &str) -> Value {
    if let Ok(i) = value.parse::<i64>() {
        return Value::from(i);
    }
    if let Some(n) = value
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        return Value::Number(n);
    }
    match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(value.into()),
    }
}

impl fmt::Display for ModelSpec {
    /// The compact form `kind:key=value,…` (all parameters, so a report says
    /// exactly what ran); a blend as JSON. Parses back with [`FromStr`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        if matches!(self, ModelSpec::Blend(_)) {
            return f.write_str(&json);
        }
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(&json) else {
            return Err(fmt::Error);
        };
        f.write_str(self.kind())?;
        let mut separator = ':';
        for (key, value) in object.iter().filter(|(k, _)| *k != "kind") {
            match value {
                Value::String(s) => write!(f, "{separator}{key}={s}")?,
                other => write!(f, "{separator}{key}={other}")?,
            }
            separator = ',';
        }
        Ok(())
    }
}

/// A trained model of any kind.
#[derive(Debug, Clone)]
pub enum Model {
    /// EASE^R.
    Ease(Ease),
    /// EASE^R plus the sequential term.
    SeqEase(SeqEase),
    /// The popularity baseline.
    Popularity(MostPopular),
    /// iALS.
    Ials(IalsModel),
    /// BPR.
    Bpr(Bpr),
    /// Item-kNN.
    ItemKnn(ItemKnn),
    /// RP3beta.
    Rp3Beta(Rp3Beta),
    /// A blend of trained models.
    Blend(Blend<TrainedModel>),
}

/// A trained model together with the spec it was trained from: what the
/// server holds (behind an `Arc`), snapshots store and reports name.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    spec: ModelSpec,
    model: Model,
}

impl TrainedModel {
    /// Pairs a model with its spec (used by snapshot loading).
    pub(crate) fn new(spec: ModelSpec, model: Model) -> Self {
        Self { spec, model }
    }

    /// The spec the model was trained from.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The trained model itself.
    pub fn model(&self) -> &Model {
        &self.model
    }

    fn inner(&self) -> &dyn Recommender {
        match &self.model {
            Model::Ease(m) => m,
            Model::SeqEase(m) => m,
            Model::Popularity(m) => m,
            Model::Ials(m) => m,
            Model::Bpr(m) => m,
            Model::ItemKnn(m) => m,
            Model::Rp3Beta(m) => m,
            Model::Blend(m) => m,
        }
    }
}

impl Recommender for TrainedModel {
    fn name(&self) -> &'static str {
        self.inner().name()
    }

    fn n_items(&self) -> usize {
        self.inner().n_items()
    }

    fn score(&self, history: History<'_>, scores: &mut [f32]) {
        self.inner().score(history, scores)
    }

    fn similar_items(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        self.inner().similar_items(item, n)
    }
}

/// Trains the model `spec` describes on `data`.
pub fn fit(spec: &ModelSpec, data: &TrainingData) -> Result<TrainedModel, ModelError> {
    let x = &data.matrix;
    if data.sequences.len() != x.n_users() {
        return Err(ModelError::InvalidData(format!(
            "{} timelines for a matrix of {} users",
            data.sequences.len(),
            x.n_users()
        )));
    }
    let model = match spec {
        ModelSpec::Ease(s) => Model::Ease(Ease::fit(
            x,
            &EaseConfig {
                lambda: s.lambda,
                max_items: s.max_items,
            },
        )?),
        ModelSpec::SeqEase(config) => Model::SeqEase(SeqEase::fit(x, &data.sequences, config)?),
        ModelSpec::Popularity(_) => Model::Popularity(MostPopular::fit(x)),
        ModelSpec::Ials(config) => Model::Ials(IalsModel::fit(x, config)?),
        ModelSpec::Bpr(config) => Model::Bpr(Bpr::fit(x, config)?),
        ModelSpec::ItemKnn(s) => Model::ItemKnn(ItemKnn::fit(x, &s.config())?),
        ModelSpec::Rp3Beta(s) => Model::Rp3Beta(Rp3Beta::fit(x, &s.config())?),
        ModelSpec::Blend(blend) => {
            let parts = blend
                .parts
                .iter()
                .map(|part| Ok((fit(&part.spec, data)?, part.weight)))
                .collect::<Result<Vec<_>, ModelError>>()?;
            Model::Blend(Blend::new(parts, blend.normalization)?)
        }
    };
    Ok(TrainedModel::new(spec.clone(), model))
}

/// A model to serve and the history weighting it was tuned with: the two must
/// travel together, since a model tuned on recency-weighted histories is worse
/// when fed plain ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServingConfig {
    /// What to train.
    pub spec: ModelSpec,
    /// How the server weights a user's history before scoring.
    pub weighting: HistoryWeighting,
}

impl Default for ServingConfig {
    /// [`default_serving`].
    fn default() -> Self {
        default_serving()
    }
}

/// What Tephra serves unless configured otherwise: EASE plus the sequential
/// term (λ = 800, β = 2, window 80, decay 0.97) fed a recency-weighted history
/// with a half-life of 7 events — the best configuration on a validation split
/// of MovieLens-100K (standard protocol test: NDCG@10 ≈ 0.269, Recall@20 ≈ 0.302).
pub fn default_serving() -> ServingConfig {
    ServingConfig {
        spec: ModelSpec::SeqEase(SeqEaseConfig::default()),
        weighting: HistoryWeighting::Recency { half_life: 7.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> TrainingData {
        TrainingData::from_sequences(
            4,
            vec![
                vec![(1, 20), (0, 10), (1, 30)],
                vec![(2, 5), (3, 5)],
                vec![],
                vec![(0, 1), (1, 2), (2, 3)],
            ],
        )
        .unwrap()
    }

    #[test]
    fn training_data_sorts_timelines_and_collapses_repeats() {
        let d = data();
        assert_eq!(d.sequences[0], vec![(0, 10), (1, 20), (1, 30)]);
        assert_eq!(d.matrix.row(0), (&[0u32, 1][..], &[1.0f32, 1.0][..]));
        assert_eq!((d.n_users(), d.n_items()), (4, 4));
        assert_eq!(
            d.history(0, HistoryWeighting::Recency { half_life: 1.0 }),
            vec![(0, 0.25), (1, 1.0)]
        );
        assert!(d.history(99, HistoryWeighting::Plain).is_empty());
        let err = TrainingData::from_sequences(2, vec![vec![(5, 0)]]).unwrap_err();
        assert!(matches!(err, ModelError::InvalidData(_)), "{err}");
    }

    #[test]
    fn parses_compact_specs() {
        assert_eq!(
            "ease".parse::<ModelSpec>().unwrap(),
            ModelSpec::Ease(EaseSpec::default())
        );
        assert_eq!(
            "ease:lambda=250".parse::<ModelSpec>().unwrap(),
            ModelSpec::Ease(EaseSpec {
                lambda: 250.0,
                ..Default::default()
            })
        );
        let ModelSpec::SeqEase(s) = "seq_ease:lambda=800,beta=2.5".parse().unwrap() else {
            panic!("not seq_ease");
        };
        assert_eq!((s.lambda, s.beta, s.window), (800.0, 2.5, 80));
        let ModelSpec::Ials(c) = "ials:factors=64,iterations=15".parse().unwrap() else {
            panic!("not ials");
        };
        assert_eq!((c.factors, c.iterations), (64, 15));
        let ModelSpec::ItemKnn(k) = "itemknn:similarity=bm25,neighbours=50".parse().unwrap() else {
            panic!("not itemknn");
        };
        assert_eq!((k.similarity, k.neighbours), (KnnMeasure::Bm25, 50));
        assert!(matches!(
            "rp3beta:normalize_rows=true".parse().unwrap(),
            ModelSpec::Rp3Beta(Rp3BetaSpec {
                normalize_rows: true,
                ..
            })
        ));
        assert!(matches!(
            "popularity".parse().unwrap(),
            ModelSpec::Popularity(_)
        ));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let message = |s: &str| s.parse::<ModelSpec>().unwrap_err().to_string();
        let m = message("ease:lamda=3");
        assert!(
            m.contains("lamda") && m.contains("lambda") && m.contains("max_items"),
            "{m}"
        );
        let m = message("nope");
        assert!(m.contains("nope") && m.contains("seq_ease"), "{m}");
        assert!(message("ease:lambda").contains("key=value"));
        assert!(message("ease:lambda=1,lambda=2").contains("twice"));
        assert!(
            message("ease:lambda=big").contains("lambda")
                || message("ease:lambda=big").contains("big")
        );
        assert!(message("popularity:x=1").contains('x'));
        assert!(message("blend").contains("JSON"));
        assert!(message("itemknn:similarity=euclid").contains("euclid"));
    }

    #[test]
    fn specs_round_trip_through_text_and_json() {
        let blend = ModelSpec::Blend(BlendSpec {
            parts: vec![
                BlendPartSpec {
                    spec: "ease:lambda=300".parse().unwrap(),
                    weight: 1.0,
                },
                BlendPartSpec {
                    spec: "popularity".parse().unwrap(),
                    weight: 0.25,
                },
            ],
            normalization: Normalization::MaxAbs,
        });
        for spec in [
            ModelSpec::Ease(EaseSpec::default()),
            ModelSpec::SeqEase(SeqEaseConfig::default()),
            ModelSpec::Popularity(PopularitySpec {}),
            ModelSpec::Ials(IalsConfig::default()),
            ModelSpec::ItemKnn(ItemKnnSpec::default()),
            ModelSpec::Rp3Beta(Rp3BetaSpec::default()),
            blend,
        ] {
            let text = spec.to_string();
            assert_eq!(text.parse::<ModelSpec>().unwrap(), spec, "{text}");
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(
                serde_json::from_str::<ModelSpec>(&json).unwrap(),
                spec,
                "{json}"
            );
        }
        assert_eq!(
            ModelSpec::SeqEase(SeqEaseConfig::default()).to_string(),
            "seq_ease:beta=2.0,decay=0.97,lambda=800.0,max_items=20000,window=80"
        );
        let serving = serde_json::to_string(&default_serving()).unwrap();
        assert_eq!(
            serde_json::from_str::<ServingConfig>(&serving).unwrap(),
            ServingConfig::default()
        );
    }

    #[test]
    fn fits_every_kind_and_scores_the_catalogue() {
        let d = data();
        for text in [
            "ease:lambda=1",
            "seq_ease:lambda=1",
            "popularity",
            "ials:factors=8,iterations=2",
            "itemknn:neighbours=5",
            "rp3beta",
            r#"{"kind":"blend","parts":[{"spec":{"kind":"ease","lambda":1},"weight":1},{"spec":{"kind":"popularity"},"weight":0.5}]}"#,
        ] {
            let spec: ModelSpec = text.parse().unwrap();
            let model = fit(&spec, &d).unwrap();
            assert_eq!(model.n_items(), 4, "{text}");
            assert_eq!(model.spec(), &spec);
            assert_eq!(model.name(), spec.kind());
            let mut scores = vec![0f32; 4];
            model.score(&[(0, 1.0)], &mut scores);
            assert!(scores.iter().all(|s| s.is_finite()), "{text}: {scores:?}");
        }
        let err = fit(&"ease:lambda=0".parse().unwrap(), &d).unwrap_err();
        assert!(matches!(err, ModelError::InvalidConfig { .. }));
        let model: std::sync::Arc<dyn Recommender> =
            std::sync::Arc::new(fit(&default_serving().spec, &d).unwrap());
        assert_eq!(model.name(), "seq_ease");
    }
}
