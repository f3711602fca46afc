//! Analytics: `/v1/analytics/*`, read from aggregates kept up to date event by
//! event (see [`crate::analytics`]), never by scanning the log.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::Serialize;
use tephra_core::Timestamp;
use utoipa::ToSchema;

use crate::analytics::{
    Coverage, CtrBucket, CtrBy, CtrRow, EventBucket, Interval, Range, UserBucket,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::QueryParams;
use crate::state::AppState;

/// Most items `top-items` answers.
const MAX_TOP_ITEMS: usize = 1000;

/// Events per type over time.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventSeries {
    /// Bucket width.
    pub interval: Interval,
    /// Start of the first bucket.
    pub from: Timestamp,
    /// End of the last bucket (exclusive).
    pub to: Timestamp,
    /// The configured event types (every bucket counts each).
    pub types: Vec<String>,
    /// Contiguous, zero-filled buckets.
    pub buckets: Vec<EventBucket>,
}

/// CTR by group, and overall CTR over time.
#[derive(Debug, Serialize, ToSchema)]
pub struct CtrReport {
    /// How rows are grouped.
    #[schema(value_type = String)]
    pub by: String,
    /// Bucket width of `series`.
    pub interval: Interval,
    /// One row per group, most impressions first.
    pub rows: Vec<CtrRow>,
    /// All impressions and clicks per bucket.
    pub series: Vec<CtrBucket>,
}

/// The most frequent items of one event type.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopItems {
    /// The event type counted.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Most events first.
    pub items: Vec<TopItem>,
}

/// One item of [`TopItems`].
#[derive(Debug, Serialize, ToSchema)]
pub struct TopItem {
    /// Item id.
    pub id: String,
    /// Its title, if the item has a record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Events of the type.
    pub count: u64,
}

/// Active users over time.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserSeries {
    /// Bucket width.
    pub interval: Interval,
    /// Contiguous, zero-filled buckets.
    pub buckets: Vec<UserBucket>,
}

fn interval(q: &QueryParams) -> Result<Interval, ApiError> {
    match q.single("interval")? {
        None | Some("hour") => Ok(Interval::Hour),
        Some("day") => Ok(Interval::Day),
        Some(other) => Err(ApiError::query(
            "interval",
            format!(
                "`interval` must be `hour` or `day`, got `{}`",
                other.escape_debug()
            ),
        )),
    }
}

fn time(q: &QueryParams, name: &str) -> Result<Option<Timestamp>, ApiError> {
    q.single(name)?
        .map(|text| {
            Timestamp::parse(text).map_err(|e| {
                ApiError::query(name, format!("`{name}` must be an RFC 3339 time: {e}"))
            })
        })
        .transpose()
}

/// The range `from`..`to` of the query, cut into `interval` buckets.
fn range(q: &QueryParams, interval: Interval) -> Result<Range, ApiError> {
    Range::new(interval, time(q, "from")?, time(q, "to")?, Timestamp::now())
        .map_err(|(param, message)| ApiError::query(param, message))
}

/// Events per type per hour or day.
#[utoipa::path(
    get, path = "/v1/analytics/events", tag = "analytics",
    params(
        ("interval" = Option<String>, Query, description = "`hour` (default) or `day`"),
        ("from" = Option<String>, Query, description = "RFC 3339 start (default: 48 hours or 30 days before `to`)"),
        ("to" = Option<String>, Query, description = "RFC 3339 end (default: now)"),
    ),
    responses(
        (status = 200, description = "Zero-filled buckets", body = EventSeries),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<EventSeries>, ApiError> {
    let q = QueryParams::parse(raw.as_deref(), &["interval", "from", "to"])?;
    let range = range(&q, interval(&q)?)?;
    let analytics = state.analytics().lock();
    Ok(Json(EventSeries {
        interval: range.interval,
        from: Timestamp(range.from),
        to: Timestamp(range.to),
        types: analytics.type_names().to_vec(),
        buckets: analytics.event_series(&range),
    }))
}

/// Click-through rate by scene, recall source or experiment variant, with
/// 95% intervals, and overall CTR over time.
#[utoipa::path(
    get, path = "/v1/analytics/ctr", tag = "analytics",
    params(
        ("by" = Option<String>, Query, description = "`scene` (default), `source` or `variant`"),
        ("interval" = Option<String>, Query, description = "`hour` (default) or `day`, for `series`"),
        ("from" = Option<String>, Query, description = "RFC 3339 start of `series`"),
        ("to" = Option<String>, Query, description = "RFC 3339 end of `series`"),
    ),
    responses(
        (status = 200, description = "CTR table and series", body = CtrReport),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn ctr(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<CtrReport>, ApiError> {
    let q = QueryParams::parse(raw.as_deref(), &["by", "interval", "from", "to"])?;
    let by_name = q.single("by")?.unwrap_or("scene");
    let by = match by_name {
        "scene" => CtrBy::Scene,
        "source" => CtrBy::Source,
        "variant" => CtrBy::Variant,
        other => {
            return Err(ApiError::query(
                "by",
                format!(
                    "`by` must be `scene`, `source` or `variant`, got `{}`",
                    other.escape_debug()
                ),
            ))
        }
    };
    let range = range(&q, interval(&q)?)?;
    let analytics = state.analytics().lock();
    Ok(Json(CtrReport {
        by: by_name.to_owned(),
        interval: range.interval,
        rows: analytics.ctr_by(by),
        series: analytics.ctr_series(&range),
    }))
}

/// The items with the most events of one type.
#[utoipa::path(
    get, path = "/v1/analytics/top-items", tag = "analytics",
    params(
        ("type" = Option<String>, Query, description = "Event type (default `click`)"),
        ("n" = Option<usize>, Query, description = "How many (default 10, at most 1000)"),
    ),
    responses(
        (status = 200, description = "Most events first", body = TopItems),
        (status = 400, description = "Bad query parameter or unknown type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn top_items(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<TopItems>, ApiError> {
    let q = QueryParams::parse(raw.as_deref(), &["type", "n"])?;
    let event_type = q.single("type")?.unwrap_or("click").to_owned();
    let n = q.number("n", 10, 1, MAX_TOP_ITEMS)?;
    let top = state
        .analytics()
        .lock()
        .top_items(&event_type, n)
        .ok_or_else(|| {
            ApiError::query(
                "type",
                format!(
                    "`{}` is not a configured event type",
                    event_type.escape_debug()
                ),
            )
        })?;
    let ids: Vec<(String, u64)> = {
        let live = state.live().read();
        top.iter()
            .filter_map(|&(item, count)| Some((live.item_id(item)?.to_owned(), count)))
            .collect()
    };
    let mut items = Vec::with_capacity(ids.len());
    for (id, count) in ids {
        let title = state
            .store()
            .get_item(&id)
            .await?
            .map(|item| item.title)
            .filter(|t| !t.is_empty());
        items.push(TopItem { id, title, count });
    }
    Ok(Json(TopItems { event_type, items }))
}

/// How much of the catalogue is shown to users.
#[utoipa::path(
    get, path = "/v1/analytics/coverage", tag = "analytics",
    responses(
        (status = 200, description = "Coverage", body = Coverage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn coverage(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Coverage>, ApiError> {
    QueryParams::parse(raw.as_deref(), &[])?;
    let catalogue = state.store().counts().await?.items;
    Ok(Json(state.analytics().lock().coverage(catalogue)))
}

/// New and returning users per hour or day.
#[utoipa::path(
    get, path = "/v1/analytics/users", tag = "analytics",
    params(
        ("interval" = Option<String>, Query, description = "`day` (the only one: users are counted per day)"),
        ("from" = Option<String>, Query, description = "RFC 3339 start"),
        ("to" = Option<String>, Query, description = "RFC 3339 end (default: now)"),
    ),
    responses(
        (status = 200, description = "Zero-filled buckets", body = UserSeries),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn users(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<UserSeries>, ApiError> {
    let q = QueryParams::parse(raw.as_deref(), &["interval", "from", "to"])?;
    let interval = match q.single("interval")? {
        None | Some("day") => Interval::Day,
        Some(other) => {
            return Err(ApiError::query(
                "interval",
                format!(
                    "users are counted per day (new on their first day, returning on later ones); \
                     `interval` must be `day`, got `{}`",
                    other.escape_debug()
                ),
            ))
        }
    };
    let range = range(&q, interval)?;
    Ok(Json(UserSeries {
        interval,
        buckets: state.analytics().lock().user_series(&range),
    }))
}
