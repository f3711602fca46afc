//! The catalogue: `/v1/items`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use tephra_core::{Item, ItemPatch};
use utoipa::ToSchema;

use super::Accepted;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{encode_cursor, parse_batch, parse_one, Batch, IdPath, PageParams, RawBody};
use crate::state::AppState;

/// One item or an array of them; an array is stored all or nothing.
#[derive(Serialize, ToSchema)]
// Only describes the accepted JSON in the API description; `extract` parses it.
#[allow(dead_code)]
#[serde(untagged)]
pub enum ItemsBody {
    /// A single item.
    One(Item),
    /// A batch of items, stored all or nothing.
    Many(Vec<Item>),
}

/// One page of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemPage {
    /// Items in id order.
    pub items: Vec<Item>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Adds or replaces items.
///
/// A batch is stored all or nothing: if one element is invalid, the answer names
/// it (`[3].id`) and nothing is stored.
#[utoipa::path(
    post, path = "/v1/items", tag = "items",
    request_body(content = ItemsBody, description = "One item or an array of items"),
    responses(
        (status = 200, description = "All items stored", body = Accepted),
        (status = 400, description = "Body is not JSON", body = ErrorBody),
        (status = 409, description = "The same id twice in one batch", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 422, description = "An element is invalid; nothing stored", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn upsert_items(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<Accepted>, ApiError> {
    let batch: Batch<Item> = parse_batch(&body, state.config().server.max_batch)?;
    batch.check_each(Item::validate)?;
    let accepted = batch.items.len();
    if accepted > 0 {
        state.upsert_items(batch.items).await?;
    }
    Ok(Json(Accepted { accepted }))
}

/// One item.
#[utoipa::path(
    get, path = "/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    responses(
        (status = 200, description = "The item", body = Item),
        (status = 404, description = "No such item", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_item(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<Item>, ApiError> {
    match state.store().get_item(&id).await? {
        Some(item) => Ok(Json(item)),
        None => Err(ApiError::not_found("item", &id)),
    }
}

/// Changes some fields of an item; absent fields stay as they are.
#[utoipa::path(
    patch, path = "/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    request_body(content = ItemPatch, description = "Fields to change"),
    responses(
        (status = 200, description = "The updated item", body = Item),
        (status = 400, description = "Body is not JSON", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn patch_item(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    RawBody(body): RawBody,
) -> Result<Json<Item>, ApiError> {
    let patch: ItemPatch = parse_one(&body)?;
    match state.patch_item(id.clone(), patch).await? {
        Some(item) => Ok(Json(item)),
        None => Err(ApiError::not_found("item", &id)),
    }
}

/// Deletes an item. Its events stay in the log; it is no longer recommended.
#[utoipa::path(
    delete, path = "/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such item", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_item(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    if state.delete_item(id.clone()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("item", &id))
    }
}

/// The catalogue in id order, one page at a time.
#[utoipa::path(
    get, path = "/v1/items", tag = "items",
    params(
        ("limit" = Option<usize>, Query, description = "Page size, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = ItemPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_items(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ItemPage>, ApiError> {
    let page = PageParams::parse(raw.as_deref())?;
    // One more than asked tells whether another page exists.
    let mut items = state
        .store()
        .list_items(page.after.as_deref(), page.limit + 1)
        .await?;
    let next_cursor = if items.len() > page.limit {
        items.truncate(page.limit);
        items.last().map(|item| encode_cursor(&item.id))
    } else {
        None
    };
    Ok(Json(ItemPage { items, next_cursor }))
}
