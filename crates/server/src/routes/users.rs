//! Users: `/v1/users`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use tephra_core::{User, UserPatch};
use utoipa::ToSchema;

use super::Accepted;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{encode_cursor, parse_batch, parse_one, Batch, IdPath, PageParams, RawBody};
use crate::state::AppState;

/// One user or an array of them; an array is stored all or nothing.
#[derive(Serialize, ToSchema)]
// Only describes the accepted JSON in the API description; `extract` parses it.
#[allow(dead_code)]
#[serde(untagged)]
pub enum UsersBody {
    /// A single user.
    One(User),
    /// A batch of users, stored all or nothing.
    Many(Vec<User>),
}

/// One page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    /// Users in id order.
    pub users: Vec<User>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Adds or replaces users, all or nothing.
#[utoipa::path(
    post, path = "/v1/users", tag = "users",
    request_body(content = UsersBody, description = "One user or an array of users"),
    responses(
        (status = 200, description = "All users stored", body = Accepted),
        (status = 400, description = "Body is not JSON", body = ErrorBody),
        (status = 409, description = "The same id twice in one batch", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 422, description = "An element is invalid; nothing stored", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn upsert_users(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<Accepted>, ApiError> {
    let batch: Batch<User> = parse_batch(&body, state.config().server.max_batch)?;
    batch.check_each(User::validate)?;
    let accepted = batch.items.len();
    if accepted > 0 {
        state.upsert_users(batch.items).await?;
    }
    Ok(Json(Accepted { accepted }))
}

/// One user.
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_user(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<User>, ApiError> {
    match state.store().get_user(&id).await? {
        Some(user) => Ok(Json(user)),
        None => Err(ApiError::not_found("user", &id)),
    }
}

/// Merges attributes into a user (`null` removes a key).
#[utoipa::path(
    patch, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body(content = UserPatch, description = "Attributes to merge"),
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 400, description = "Body is not JSON", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn patch_user(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    RawBody(body): RawBody,
) -> Result<Json<User>, ApiError> {
    let patch: UserPatch = parse_one(&body)?;
    match state.patch_user(id.clone(), patch).await? {
        Some(user) => Ok(Json(user)),
        None => Err(ApiError::not_found("user", &id)),
    }
}

/// Deletes a user record. Its events stay in the log.
#[utoipa::path(
    delete, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_user(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    if state.delete_user(id.clone()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("user", &id))
    }
}

/// All users in id order, one page at a time.
#[utoipa::path(
    get, path = "/v1/users", tag = "users",
    params(
        ("limit" = Option<usize>, Query, description = "Page size, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = UserPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_users(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<UserPage>, ApiError> {
    let page = PageParams::parse(raw.as_deref())?;
    let mut users = state
        .store()
        .list_users(page.after.as_deref(), page.limit + 1)
        .await?;
    let next_cursor = if users.len() > page.limit {
        users.truncate(page.limit);
        users.last().map(|user| encode_cursor(&user.id))
    } else {
        None
    };
    Ok(Json(UserPage { users, next_cursor }))
}
