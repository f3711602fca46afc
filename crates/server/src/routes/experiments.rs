//! A/B experiments: `/v1/experiments` defines, lists, starts, stops and
//! deletes them, and answers each one's results with intervals and p-values.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use tephra_core::Timestamp;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::experiments::{self, Experiment, Loaded, NewExperiment, Results, Status};
use crate::extract::{parse_one, IdPath, RawBody};
use crate::state::AppState;

/// Every experiment.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentList {
    /// By name.
    pub experiments: Vec<Experiment>,
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound {
        field: None,
        message: format!(
            "no experiment is named `{}`; GET /v1/experiments lists them",
            name.escape_debug()
        ),
    }
}

/// The experiment `name`, or the 404 that says how to list them.
fn find(state: &AppState, name: &str) -> Result<std::sync::Arc<Loaded>, ApiError> {
    state.experiments().get(name).ok_or_else(|| not_found(name))
}

fn refused(e: experiments::Invalid) -> ApiError {
    ApiError::InvalidField {
        field: Some(e.field),
        message: e.message,
    }
}

/// Refuses to run a second experiment on a scene: a user would be in both,
/// and neither could tell what caused a difference.
fn check_scene_free(state: &AppState, experiment: &Experiment) -> Result<(), ApiError> {
    match state
        .experiments()
        .running_on(&experiment.scene, &experiment.name)
    {
        Some(other) => Err(ApiError::Conflict {
            field: Some("scene".to_owned()),
            message: format!(
                "experiment `{}` already runs on scene `{}`; stop it first",
                other.experiment.name, experiment.scene
            ),
        }),
        None => Ok(()),
    }
}

/// Stores the experiment, then serves it.
async fn save(state: &AppState, loaded: Loaded) -> Result<Experiment, ApiError> {
    let doc = serde_json::to_value(&loaded.experiment).map_err(|e| {
        tracing::error!(error = %e, "cannot encode an experiment");
        ApiError::Internal
    })?;
    state
        .store()
        .put_experiment(&loaded.experiment.name, &doc)
        .await?;
    let experiment = loaded.experiment.clone();
    state.experiments().insert(loaded);
    state.publish(|| crate::cluster::Change::Experiments).await;
    Ok(experiment)
}

/// Defines an experiment on a scene; with `"start": true` it starts at once.
#[utoipa::path(
    post, path = "/v1/experiments", tag = "experiments",
    request_body = NewExperiment,
    responses(
        (status = 201, description = "Created", body = Experiment),
        (status = 400, description = "The body is not JSON or not UTF-8", body = ErrorBody),
        (status = 409, description = "The name is taken, or another experiment runs on the scene", body = ErrorBody),
        (status = 422, description = "Invalid definition; `field` names the setting", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Experiment>), ApiError> {
    let spec: NewExperiment = parse_one(&body)?;
    let (experiment, scenes) = spec
        .build(&state.config().scenes, Timestamp::now())
        .map_err(refused)?;
    let _edit = state.experiments().edits.lock().await;
    if state.experiments().get(&experiment.name).is_some() {
        return Err(ApiError::Conflict {
            field: Some("name".to_owned()),
            message: format!(
                "an experiment named `{}` exists; choose another name or delete it",
                experiment.name
            ),
        });
    }
    // Events name their experiment; a new one under a used name would inherit
    // the old one's users and figures.
    if state
        .analytics()
        .lock()
        .experiment_units(&experiment.name)
        .is_some()
    {
        return Err(ApiError::Conflict {
            field: Some("name".to_owned()),
            message: format!(
                "events of an earlier experiment named `{}` are stored; choose another name",
                experiment.name
            ),
        });
    }
    if experiment.status == Status::Running {
        check_scene_free(&state, &experiment)?;
    }
    let saved = save(&state, Loaded { experiment, scenes }).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// Every experiment, by name.
#[utoipa::path(
    get, path = "/v1/experiments", tag = "experiments",
    responses((status = 200, description = "The experiments", body = ExperimentList)),
    security(("api_key" = []))
)]
pub async fn list(State(state): State<AppState>) -> Json<ExperimentList> {
    Json(ExperimentList {
        experiments: state
            .experiments()
            .all()
            .iter()
            .map(|l| l.experiment.clone())
            .collect(),
    })
}

/// One experiment's definition.
#[utoipa::path(
    get, path = "/v1/experiments/{name}", tag = "experiments",
    params(("name" = String, Path, description = "Experiment name")),
    responses(
        (status = 200, description = "The experiment", body = Experiment),
        (status = 404, description = "No such experiment", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    IdPath(name): IdPath,
) -> Result<Json<Experiment>, ApiError> {
    let loaded = find(&state, &name)?;
    Ok(Json(loaded.experiment.clone()))
}

/// Starts (or restarts) an experiment: from now on its scene's requests are
/// split between the variants.
#[utoipa::path(
    post, path = "/v1/experiments/{name}/start", tag = "experiments",
    params(("name" = String, Path, description = "Experiment name")),
    responses(
        (status = 200, description = "Running", body = Experiment),
        (status = 404, description = "No such experiment", body = ErrorBody),
        (status = 409, description = "Another experiment runs on the scene", body = ErrorBody),
        (status = 422, description = "The experiment no longer fits the configured scene", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn start(
    State(state): State<AppState>,
    IdPath(name): IdPath,
) -> Result<Json<Experiment>, ApiError> {
    let _edit = state.experiments().edits.lock().await;
    let loaded = find(&state, &name)?;
    let mut experiment = loaded.experiment.clone();
    if experiment.status == Status::Running {
        return Ok(Json(experiment));
    }
    check_scene_free(&state, &experiment)?;
    let base = state
        .config()
        .scenes
        .get(&experiment.scene)
        .ok_or_else(|| ApiError::InvalidField {
            field: Some("scene".to_owned()),
            message: format!(
                "scene `{}` is no longer configured; this experiment cannot run",
                experiment.scene
            ),
        })?;
    let scenes = experiments::variant_scenes(base, &experiment.variants).map_err(refused)?;
    experiment.status = Status::Running;
    experiment.started_at = Some(Timestamp::now());
    experiment.stopped_at = None;
    Ok(Json(save(&state, Loaded { experiment, scenes }).await?))
}

/// Stops an experiment: its scene answers with its own settings again; the
/// results stay readable.
#[utoipa::path(
    post, path = "/v1/experiments/{name}/stop", tag = "experiments",
    params(("name" = String, Path, description = "Experiment name")),
    responses(
        (status = 200, description = "Stopped", body = Experiment),
        (status = 404, description = "No such experiment", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn stop(
    State(state): State<AppState>,
    IdPath(name): IdPath,
) -> Result<Json<Experiment>, ApiError> {
    let _edit = state.experiments().edits.lock().await;
    let loaded = find(&state, &name)?;
    if loaded.experiment.status != Status::Running {
        return Ok(Json(loaded.experiment.clone()));
    }
    let mut experiment = loaded.experiment.clone();
    experiment.status = Status::Stopped;
    experiment.stopped_at = Some(Timestamp::now());
    let scenes = loaded.scenes.clone();
    Ok(Json(save(&state, Loaded { experiment, scenes }).await?))
}

/// Deletes an experiment's definition (its attributed events stay in the log).
#[utoipa::path(
    delete, path = "/v1/experiments/{name}", tag = "experiments",
    params(("name" = String, Path, description = "Experiment name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such experiment", body = ErrorBody),
        (status = 409, description = "It is running; stop it first", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    IdPath(name): IdPath,
) -> Result<StatusCode, ApiError> {
    let _edit = state.experiments().edits.lock().await;
    let loaded = find(&state, &name)?;
    if loaded.experiment.status == Status::Running {
        return Err(ApiError::Conflict {
            field: None,
            message: format!("experiment `{name}` is running; stop it before deleting it"),
        });
    }
    state.store().delete_experiment(&name).await?;
    state.publish(|| crate::cluster::Change::Experiments).await;
    state.experiments().remove(&name);
    Ok(StatusCode::NO_CONTENT)
}

/// Per variant: users, impressions, clicks, CTR, conversion, revenue per user
/// and dwell, each with a 95% interval; differences to the control with
/// p-values; the CTR ratio to the control; and a sample-ratio-mismatch check.
#[utoipa::path(
    get, path = "/v1/experiments/{name}/results", tag = "experiments",
    params(("name" = String, Path, description = "Experiment name")),
    responses(
        (status = 200, description = "Results", body = Results),
        (status = 404, description = "No such experiment", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn results(
    State(state): State<AppState>,
    IdPath(name): IdPath,
) -> Result<Json<Results>, ApiError> {
    let loaded = find(&state, &name)?;
    let analytics = state.analytics().lock();
    Ok(Json(experiments::results(
        &loaded.experiment,
        analytics.experiment_units(&name),
    )))
}
