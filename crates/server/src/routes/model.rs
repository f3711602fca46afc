//! The promoted model: `GET /v1/model` shows it, `POST /v1/admin/train` trains
//! a candidate now and promotes it when it is not worse.

use axum::extract::State;
use axum::Json;

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::model_manager::{ModelInfo, TrainOutcome, TrainingRun};
use crate::state::AppState;

/// The served model: what it is, and how it serves.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServedModel {
    /// How it was made and how it scored.
    #[serde(flatten)]
    pub info: ModelInfo,
    /// How its items are retrieved: `exact` or `ivf` for factor models, absent
    /// for models that score the whole catalogue.
    pub retrieval: Option<String>,
    /// Items created since training that have a folded-in vector.
    pub folded_in_items: usize,
}

/// What the served model is, how it was trained and how it scored on its holdout.
#[utoipa::path(
    get, path = "/v1/model", tag = "models",
    responses(
        (status = 200, description = "The promoted model", body = ServedModel),
        (status = 404, description = "No model has been trained yet", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn current_model(State(state): State<AppState>) -> Result<Json<ServedModel>, ApiError> {
    match state.models().current() {
        Some(promoted) => Ok(Json(ServedModel {
            info: promoted.info.clone(),
            retrieval: promoted.retriever_kind().map(str::to_owned),
            folded_in_items: promoted.folded_in_items(),
        })),
        None => Err(ApiError::NotFound {
            field: None,
            message: "no model has been trained yet; POST /v1/admin/train trains one".to_owned(),
        }),
    }
}

/// Trains the configured model on every positive event now, judges it on a
/// holdout against the served model and promotes it when it is not worse.
/// Answers when the run is over; requests keep being served meanwhile.
#[utoipa::path(
    post, path = "/v1/admin/train", tag = "models",
    responses(
        (status = 200, description = "The run's outcome (promoted or not, metrics)", body = TrainOutcome),
        (status = 503, description = "Nothing to train on yet", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn train(State(state): State<AppState>) -> Result<Json<TrainOutcome>, ApiError> {
    let outcome = state
        .train_now()
        .await
        .map_err(|e| ApiError::NotReady(format!("training did not produce a model: {e}")))?;
    if outcome.promoted {
        crate::cluster::announce_promoted(&state).await;
    }
    Ok(Json(outcome))
}

/// The latest training runs on this data directory.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrainingHistory {
    /// Oldest first (the latest 100).
    pub runs: Vec<TrainingRun>,
}

/// The latest training runs (kept beside the model snapshot, so they survive
/// restarts): when, which recipe, promoted or not, holdout metrics of the
/// candidate and of the served model.
#[utoipa::path(
    get, path = "/v1/model/history", tag = "models",
    responses((status = 200, description = "Training runs, oldest first", body = TrainingHistory)),
    security(("api_key" = []))
)]
pub async fn history(State(state): State<AppState>) -> Json<TrainingHistory> {
    Json(TrainingHistory {
        runs: state.models().history(),
    })
}
