//! The promoted model: `GET /v1/model` shows it, `POST /v1/admin/train` trains
//! a candidate now and promotes it when it is not worse.

use axum::extract::State;
use axum::Json;

use crate::error::{ApiError, ErrorBody};
use crate::model_manager::{ModelInfo, TrainOutcome};
use crate::state::AppState;

/// What the served model is, how it was trained and how it scored on its holdout.
#[utoipa::path(
    get, path = "/v1/model", tag = "models",
    responses(
        (status = 200, description = "The promoted model", body = ModelInfo),
        (status = 404, description = "No model has been trained yet", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn current_model(State(state): State<AppState>) -> Result<Json<ModelInfo>, ApiError> {
    match state.models().current() {
        Some(promoted) => Ok(Json(promoted.info.clone())),
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
    state
        .train_now()
        .await
        .map(Json)
        .map_err(|e| ApiError::NotReady(format!("training did not produce a model: {e}")))
}
