//! Recommendations: `GET /v1/recommend/{user_id}`, `POST /v1/recommend`, and
//! the shared path `GET /v1/items/{id}/similar` takes, all through a scene's
//! recall → rank → rerank pipeline.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tephra_core::{validate_id, EventKind, Timestamp};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{parse_one, IdPath, PipelineParams, RawBody};
use crate::pipeline::scene::{SourceKind, DEFAULT_SCENE};
use crate::pipeline::{self, BlendRanker, Placement, Ranked, Ranker, Request, Source};
use crate::state::AppState;
use tephra_models::Recommender as _;

/// A recommendation response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendations {
    /// Identifies this response and its pagination session: send it back as
    /// `request_id` for the next page (which never repeats an item of this
    /// session), and as an event's `request_id` to tie clicks to what was shown.
    pub request_id: String,
    /// The scene that ranked the items.
    pub scene: String,
    /// The experiment and variant that answered, when an experiment runs on
    /// the scene.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ExperimentArm>,
    /// Best first.
    pub items: Vec<Recommendation>,
    /// With `explain=true`: how the list was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<ResponseExplain>,
}

/// The experiment arm a response was answered with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentArm {
    /// Experiment name.
    pub name: String,
    /// The variant the user is assigned to.
    pub variant: String,
}

/// One recommended item.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendation {
    /// Item id.
    pub id: String,
    /// The ranker's score (0 for items placed by a rule: pinned, explored, filled).
    pub score: f64,
    /// The source that contributed most to the score, or `pinned`.
    pub source: Source,
    /// With `explain=true`: the item's sources and score parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<ItemExplain>,
}

/// How one item got its place.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemExplain {
    /// Every source that proposed the item.
    pub sources: Vec<String>,
    /// Per source, the item's score normalized to 0..1 among that source's candidates.
    pub parts: BTreeMap<String, f32>,
    /// Per source (and `freshness`), what it added to the score.
    pub contributions: BTreeMap<String, f64>,
    /// `2^(-age / half-life)` of the publish time.
    pub freshness: f32,
    /// How often the item was shown to the user before (each time scales its
    /// score by the scene's `impression_decay`).
    pub shown: u16,
    /// How the item got its position.
    pub placement: Placement,
}

/// How a list was made.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseExplain {
    /// The ranker's name.
    pub ranker: String,
    /// The promoted model's name, when one is served.
    pub model: Option<String>,
    /// How the model's items were retrieved (`exact`, `ivf`), for factor models.
    pub retrieval: Option<String>,
    /// Positive events in the history the user was scored from.
    pub history_events: usize,
    /// Items answered earlier in this session (never repeated).
    pub session_items: usize,
}

/// One event of an anonymous session (`POST /v1/recommend`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionEvent {
    /// The item.
    pub item_id: String,
    /// A configured event type; the first positive type when absent.
    #[serde(default)]
    pub event_type: Option<String>,
}

/// What the request is about.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendContext {
    /// The item being viewed: neighbour sources start from it, and it is not answered.
    #[serde(default)]
    pub item_id: Option<String>,
}

/// Filters of `POST /v1/recommend`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendFilters {
    /// Every one must be on an answered item.
    #[serde(default)]
    pub categories: Vec<String>,
}

/// The body of `POST /v1/recommend`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendBody {
    /// A known or new user; omit for an anonymous session.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Events of the current session, oldest first, added to the user's
    /// history (or forming it, for an anonymous session); their items are not answered.
    #[serde(default)]
    pub events: Vec<SessionEvent>,
    /// The scene (default `home`).
    #[serde(default)]
    pub scene: Option<String>,
    /// How many items (default `recommend.default_n`).
    #[serde(default)]
    pub n: Option<usize>,
    /// How many top items to skip (not with `request_id`).
    #[serde(default)]
    pub offset: Option<usize>,
    /// Continue this pagination session.
    #[serde(default)]
    pub request_id: Option<String>,
    /// What the request is about.
    #[serde(default)]
    pub context: RecommendContext,
    /// Items to rank (unknown ids are ignored); the scene's `candidates` source weighs them.
    #[serde(default)]
    pub candidates: Vec<String>,
    /// Item ids never to answer.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Filters on answered items.
    #[serde(default)]
    pub filters: RecommendFilters,
    /// Return each item's sources and score parts.
    #[serde(default)]
    pub explain: bool,
}

/// Everything a pipeline route asks, after parsing.
pub(crate) struct Ask {
    /// Whose session this is: `user:<id>`, `item:<id>` or `anonymous`.
    pub owner: String,
    pub user_id: Option<String>,
    pub events: Vec<SessionEvent>,
    pub context_item: Option<String>,
    pub scene: Option<String>,
    pub default_scene: &'static str,
    pub n: usize,
    pub offset: usize,
    pub offset_given: bool,
    pub request_id: Option<String>,
    pub categories: Vec<String>,
    pub exclude: Vec<String>,
    pub candidates: Vec<String>,
    pub explain: bool,
}

impl Ask {
    /// A route's query parameters as an ask.
    pub(crate) fn from_params(
        owner: String,
        params: PipelineParams,
        default_scene: &'static str,
    ) -> Self {
        Self {
            owner,
            user_id: None,
            events: Vec::new(),
            context_item: None,
            scene: params.scene,
            default_scene,
            n: params.rank.n,
            offset: params.rank.offset,
            offset_given: params.offset_given,
            request_id: params.request_id,
            categories: params.rank.categories,
            exclude: params.rank.exclude,
            candidates: Vec::new(),
            explain: params.explain,
        }
    }
}

fn field_error(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field: Some(field.to_owned()),
        message: message.into(),
    }
}

/// Runs the ask through its scene's pipeline and answers it; records the
/// answered items in the pagination session.
pub(crate) fn answer(state: &AppState, ask: Ask) -> Result<Recommendations, ApiError> {
    let config = state.config();
    let session = match &ask.request_id {
        Some(id) => {
            if ask.offset_given {
                return Err(ApiError::query(
                    "offset",
                    "`offset` cannot be combined with `request_id`: a session continues where its last page ended",
                ));
            }
            let session = state.sessions().get(id).ok_or_else(|| ApiError::NotFound {
                field: Some("request_id".to_owned()),
                message: format!(
                    "no open session has the request_id `{}` (sessions expire 30 minutes after their last page); omit request_id to start a new one",
                    id.escape_debug()
                ),
            })?;
            if session.owner != ask.owner {
                return Err(ApiError::query(
                    "request_id",
                    "this request_id belongs to another user or item; omit it to start a new session",
                ));
            }
            Some(session)
        }
        None => None,
    };
    let scene_name = match (&ask.scene, &session) {
        (Some(asked), Some(s)) if *asked != s.scene => {
            return Err(ApiError::query(
                "scene",
                format!("this session ranks with the scene `{}`", s.scene),
            ))
        }
        (Some(asked), _) => asked.clone(),
        (None, Some(s)) => s.scene.clone(),
        (None, None) => ask.default_scene.to_owned(),
    };
    let configured = config
        .scenes
        .get(&scene_name)
        .ok_or_else(|| ApiError::NotFound {
            field: Some("scene".to_owned()),
            message: format!(
                "no scene is named `{}`; configured scenes: {}",
                scene_name.escape_debug(),
                config.scenes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })?;
    let request_id = ask
        .request_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    // Users keep their variant. Requests without a user (anonymous sessions,
    // similar items) are answered by the scene itself: assigning them per
    // request would put one person in several variants.
    let arm = ask
        .user_id
        .as_deref()
        .and_then(|user| state.experiments().arm(&scene_name, user));
    let scene = arm.as_ref().map_or(configured, |a| &a.scene);
    let types = &config.events;
    let default_type = types
        .all()
        .find(|t| types.classify(t) == Some(EventKind::Positive))
        .map(str::to_owned);
    for (i, event) in ask.events.iter().enumerate() {
        if let Some(t) = &event.event_type {
            if types.classify(t).is_none() {
                return Err(field_error(
                    &format!("events[{i}].event_type"),
                    format!("`{}` is not a configured event type", t.escape_debug()),
                ));
            }
        }
    }

    let promoted = state.models().current();
    let live = state.live().read();
    let user = ask.user_id.as_deref().and_then(|id| live.user_index(id));
    let context_item = match &ask.context_item {
        Some(id) => Some(
            live.item_index(id)
                .filter(|&i| live.has_item(i))
                .ok_or_else(|| ApiError::NotFound {
                    field: Some(if ask.owner.starts_with("item:") {
                        "id".to_owned()
                    } else {
                        "context.item_id".to_owned()
                    }),
                    message: format!("no item has the id `{}`", id.escape_debug()),
                })?,
        ),
        None => None,
    };
    let mut history = user.map_or_else(Vec::new, |u| live.user_history(u));
    let mut blocked: Vec<u32> = user.map_or_else(Vec::new, |u| live.interacted(u).collect());
    let now = Timestamp::now();
    for event in &ask.events {
        let Some(item) = live.item_index(&event.item_id) else {
            continue;
        };
        blocked.push(item);
        let kind = event
            .event_type
            .as_deref()
            .or(default_type.as_deref())
            .and_then(|t| types.classify(t));
        if kind == Some(EventKind::Positive) {
            history.push((item, now.millis()));
        }
    }
    blocked.extend(ask.exclude.iter().filter_map(|id| live.item_index(id)));
    blocked.extend(context_item);
    let served = session.as_ref().map_or(&[][..], |s| &s.served[..]);
    blocked.extend_from_slice(served);
    let candidates: Vec<u32> = ask
        .candidates
        .iter()
        .filter_map(|id| live.item_index(id))
        .collect();
    let pinned: Vec<(u32, usize)> = scene
        .rerank
        .pinned
        .iter()
        .filter_map(|p| Some((live.item_index(&p.item)?, p.position)))
        .collect();
    let request = Request {
        history: &history,
        blocked,
        context_item,
        candidates: &candidates,
        categories: &ask.categories,
        pinned,
        n: ask.n,
        offset: if session.is_some() { 0 } else { ask.offset },
        now,
        seed: seed_of(&request_id),
        shown: user.map_or(&[][..], |u| live.shown(u)),
    };
    let ranker = BlendRanker::for_scene(scene);
    let ranked = pipeline::run(&live, promoted.as_deref(), scene, &ranker, &request);
    let items: Vec<Recommendation> = ranked
        .iter()
        .filter_map(|r| {
            Some(Recommendation {
                id: live.item_id(r.item)?.to_owned(),
                score: r.score,
                source: r.source,
                explain: ask.explain.then(|| item_explain(&ranker, r)),
            })
        })
        .collect();
    drop(live);
    let answered: Vec<u32> = ranked.iter().map(|r| r.item).collect();
    state
        .sessions()
        .record(&request_id, &ask.owner, &scene_name, &answered);
    let arm = arm.map(|a| (a.experiment, a.variant));
    state.requests().record(
        &request_id,
        ask.user_id.as_deref(),
        if session.is_some() { 0 } else { ask.offset },
        (
            &scene_name,
            arm.as_ref().map(|(e, v)| (e.as_str(), v.as_str())),
        ),
        ranked.iter().map(|r| (r.item, r.source)),
    );
    state
        .analytics()
        .lock()
        .recommended(answered.iter().copied());
    let explain = ask.explain.then(|| ResponseExplain {
        ranker: ranker.name().to_owned(),
        model: promoted.as_ref().map(|p| p.model.name().to_owned()),
        retrieval: promoted
            .as_ref()
            .and_then(|p| p.retriever_kind())
            .map(str::to_owned),
        history_events: history.len(),
        session_items: served.len(),
    });
    Ok(Recommendations {
        request_id,
        scene: scene_name,
        experiment: arm.map(|(name, variant)| ExperimentArm { name, variant }),
        items,
        explain,
    })
}

fn item_explain(ranker: &dyn Ranker, r: &Ranked) -> ItemExplain {
    let (contributions, freshness) = ranker.contributions(&r.features);
    let present = |k: &SourceKind| r.features.present & (1 << k.index()) != 0;
    let mut parts = BTreeMap::new();
    let mut contrib = BTreeMap::new();
    for kind in SourceKind::ALL.iter().filter(|k| present(k)) {
        parts.insert(kind.name().to_owned(), r.features.parts[kind.index()]);
        contrib.insert(kind.name().to_owned(), contributions[kind.index()]);
    }
    if freshness != 0.0 {
        contrib.insert("freshness".to_owned(), freshness);
    }
    ItemExplain {
        sources: pipeline::source_names(r.features.present)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        parts,
        contributions: contrib,
        freshness: r.features.freshness,
        shown: r.features.shown,
        placement: r.placement,
    }
}

/// A stable seed from a request id (FNV-1a), so a session explores alike.
fn seed_of(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Items for a user, ranked by a scene's pipeline (`home` by default): the
/// promoted model scores the user's current history (so the next request
/// already reflects an event), neighbour, content, trending, latest and
/// popular sources join by the scene's weights, and rerank rules diversify,
/// explore and pin. Never an item the user interacted with, a hidden or
/// expired one, an excluded one, or one answered earlier in the `request_id`
/// session. An unknown user gets the non-personalized sources (cold start).
#[utoipa::path(
    get, path = "/v1/recommend/{user_id}", tag = "recommend",
    params(
        ("user_id" = String, Path, description = "User id; unknown users get non-personalized items"),
        ("n" = Option<usize>, Query, description = "How many items (default `recommend.default_n`)"),
        ("offset" = Option<usize>, Query, description = "How many top items to skip (not with `request_id`)"),
        ("category" = Option<Vec<String>>, Query, description = "Repeatable; every one must be on the item"),
        ("exclude" = Option<Vec<String>>, Query, description = "Repeatable; item ids never to return"),
        ("scene" = Option<String>, Query, description = "A configured scene (default `home`)"),
        ("request_id" = Option<String>, Query, description = "Continue this pagination session: the next items, never one answered in it before"),
        ("explain" = Option<bool>, Query, description = "Return each item's sources and score parts"),
    ),
    responses(
        (status = 200, description = "Recommended items", body = Recommendations),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 404, description = "Unknown scene or expired session", body = ErrorBody),
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
    let params = PipelineParams::parse(raw.as_deref(), &state.config().recommend)?;
    let mut ask = Ask::from_params(format!("user:{user_id}"), params, DEFAULT_SCENE);
    ask.user_id = Some(user_id);
    Ok(Json(answer(&state, ask)?))
}

/// Recommendations with everything in the body: a user or an anonymous
/// session's events, the item being viewed, candidates to rank, exclusions
/// and category filters, the scene, pagination and `explain`.
#[utoipa::path(
    post, path = "/v1/recommend", tag = "recommend",
    request_body = RecommendBody,
    responses(
        (status = 200, description = "Recommended items", body = Recommendations),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown scene, context item or session", body = ErrorBody),
        (status = 422, description = "A field is invalid (named in `field`)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn recommend_post(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<Recommendations>, ApiError> {
    let body: RecommendBody = parse_one(&body)?;
    let settings = &state.config().recommend;
    let max_batch = state.config().server.max_batch;
    let n = body.n.unwrap_or(settings.default_n);
    if n == 0 || n > settings.max_n {
        return Err(field_error(
            "n",
            format!("must be from 1 to {}, got {n}", settings.max_n),
        ));
    }
    let offset = body.offset.unwrap_or(0);
    if n.saturating_add(offset) > settings.max_n {
        return Err(field_error(
            "offset",
            format!(
                "`offset` + `n` must be at most {} (got {offset} + {n}); deeper pages are not ranked",
                settings.max_n
            ),
        ));
    }
    let check_ids = |field: &str, ids: &[String]| -> Result<(), ApiError> {
        if ids.len() > max_batch {
            return Err(field_error(
                field,
                format!(
                    "at most {max_batch} entries (server.max_batch), got {}",
                    ids.len()
                ),
            ));
        }
        for (i, id) in ids.iter().enumerate() {
            validate_id(field, id).map_err(|e| field_error(&format!("{field}[{i}]"), e.message))?;
        }
        Ok(())
    };
    check_ids("candidates", &body.candidates)?;
    check_ids("exclude", &body.exclude)?;
    check_ids("filters.categories", &body.filters.categories)?;
    let event_items: Vec<String> = body.events.iter().map(|e| e.item_id.clone()).collect();
    check_ids("events", &event_items).map_err(|e| match e {
        ApiError::InvalidField {
            field: Some(f),
            message,
        } if f.starts_with("events[") => field_error(&format!("{f}.item_id"), message),
        other => other,
    })?;
    for (field, value) in [
        ("user_id", &body.user_id),
        ("scene", &body.scene),
        ("request_id", &body.request_id),
        ("context.item_id", &body.context.item_id),
    ] {
        if let Some(v) = value {
            validate_id(field, v).map_err(|e| field_error(field, e.message))?;
        }
    }
    let owner = match &body.user_id {
        Some(id) => format!("user:{id}"),
        None => "anonymous".to_owned(),
    };
    let ask = Ask {
        owner,
        user_id: body.user_id,
        events: body.events,
        context_item: body.context.item_id,
        scene: body.scene,
        default_scene: DEFAULT_SCENE,
        n,
        offset,
        offset_given: body.offset.is_some(),
        request_id: body.request_id,
        categories: body.filters.categories,
        exclude: body.exclude,
        candidates: body.candidates,
        explain: body.explain,
    };
    Ok(Json(answer(&state, ask)?))
}
