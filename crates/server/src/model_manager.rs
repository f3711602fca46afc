//! The promoted collaborative model: training, judging, promoting and swapping it.
//!
//! Training copies every user's positive events out of the live state (a quick,
//! compact copy under the read lock) and then runs entirely off the async
//! runtime, on a blocking thread. A run:
//!
//! 1. cuts a holdout with the standard per-user temporal protocol (each user's
//!    latest `holdout_fraction` of positive events, at least one);
//! 2. fits the candidate recipe on the training part and measures NDCG@10 and
//!    Recall@20 on the holdout, scoring recency-weighted histories exactly as
//!    serving does;
//! 3. judges it against the current model's recipe **refitted on the same
//!    training part**. The promoted model itself was fitted on everything known
//!    at its time, which includes most of today's holdout, so scoring it on the
//!    holdout would leak and wrongly favour it forever. When both recipes are the
//!    same, the comparison is a tie and is skipped;
//! 4. promotes when the candidate is not worse (ties promote): refits it on all
//!    events, so the served model knows every user's latest items, and swaps it
//!    in. Requests in flight keep the `Arc` of the model they started with, so
//!    the swap drops none;
//! 5. writes the promoted model as a snapshot (`models/current.tephra` in the
//!    tenant's folder of the data directory), which the next start loads, so a
//!    restart serves the same model without retraining.
//!
//! What is trained is a [`ModelRecipe`]: a registry [`ModelSpec`] and the
//! history weighting it is served with. The default is the registry's
//! [`default_serving`] configuration, so the model measured by `tephra eval` is
//! the model the server answers with.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tephra_core::Timestamp;
use tephra_eval::{evaluate, EvalOptions, HistoryWeighting, Protocol, Sequences, Step};
use tephra_models::ials::{IalsConfig, IalsModel};
use tephra_models::registry::{default_serving, fit, Model, ModelSpec, TrainedModel};
use tephra_models::retrieval::{self, RetrievalConfig, Retriever};
use tephra_models::{rank, snapshot, Recommender};
use utoipa::ToSchema;

use crate::config::TrainingSettings;
use crate::live::{LiveState, PositiveEvents};

/// `training.model` value that picks the model by catalogue size.
pub const AUTO_MODEL: &str = "auto";
/// Largest catalogue `auto` trains the dense default model for; iALS above.
pub const AUTO_DENSE_MAX_ITEMS: usize = 15_000;
/// New items fold in once this many known users interacted with them.
pub const FOLD_IN_MIN_USERS: usize = 3;
/// A new item's vector is refreshed with every interaction up to this many users.
const FOLD_IN_MAX_USERS: usize = 200;

/// Snapshot header note holding the [`ModelInfo`].
const INFO_NOTE: &str = "model_info";
/// Snapshot header note holding the fingerprint of the item ids the model's
/// indices stand for (see [`LiveState::item_fingerprint`]).
const ITEMS_NOTE: &str = "item_fingerprint";

/// The recipe of a served model: everything that decides its weights and how a
/// history is scored, so two runs with equal recipes are interchangeable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelRecipe {
    /// What is trained: a model spec with a `kind` tag and its parameters,
    /// e.g. `{"kind": "seq_ease", "lambda": 800, ...}`.
    #[schema(value_type = Object)]
    pub spec: ModelSpec,
    /// How a user's history is weighted before scoring:
    /// `{"kind": "recency", "half_life": 7}` or `{"kind": "plain"}`.
    #[schema(value_type = Object)]
    pub weighting: HistoryWeighting,
}

impl Default for ModelRecipe {
    /// The registry's [`default_serving`] configuration.
    fn default() -> Self {
        let serving = default_serving();
        Self {
            spec: serving.spec,
            weighting: serving.weighting,
        }
    }
}

impl ModelRecipe {
    /// The recipe the training settings ask for (`training.model` and
    /// `training.recency_half_life`) for a catalogue of `n_items` items.
    /// `auto` is the registry's [`default_serving`] model (the most accurate)
    /// up to [`AUTO_DENSE_MAX_ITEMS`] items, whose dense item × item matrices
    /// grow with the square of the catalogue, and iALS above.
    pub fn from_settings(settings: &TrainingSettings, n_items: usize) -> Result<Self, TrainError> {
        let weighting = if settings.recency_half_life > 0.0 {
            HistoryWeighting::Recency {
                half_life: settings.recency_half_life,
            }
        } else {
            HistoryWeighting::Plain
        };
        let spec: ModelSpec = if settings.model.trim() == AUTO_MODEL {
            if n_items <= AUTO_DENSE_MAX_ITEMS {
                default_serving().spec
            } else {
                ModelSpec::Ials(IalsConfig::default())
            }
        } else {
            settings
                .model
                .parse()
                .map_err(|e| TrainError(format!("training.model: {e}")))?
        };
        Ok(Self { spec, weighting })
    }

    fn fit(&self, data: &Sequences) -> Result<TrainedModel, TrainError> {
        let data = data
            .training_data()
            .map_err(|e| TrainError(format!("cannot prepare the training data: {e}")))?;
        fit(&self.spec, &data)
            .map_err(|e| TrainError(format!("training {} failed: {e}", self.spec)))
    }
}

/// Holdout quality of a model, measured with full ranking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HoldoutMetrics {
    /// Users evaluated.
    pub users: usize,
    /// Binary NDCG@10: the promotion criterion.
    pub ndcg_at_10: f64,
    /// Recall@20 over min(20, |held-out items|).
    pub recall_at_20: f64,
}

/// What is known about the promoted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    /// How it was made.
    pub recipe: ModelRecipe,
    /// When its training finished.
    pub trained_at: Timestamp,
    /// Items it scores; items created later are left to the fallback chain.
    pub n_items: usize,
    /// Users and positive events it was trained on.
    pub n_users: usize,
    /// Positive events it was trained on.
    pub n_events: usize,
    /// Its quality on the holdout of the run that promoted it (fitted on the
    /// training part only).
    pub holdout: HoldoutMetrics,
    /// Where it came from: `trained` in this process or `snapshot` (loaded at
    /// startup from the file the run that promoted it wrote).
    #[serde(default = "trained_origin")]
    pub origin: String,
}

fn trained_origin() -> String {
    "trained".to_owned()
}

/// The answer of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrainOutcome {
    /// Whether the candidate replaced the served model.
    pub promoted: bool,
    /// The candidate's recipe.
    pub candidate: ModelRecipe,
    /// The candidate's holdout metrics.
    pub candidate_holdout: HoldoutMetrics,
    /// The current recipe's holdout metrics on the same cut, when a different
    /// recipe was being served (equal recipes tie by definition).
    pub current_holdout: Option<HoldoutMetrics>,
    /// Positive events used.
    pub n_events: usize,
    /// Wall time of the run, in milliseconds.
    pub elapsed_ms: u64,
}

/// Why a training run did not produce a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TrainError(pub String);

/// The promoted model and its metadata, swapped as one.
pub struct Promoted {
    /// The model scoring requests.
    pub model: Arc<TrainedModel>,
    /// What it is.
    pub info: ModelInfo,
    /// Factor models only: the item vectors behind a retriever, and vectors
    /// folded in for items created since training.
    vectors: Option<ItemVectors>,
}

/// Item vectors of a factor model, ready for retrieval.
struct ItemVectors {
    retriever: Arc<dyn Retriever>,
    /// Vectors folded in for items created after training, by item index.
    fresh: RwLock<HashMap<u32, Vec<f32>>>,
    /// Known users who interacted with each such item.
    pending: Mutex<HashMap<u32, Vec<u32>>>,
}

impl Promoted {
    /// Wraps a trained model for serving. For a factor model this builds the
    /// retrieval index over its item vectors (exact below
    /// `retrieval.exact_below` items, approximate above), which for a large
    /// catalogue takes a while: it runs before the model is swapped in, so the
    /// previous model and index serve meanwhile.
    pub fn new(model: Arc<TrainedModel>, info: ModelInfo, retrieval: &RetrievalConfig) -> Self {
        let vectors = match model.model() {
            Model::Ials(ials) => {
                let factors = ials.item_factors();
                let started = Instant::now();
                let retriever = retrieval::build(&factors.to_row_major(), factors.dim(), retrieval);
                tracing::info!(
                    kind = retriever.kind(),
                    items = retriever.len(),
                    memory_mb = retriever.memory_bytes() / (1 << 20),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "retrieval index built"
                );
                Some(ItemVectors {
                    retriever,
                    fresh: RwLock::new(HashMap::new()),
                    pending: Mutex::new(HashMap::new()),
                })
            }
            _ => None,
        };
        Self {
            model,
            info,
            vectors,
        }
    }

    /// How the model's items are retrieved: `exact` or `ivf` for factor
    /// models, `None` for models that score the whole catalogue.
    pub fn retriever_kind(&self) -> Option<&'static str> {
        self.vectors.as_ref().map(|v| v.retriever.kind())
    }

    /// Items folded in since training.
    pub fn folded_in_items(&self) -> usize {
        self.vectors.as_ref().map_or(0, |v| v.fresh.read().len())
    }

    fn ials(&self) -> Option<&IalsModel> {
        match self.model.model() {
            Model::Ials(m) => Some(m),
            _ => None,
        }
    }

    /// The history as the model scores it: items it knows, recency-weighted,
    /// the latest [`scored_history_len`] of them (older ones weigh nothing
    /// that could change a ranking, and would make a heavy user's every
    /// request cost in proportion to a long past).
    fn weighted(&self, history: &[(u32, i64)]) -> Vec<(u32, f32)> {
        let n_items = self.model.n_items();
        let mut items: Vec<u32> = history
            .iter()
            .map(|&(item, _)| item)
            .filter(|&item| (item as usize) < n_items)
            .collect();
        let keep = scored_history_len(self.info.recipe.weighting);
        items.drain(..items.len().saturating_sub(keep));
        tephra_models::weighted_history(items, self.info.recipe.weighting)
    }

    /// The collaborative candidates for a user's current history: the `quota`
    /// best items `allow` accepts, then the model's scores of `extra` items
    /// (the caller's candidates) that are not among them. Empty when the model
    /// knows nothing of the history.
    pub(crate) fn recall_user(
        &self,
        history: &[(u32, i64)],
        quota: usize,
        allow: &dyn Fn(u32) -> bool,
        extra: &[u32],
    ) -> Vec<(u32, f32)> {
        let weighted = self.weighted(history);
        if weighted.is_empty() {
            return Vec::new();
        }
        let mut out = match (self.ials(), &self.vectors) {
            (Some(ials), Some(vectors)) => {
                // Fold the user in from the history as it is now, then search.
                let query = ials.fold_in(&weighted);
                let mut out = vectors.retriever.search(&query, quota, allow);
                let fresh = vectors.fresh.read();
                if !fresh.is_empty() {
                    out.extend(
                        fresh
                            .iter()
                            .filter(|&(&item, _)| allow(item))
                            .map(|(&item, v)| (item, dot(&query, v))),
                    );
                    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    out.truncate(quota);
                }
                for &item in extra.iter().filter(|&&i| allow(i)) {
                    if out.iter().all(|&(i, _)| i != item) {
                        let vector = ials.item_vector(item).map(<[f32]>::to_vec);
                        if let Some(v) = vector.or_else(|| fresh.get(&item).cloned()) {
                            out.push((item, dot(&query, &v)));
                        }
                    }
                }
                out
            }
            _ => {
                let mut scores = vec![0.0; self.model.n_items()];
                self.model.score(&weighted, &mut scores);
                let mut out = rank::top_n(&scores, quota, |i| scores[i as usize] > 0.0 && allow(i));
                for &item in extra.iter().filter(|&&i| allow(i)) {
                    if let Some(&score) = scores.get(item as usize) {
                        if out.iter().all(|&(i, _)| i != item) {
                            out.push((item, score));
                        }
                    }
                }
                out
            }
        };
        out.retain(|&(_, s)| s.is_finite());
        out
    }

    /// The model's neighbours of the weighted `seeds` that `allow` accepts,
    /// best first, with the seeds' weighted sums of similarity as scores.
    ///
    /// Small catalogues rank every item by the model's own similarity to each
    /// seed. Large ones (an approximate index) make one search with the
    /// weighted sum of the seeds' vectors: its inner product with an item is
    /// exactly the weighted sum of the seeds' inner products with it, for the
    /// price of one search instead of one per seed.
    pub(crate) fn recall_neighbours(
        &self,
        seeds: &[(u32, f32)],
        quota: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        if let (Some(ials), Some(vectors)) = (self.ials(), &self.vectors) {
            if vectors.retriever.kind() != "exact" {
                let fresh = vectors.fresh.read();
                let mut query = vec![0f32; vectors.retriever.dim()];
                for &(seed, weight) in seeds {
                    let v = ials
                        .item_vector(seed)
                        .or_else(|| fresh.get(&seed).map(Vec::as_slice));
                    if let Some(v) = v {
                        for (q, x) in query.iter_mut().zip(v) {
                            *q += weight * x;
                        }
                    }
                }
                if query.iter().all(|&x| x == 0.0) {
                    return Vec::new();
                }
                let is_seed = |i: u32| seeds.iter().any(|&(s, _)| s == i);
                return vectors
                    .retriever
                    .search(&query, quota, &|i| !is_seed(i) && allow(i));
            }
        }
        crate::pipeline::accumulate(seeds, quota, |seed| {
            if seed as usize >= self.model.n_items() {
                return Vec::new();
            }
            let mut neighbours = self
                .model
                .similar_items(seed, quota.saturating_mul(2).saturating_add(16));
            neighbours.retain(|&(item, score)| score.is_finite() && score > 0.0 && allow(item));
            neighbours
        })
    }

    /// Whether events on `item` feed [`Promoted::observe_new_item`]: a factor
    /// model and an item it was not trained on.
    pub(crate) fn folds_in(&self, item: u32) -> bool {
        self.vectors.is_some() && item as usize >= self.model.n_items()
    }

    /// Records that `user` had a positive event with a new `item`. Once
    /// [`FOLD_IN_MIN_USERS`] users the model knows did, the item gets a vector
    /// folded in from theirs (the exact item step of iALS), and collaborative
    /// recall finds it before any retrain.
    pub(crate) fn observe_new_item(&self, item: u32, user: u32) {
        let (Some(ials), Some(vectors)) = (self.ials(), &self.vectors) else {
            return;
        };
        if !self.folds_in(item) || user as usize >= ials.user_factors().n_rows() {
            return;
        }
        let users: Vec<(u32, f32)> = {
            let mut pending = vectors.pending.lock();
            let users = pending.entry(item).or_default();
            if users.len() >= FOLD_IN_MAX_USERS || users.contains(&user) {
                return;
            }
            users.push(user);
            if users.len() < FOLD_IN_MIN_USERS {
                return;
            }
            users.iter().map(|&u| (u, 1.0)).collect()
        };
        let vector = ials.fold_in_item(&users);
        if vector.iter().any(|&x| x != 0.0) {
            vectors.fresh.write().insert(item, vector);
        }
    }
}

/// How many of a user's latest events serving scores: with recency weighting,
/// twelve half-lives (older events weigh less than 1/4096 of the latest);
/// without, [`MAX_SCORED_HISTORY`].
pub fn scored_history_len(weighting: HistoryWeighting) -> usize {
    match weighting {
        HistoryWeighting::Recency { half_life } => {
            ((12.0 * half_life).ceil() as usize).clamp(1, MAX_SCORED_HISTORY)
        }
        HistoryWeighting::Plain => MAX_SCORED_HISTORY,
    }
}

/// Most events of a history serving scores.
pub const MAX_SCORED_HISTORY: usize = 500;

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Holds the promoted model and serializes training runs.
#[derive(Default)]
pub struct ModelManager {
    current: RwLock<Option<Arc<Promoted>>>,
    /// One training run at a time (held on the blocking thread for the run).
    training: Mutex<()>,
    /// `LiveState::positive_event_count` when the last run started.
    trained_at_count: AtomicU64,
    /// Where the promoted model is saved; `None` keeps it in memory only.
    snapshot: Option<PathBuf>,
    /// How factor models' items are retrieved.
    retrieval: RetrievalConfig,
    /// The latest training runs of this process, oldest first.
    history: Mutex<std::collections::VecDeque<TrainingRun>>,
}

/// Training runs shown by `/v1/model/history`.
pub const MAX_HISTORY: usize = 100;

/// The training history file, beside the model snapshot.
pub const HISTORY_FILE: &str = "history.jsonl";

/// One finished training run, for the training history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrainingRun {
    /// When the run finished.
    pub finished_at: Timestamp,
    /// What it did and how the candidate scored.
    #[serde(flatten)]
    pub outcome: TrainOutcome,
}

impl ModelManager {
    /// A manager that saves every promoted model to `path` (replacing the
    /// previous one atomically) and can load it back with
    /// [`ModelManager::load_snapshot`].
    pub fn with_snapshot(path: PathBuf) -> Self {
        Self {
            snapshot: Some(path),
            ..Self::default()
        }
    }

    /// Builds factor models' retrieval indices with `retrieval`.
    pub fn with_retrieval(self, retrieval: RetrievalConfig) -> Self {
        Self { retrieval, ..self }
    }

    /// The latest training runs, oldest first (at most [`MAX_HISTORY`]),
    /// including those of earlier processes on the same data directory.
    pub fn history(&self) -> Vec<TrainingRun> {
        self.history.lock().iter().cloned().collect()
    }

    /// Where the training history is kept: `history.jsonl` beside the
    /// snapshot, one run per line.
    fn history_path(&self) -> Option<PathBuf> {
        Some(self.snapshot.as_ref()?.with_file_name(HISTORY_FILE))
    }

    /// Adds a run to the history and appends it to the history file. A
    /// failure to write is logged, not returned: the run itself succeeded.
    fn remember(&self, run: TrainingRun) {
        if let Some(path) = self.history_path() {
            let written = (|| -> std::io::Result<()> {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let mut line = serde_json::to_vec(&run).map_err(std::io::Error::other)?;
                line.push(b'\n');
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                std::io::Write::write_all(&mut file, &line)
            })();
            if let Err(error) = written {
                tracing::warn!(path = %path.display(), %error, "cannot record the training run");
            }
        }
        let mut history = self.history.lock();
        if history.len() == MAX_HISTORY {
            history.pop_front();
        }
        history.push_back(run);
    }

    /// Reads the latest [`MAX_HISTORY`] runs of the history file, if any.
    /// Unreadable lines (a run cut short by a crash) are skipped.
    pub fn load_history(&self) {
        let Some(path) = self.history_path() else {
            return;
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        let runs: Vec<TrainingRun> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        let mut history = self.history.lock();
        history.clear();
        history.extend(runs.into_iter().rev().take(MAX_HISTORY).rev());
    }

    /// The snapshot file, if models are persisted.
    pub fn snapshot_path(&self) -> Option<&Path> {
        self.snapshot.as_deref()
    }

    /// Loads the saved model, if there is one, and serves it. Returns whether a
    /// model was loaded. A snapshot that cannot serve this data directory (a
    /// damaged file, a format from a newer Tephra, items numbered differently)
    /// is not loaded: the reason is returned as an error, the server keeps the
    /// fallback chain, and the next training run replaces the file.
    pub fn load_snapshot(&self, live: &LiveState) -> Result<bool, TrainError> {
        let Some(path) = &self.snapshot else {
            return Ok(false);
        };
        if !path.exists() {
            return Ok(false);
        }
        let (model, header) = snapshot::load(path).map_err(|e| TrainError(e.to_string()))?;
        let note = |key: &str| {
            header.notes.get(key).cloned().ok_or_else(|| {
                TrainError(format!(
                    "{}: the snapshot has no `{key}` note; it was not written by the server",
                    path.display()
                ))
            })
        };
        let mut info: ModelInfo = serde_json::from_value(note(INFO_NOTE)?)
            .map_err(|e| TrainError(format!("{}: bad `{INFO_NOTE}`: {e}", path.display())))?;
        let fingerprint = note(ITEMS_NOTE)?;
        let n_items = model.n_items();
        if n_items > live.n_items()
            || fingerprint.as_str() != Some(live.item_fingerprint(n_items).as_str())
        {
            return Err(TrainError(format!(
                "{}: the model was trained on other items than this data directory holds",
                path.display()
            )));
        }
        info.origin = "snapshot".to_owned();
        // Events beyond those the model was trained on count as new for the
        // background loop; the ones it knows do not trigger a retrain.
        self.trained_at_count
            .store(info.n_events as u64, Ordering::Release);
        let promoted = Promoted::new(Arc::new(model), info, &self.retrieval);
        *self.current.write() = Some(Arc::new(promoted));
        Ok(true)
    }

    /// The promoted model, if any; cheap (one `Arc` clone under a read lock).
    pub fn current(&self) -> Option<Arc<Promoted>> {
        self.current.read().clone()
    }

    /// Positive-event count the last run started from.
    pub fn trained_at_count(&self) -> u64 {
        self.trained_at_count.load(Ordering::Acquire)
    }

    /// One full run (see the module docs) on events copied from `live`. Blocking
    /// and CPU-heavy: call it from a blocking thread. Concurrent calls wait for
    /// each other.
    pub fn train(
        &self,
        live: &RwLock<LiveState>,
        recipe: ModelRecipe,
        holdout: Holdout,
    ) -> Result<TrainOutcome, TrainError> {
        let _one_at_a_time = self.training.lock();
        let started = Instant::now();
        let (events, count, fingerprint) = {
            let live = live.read();
            let events = live.positive_events();
            let fingerprint = live.item_fingerprint(events.n_items);
            (events, live.positive_event_count(), fingerprint)
        };
        self.trained_at_count.store(count, Ordering::Release);
        let all = sequences(&events)?;
        if all.n_steps() == 0 {
            return Err(TrainError(
                "there are no positive events to train on".to_owned(),
            ));
        }
        let mut split = Protocol::UserTemporal {
            test_fraction: holdout.fraction,
        }
        .split(&all)
        .map_err(|e| TrainError(format!("cannot cut the holdout: {e}")))?;
        sample_test_users(&mut split.test, holdout.max_users);
        let options = |recipe: &ModelRecipe| EvalOptions {
            ks: vec![10, 20],
            weighting: recipe.weighting,
        };
        let judge = |recipe: &ModelRecipe| -> Result<HoldoutMetrics, TrainError> {
            let model = recipe.fit(&split.train)?;
            let metrics = evaluate(&model, &split, &options(recipe))
                .map_err(|e| TrainError(format!("evaluation failed: {e}")))?;
            Ok(HoldoutMetrics {
                users: metrics.users,
                ndcg_at_10: metrics.at_k(10).map_or(0.0, |m| m.ndcg),
                recall_at_20: metrics.at_k(20).map_or(0.0, |m| m.recall),
            })
        };
        let candidate_holdout = judge(&recipe)?;
        let current_holdout = match self.current() {
            Some(current) if current.info.recipe != recipe => Some(judge(&current.info.recipe)?),
            _ => None,
        };
        let promoted = current_holdout
            .is_none_or(|current| candidate_holdout.ndcg_at_10 >= current.ndcg_at_10);
        if promoted {
            let model = Arc::new(recipe.fit(&all)?);
            let info = ModelInfo {
                recipe: recipe.clone(),
                trained_at: Timestamp::now(),
                n_items: model.n_items(),
                n_users: all.n_users(),
                n_events: all.n_steps(),
                holdout: candidate_holdout,
                origin: trained_origin(),
            };
            self.save(&model, &info, &fingerprint);
            let promoted = Promoted::new(model, info, &self.retrieval);
            *self.current.write() = Some(Arc::new(promoted));
        }
        let outcome = TrainOutcome {
            promoted,
            candidate: recipe,
            candidate_holdout,
            current_holdout,
            n_events: all.n_steps(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        self.remember(TrainingRun {
            finished_at: Timestamp::now(),
            outcome: outcome.clone(),
        });
        tracing::info!(
            promoted,
            ndcg_at_10 = candidate_holdout.ndcg_at_10,
            recall_at_20 = candidate_holdout.recall_at_20,
            events = outcome.n_events,
            elapsed_ms = outcome.elapsed_ms,
            "model training finished"
        );
        Ok(outcome)
    }

    /// Writes the promoted model to the snapshot file. A failure is logged, not
    /// returned: the model is served either way, and only a restart before the
    /// next successful run would miss it.
    fn save(&self, model: &TrainedModel, info: &ModelInfo, fingerprint: &str) {
        let Some(path) = &self.snapshot else {
            return;
        };
        let written = (|| -> Result<(), String> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let info = serde_json::to_value(info).map_err(|e| e.to_string())?;
            let notes = BTreeMap::from([
                (INFO_NOTE.to_owned(), info),
                (ITEMS_NOTE.to_owned(), fingerprint.into()),
            ]);
            snapshot::save_with_notes(model, notes, path).map_err(|e| e.to_string())?;
            Ok(())
        })();
        match written {
            Ok(()) => tracing::info!(path = %path.display(), "model snapshot written"),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot write the model snapshot")
            }
        }
    }

    /// Whether the background loop should train now: enough new positive events,
    /// or any new event once `interval` passed since `last_run`.
    pub fn due(
        &self,
        positive_events: u64,
        settings: &TrainingSettings,
        since_last_run: Duration,
    ) -> bool {
        let new = positive_events.saturating_sub(self.trained_at_count());
        new >= settings.min_new_events.max(1)
            || (new > 0 && since_last_run >= Duration::from_secs(settings.interval_secs))
    }
}

/// How a training run judges its candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Holdout {
    /// Share of each user's latest positive events held out.
    pub fraction: f64,
    /// Users scored at most (full ranking costs a pass over the catalogue
    /// per user); the rest are left out of the holdout evaluation only.
    pub max_users: usize,
}

impl Holdout {
    /// The training settings' holdout.
    pub fn from_settings(settings: &TrainingSettings) -> Self {
        Self {
            fraction: settings.holdout_fraction,
            max_users: settings.holdout_users,
        }
    }
}

/// Keeps at most `max_users` users with test items, evenly spread over the user
/// indices (deterministic), and empties the others' test sets.
fn sample_test_users(test: &mut [Vec<u32>], max_users: usize) {
    let users = test.iter().filter(|t| !t.is_empty()).count();
    if users <= max_users {
        return;
    }
    let mut kept = 0usize;
    for (seen, items) in test.iter_mut().filter(|t| !t.is_empty()).enumerate() {
        // Keep user number `seen` when it crosses the next multiple of the stride.
        if kept < max_users && seen * max_users >= kept * users {
            kept += 1;
        } else {
            items.clear();
        }
    }
}

/// The copied events as evaluation timelines (time-ordered per user).
fn sequences(events: &PositiveEvents) -> Result<Sequences, TrainError> {
    let per_user = events
        .per_user
        .iter()
        .map(|history| {
            history
                .iter()
                .map(|&(item, at)| Step {
                    time: Timestamp::from_millis(at),
                    item,
                    value: 1.0,
                })
                .collect()
        })
        .collect();
    Sequences::new(events.n_items.max(1), per_user)
        .map_err(|e| TrainError(format!("cannot order the events: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_sampling_keeps_an_even_spread_of_users() {
        let mut test: Vec<Vec<u32>> = (0..100)
            .map(|u| if u % 2 == 0 { vec![u] } else { vec![] })
            .collect();
        sample_test_users(&mut test, 10);
        let kept: Vec<u32> = test
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| t[0])
            .collect();
        assert_eq!(kept.len(), 10);
        assert_eq!(kept, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
        let mut small: Vec<Vec<u32>> = vec![vec![1], vec![], vec![2]];
        sample_test_users(&mut small, 10);
        assert_eq!(small, vec![vec![1], vec![], vec![2]]);
    }

    #[test]
    fn scored_histories_stop_where_weights_vanish() {
        assert_eq!(
            scored_history_len(HistoryWeighting::Recency { half_life: 7.0 }),
            84
        );
        assert_eq!(
            scored_history_len(HistoryWeighting::Plain),
            MAX_SCORED_HISTORY
        );
        assert_eq!(
            scored_history_len(HistoryWeighting::Recency { half_life: 1e9 }),
            MAX_SCORED_HISTORY
        );
    }

    #[test]
    fn auto_picks_the_dense_model_for_small_catalogues_and_ials_above() {
        let settings = TrainingSettings::default();
        let small = ModelRecipe::from_settings(&settings, 1000).unwrap();
        assert_eq!(small.spec, default_serving().spec);
        let large = ModelRecipe::from_settings(&settings, AUTO_DENSE_MAX_ITEMS + 1).unwrap();
        assert!(matches!(large.spec, ModelSpec::Ials(_)));
        let bad = TrainingSettings {
            model: "nonsense".into(),
            ..TrainingSettings::default()
        };
        assert!(ModelRecipe::from_settings(&bad, 10).is_err());
    }
}
