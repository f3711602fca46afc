//! Events: `POST /v1/events` and a user's history, `GET /v1/users/{id}/events`.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::Serialize;
use tephra_core::Event;
use utoipa::ToSchema;

use super::Accepted;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{parse_batch, Batch, EventListParams, IdPath, RawBody};
use crate::state::AppState;

/// One event or an array of them; an array is stored all or nothing.
#[derive(Serialize, ToSchema)]
// Only describes the accepted JSON in the API description; `extract` parses it.
#[allow(dead_code)]
#[serde(untagged)]
pub enum EventsBody {
    /// A single event.
    One(Event),
    /// A batch of events, stored all or nothing.
    Many(Vec<Event>),
}

/// A user's events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserEvents {
    /// The events, newest first.
    pub events: Vec<Event>,
}

/// Records what users did. The answer comes once the events are durable, and
/// the next recommendation already reflects them.
///
/// Users and items never seen before are created as bare records (unless
/// `server.create_unknown_items` is off, then an unknown item is a 404).
#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    request_body(content = EventsBody, description = "One event or an array of events"),
    responses(
        (status = 200, description = "All events stored", body = Accepted),
        (status = 400, description = "Body is not JSON", body = ErrorBody),
        (status = 404, description = "Unknown item (when unknown items are not created)", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 422, description = "An element is invalid; nothing stored", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn append_events(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<Accepted>, ApiError> {
    let batch: Batch<Event> = parse_batch(&body, state.config().server.max_batch)?;
    let types = &state.config().events;
    batch.check_each(|event| event.validate(types).map(drop))?;
    let accepted = if batch.items.is_empty() {
        0
    } else {
        state.append_events(batch).await?
    };
    crate::metrics::record_events_ingested(accepted);
    Ok(Json(Accepted { accepted }))
}

/// A user's events, newest first.
#[utoipa::path(
    get, path = "/v1/users/{id}/events", tag = "events",
    params(
        ("id" = String, Path, description = "User id"),
        ("limit" = Option<usize>, Query, description = "Most events to return, 1–1000 (default 100)"),
        ("type" = Option<String>, Query, description = "Only events of this type"),
    ),
    responses(
        (status = 200, description = "The events", body = UserEvents),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn user_events(
    State(state): State<AppState>,
    IdPath(user_id): IdPath,
    RawQuery(raw): RawQuery,
) -> Result<Json<UserEvents>, ApiError> {
    let params = EventListParams::parse(raw.as_deref(), &state.config().events)?;
    let seqs = {
        let live = state.live().read();
        let Some(user) = live.user_index(&user_id) else {
            return Err(ApiError::not_found("user", &user_id));
        };
        live.user_event_seqs(user, params.limit, params.event_type.as_deref())
    };
    let stored = state.store().events_by_seq(&seqs).await?;
    let live = state.live().read();
    let events = stored
        .into_iter()
        .filter_map(|e| {
            let Some(item_id) = live.item_id(e.item) else {
                tracing::warn!(
                    seq = e.seq,
                    item = e.item,
                    "stored event names an item index without an id"
                );
                return None;
            };
            Some(Event {
                user_id: user_id.clone(),
                item_id: item_id.to_owned(),
                event_type: e.event_type,
                value: e.value,
                timestamp: e.timestamp,
                request_id: e.request_id,
                scene: e.scene,
                position: e.position,
                attribution: e.attribution,
            })
        })
        .collect();
    Ok(Json(UserEvents { events }))
}
