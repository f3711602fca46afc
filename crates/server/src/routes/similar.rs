//! Items like a given item: `GET /v1/items/{id}/similar`.

use axum::extract::{RawQuery, State};
use axum::Json;

use super::recommend::{answer, Ask, Recommendations};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdPath, PipelineParams};
use crate::pipeline::scene::SIMILAR_SCENE;
use crate::state::AppState;

/// Items similar to an item, ranked by a scene's pipeline (`item_page` by
/// default): the promoted model's neighbours (source `item_to_item`) and
/// neighbours by content — BM25 over title, text, tags and categories, up to
/// date with every catalogue write, so a new item is similar to its neighbours
/// at once (source `content`) — then popular items. Never the item itself,
/// nor a hidden, expired, deleted or excluded item.
#[utoipa::path(
    get, path = "/v1/items/{id}/similar", tag = "recommend",
    params(
        ("id" = String, Path, description = "Item id"),
        ("n" = Option<usize>, Query, description = "How many items (default `recommend.default_n`)"),
        ("offset" = Option<usize>, Query, description = "How many top items to skip (not with `request_id`)"),
        ("category" = Option<Vec<String>>, Query, description = "Repeatable; every one must be on the item"),
        ("exclude" = Option<Vec<String>>, Query, description = "Repeatable; item ids never to return"),
        ("scene" = Option<String>, Query, description = "A configured scene (default `item_page`)"),
        ("request_id" = Option<String>, Query, description = "Continue this pagination session"),
        ("explain" = Option<bool>, Query, description = "Return each item's sources and score parts"),
    ),
    responses(
        (status = 200, description = "Similar items", body = Recommendations),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 404, description = "No such item, scene or session", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn similar(
    State(state): State<AppState>,
    IdPath(item_id): IdPath,
    RawQuery(raw): RawQuery,
) -> Result<Json<Recommendations>, ApiError> {
    let params = PipelineParams::parse(raw.as_deref(), &state.config().recommend)?;
    let mut ask = Ask::from_params(format!("item:{item_id}"), params, SIMILAR_SCENE);
    ask.context_item = Some(item_id);
    Ok(Json(answer(&state, ask)?))
}
