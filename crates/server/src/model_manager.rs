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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tephra_core::Timestamp;
use tephra_eval::{
    evaluate, weighted_history, EvalOptions, HistoryWeighting, Protocol, Sequences, Step,
};
use tephra_models::registry::{default_serving, fit, ModelSpec, TrainedModel};
use tephra_models::{snapshot, Recommender};
use utoipa::ToSchema;

use crate::config::TrainingSettings;
use crate::live::{LiveState, PositiveEvents};

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
    /// `training.recency_half_life`).
    pub fn from_settings(settings: &TrainingSettings) -> Result<Self, TrainError> {
        let spec: ModelSpec = settings
            .model
            .parse()
            .map_err(|e| TrainError(format!("training.model: {e}")))?;
        let weighting = if settings.recency_half_life > 0.0 {
            HistoryWeighting::Recency {
                half_life: settings.recency_half_life,
            }
        } else {
            HistoryWeighting::Plain
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
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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
        *self.current.write() = Some(Arc::new(Promoted {
            model: Arc::new(model),
            info,
        }));
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
        holdout_fraction: f64,
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
        let split = Protocol::UserTemporal {
            test_fraction: holdout_fraction,
        }
        .split(&all)
        .map_err(|e| TrainError(format!("cannot cut the holdout: {e}")))?;
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
            *self.current.write() = Some(Arc::new(Promoted { model, info }));
        }
        let outcome = TrainOutcome {
            promoted,
            candidate: recipe,
            candidate_holdout,
            current_holdout,
            n_events: all.n_steps(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
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

/// The model's scores for a user's current history, or `None` when the history
/// has nothing the model knows. Items the model was trained without (created
/// since) are left out of the history and are not scored.
pub fn score_history(promoted: &Promoted, history: &[(u32, i64)]) -> Option<Vec<f32>> {
    let n_items = promoted.model.n_items();
    let steps: Vec<Step> = history
        .iter()
        .filter(|&&(item, _)| (item as usize) < n_items)
        .map(|&(item, at)| Step {
            time: Timestamp::from_millis(at),
            item,
            value: 1.0,
        })
        .collect();
    if steps.is_empty() {
        return None;
    }
    let weighted = weighted_history(&steps, promoted.info.recipe.weighting);
    let mut scores = vec![0.0; n_items];
    promoted.model.score(&weighted, &mut scores);
    Some(scores)
}

/// Scores of every item the model knows by similarity to `item`, or `None` when
/// the model does not know `item`.
pub fn score_similar(promoted: &Promoted, item: u32) -> Option<Vec<f32>> {
    let n_items = promoted.model.n_items();
    if item as usize >= n_items {
        return None;
    }
    let mut scores = vec![f32::NEG_INFINITY; n_items];
    for (other, score) in promoted.model.similar_items(item, n_items) {
        if let Some(s) = scores.get_mut(other as usize) {
            *s = score;
        }
    }
    Some(scores)
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
