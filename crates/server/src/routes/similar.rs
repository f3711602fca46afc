//! Items like a given item: `GET /v1/items/{id}/similar`.

use axum::extract::{RawQuery, State};
use axum::Json;
use tephra_core::Timestamp;

use super::lists::list_query;
use super::recommend::Recommendations;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdPath, RankParams};
use crate::model_manager::score_similar;
use crate::state::AppState;

/// Items similar to an item by the promoted model (source `model`), then by
/// content — BM25 over title, text, tags and categories, up to date with every
/// catalogue write, so a new item is similar to its neighbours at once (source
/// `content`) — then the most popular items sharing a category with it (source
/// `popular`). Never the item itself, nor a hidden, expired or deleted item.
#[utoipa::path(
    get, path = "/v1/items/{id}/similar", tag = "recommend",
    params(
        ("id" = String, Path, description = "Item id"),
        ("n" = Option<usize>, Query, description = "How many items (default `recommend.default_n`)"),
        ("offset" = Option<usize>, Query, description = "How many top items to skip"),
        ("category" = Option<Vec<String>>, Query, description = "Repeatable; every one must be on the item"),
    ),
    responses(
        (status = 200, description = "Similar items", body = Recommendations),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn similar(
    State(state): State<AppState>,
    IdPath(item_id): IdPath,
    RawQuery(raw): RawQuery,
) -> Result<Json<Recommendations>, ApiError> {
    let params = RankParams::for_list(raw.as_deref(), &state.config().recommend)?;
    let promoted = state.models().current();
    let live = state.live().read();
    let item = live
        .item_index(&item_id)
        .filter(|&i| live.has_item(i))
        .ok_or_else(|| ApiError::not_found("item", &item_id))?;
    let query = list_query(&live, params);
    let scores = promoted.as_ref().and_then(|p| score_similar(p, item));
    let ranked = live.similar_scored(item, scores.as_deref(), &query, Timestamp::now());
    Ok(Json(Recommendations::new(&live, ranked)))
}
