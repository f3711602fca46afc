//! Recommendations for one user: `/v1/recommend/{user_id}`.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::Serialize;
use tephra_core::{validate_id, Timestamp};
use utoipa::ToSchema;

use super::lists::list_query;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdPath, RankParams};
use crate::live::{LiveState, Scored, Source};
use crate::model_manager::score_history;
use crate::state::AppState;

/// A recommendation response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendations {
    /// Identifies this response; send it back as an event's `request_id` to tie
    /// clicks to what was shown.
    pub request_id: String,
    /// Best first.
    pub items: Vec<Recommendation>,
}

impl Recommendations {
    /// A response with a fresh `request_id`: the ranked items mapped back to
    /// their string ids.
    pub(crate) fn new(live: &LiveState, ranked: Vec<Scored>) -> Self {
        let items = ranked
            .into_iter()
            .filter_map(|s| {
                Some(Recommendation {
                    id: live.item_id(s.item)?.to_owned(),
                    score: s.score,
                    source: s.source,
                })
            })
            .collect();
        Self {
            request_id: uuid::Uuid::now_v7().to_string(),
            items,
        }
    }
}

/// One recommended item.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendation {
    /// Item id.
    pub id: String,
    /// Score within its source (sources are not comparable with each other).
    pub score: f64,
    /// Which strategy produced the item.
    pub source: Source,
}

/// Items for a user. When a model is promoted and the user has positive events,
/// the model scores the user's current history (so the next request already
/// reflects an event) and heads the list; trending, then popular, then latest
/// fill the rest. Never an item the user interacted with, a hidden or expired
/// one, or an excluded one. An unknown user gets the non-personalized chain
/// (cold start), not an error.
#[utoipa::path(
    get, path = "/v1/recommend/{user_id}", tag = "recommend",
    params(
        ("user_id" = String, Path, description = "User id; unknown users get non-personalized items"),
        ("n" = Option<usize>, Query, description = "How many items (default `recommend.default_n`)"),
        ("offset" = Option<usize>, Query, description = "How many top items to skip"),
        ("category" = Option<Vec<String>>, Query, description = "Repeatable; every one must be on the item"),
        ("exclude" = Option<Vec<String>>, Query, description = "Repeatable; item ids never to return"),
    ),
    responses(
        (status = 200, description = "Recommended items", body = Recommendations),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 422, description = "The user id is not a valid id", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn recommend(
    State(state): State<AppState>,
    IdPath(user_id): IdPath,
    RawQuery(raw): RawQuery,
) -> Result<Json<Recommendations>, ApiError> {
    validate_id("user_id", &user_id)?;
    let params = RankParams::for_recommend(raw.as_deref(), &state.config().recommend)?;
    let promoted = state.models().current();
    let live = state.live().read();
    let user = live.user_index(&user_id);
    let query = list_query(&live, params);
    let scores = match (&promoted, user) {
        (Some(promoted), Some(user)) => score_history(promoted, &live.user_history(user)),
        _ => None,
    };
    let ranked = live.recommend_scored(user, scores.as_deref(), &query, Timestamp::now());
    Ok(Json(Recommendations::new(&live, ranked)))
}
