//! Non-personalized ranked lists: `/v1/popular`, `/v1/trending`, `/v1/latest`.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::Serialize;
use tephra_core::Timestamp;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::RankParams;
use crate::live::{ListQuery, LiveState};
use crate::state::AppState;

/// A ranked list of items.
#[derive(Debug, Serialize, ToSchema)]
pub struct RankedList {
    /// Best first.
    pub items: Vec<RankedItem>,
}

/// One item of a ranked list.
#[derive(Debug, Serialize, ToSchema)]
pub struct RankedItem {
    /// Item id.
    pub id: String,
    /// The list's score: events for popular, time-decayed events for trending,
    /// publish time in Unix seconds for latest.
    pub score: f64,
}

/// Turns request parameters into the live state's query (ids to indices;
/// unknown excluded ids cannot be returned anyway and are dropped).
pub(crate) fn list_query(live: &LiveState, params: RankParams) -> ListQuery {
    ListQuery {
        n: params.n,
        offset: params.offset,
        exclude: params
            .exclude
            .iter()
            .filter_map(|id| live.item_index(id))
            .collect(),
        categories: params.categories,
    }
}

fn ranked(
    state: &AppState,
    raw: Option<String>,
    rank: fn(&LiveState, &ListQuery, Timestamp) -> Vec<(u32, f64)>,
) -> Result<Json<RankedList>, ApiError> {
    let params = RankParams::for_list(raw.as_deref(), &state.config().recommend)?;
    let live = state.live().read();
    let query = list_query(&live, params);
    let items = rank(&live, &query, Timestamp::now())
        .into_iter()
        .filter_map(|s| {
            Some(RankedItem {
                id: live.item_id(s.0)?.to_owned(),
                score: s.1,
            })
        })
        .collect();
    Ok(Json(RankedList { items }))
}

/// Items with the most positive events overall.
#[utoipa::path(
    get, path = "/v1/popular", tag = "lists",
    params(
        ("n" = Option<usize>, Query, description = "How many items (default `recommend.default_n`)"),
        ("offset" = Option<usize>, Query, description = "How many top items to skip"),
        ("category" = Option<Vec<String>>, Query, description = "Repeatable; every one must be on the item"),
    ),
    responses(
        (status = 200, description = "Most popular first", body = RankedList),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn popular(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RankedList>, ApiError> {
    ranked(&state, raw, LiveState::popular)
}

/// Items with the most positive events recently (counts decay with the
/// configured half-life).
#[utoipa::path(
    get, path = "/v1/trending", tag = "lists",
    params(
        ("n" = Option<usize>, Query, description = "How many items (default `recommend.default_n`)"),
        ("offset" = Option<usize>, Query, description = "How many top items to skip"),
        ("category" = Option<Vec<String>>, Query, description = "Repeatable; every one must be on the item"),
    ),
    responses(
        (status = 200, description = "Most trending first", body = RankedList),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn trending(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RankedList>, ApiError> {
    ranked(&state, raw, LiveState::trending)
}

/// Most recently published items.
#[utoipa::path(
    get, path = "/v1/latest", tag = "lists",
    params(
        ("n" = Option<usize>, Query, description = "How many items (default `recommend.default_n`)"),
        ("offset" = Option<usize>, Query, description = "How many top items to skip"),
        ("category" = Option<Vec<String>>, Query, description = "Repeatable; every one must be on the item"),
    ),
    responses(
        (status = 200, description = "Newest first", body = RankedList),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn latest(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RankedList>, ApiError> {
    ranked(&state, raw, LiveState::latest)
}
