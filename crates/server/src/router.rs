//! The route table and the middleware every request passes through.

use std::time::Duration;

use std::convert::Infallible;

use axum::extract::{DefaultBodyLimit, OriginalUri, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::ApiError;
use tower::ServiceExt;

use crate::keys::Scope;
use crate::routes::{
    admin, analytics, events, experiments, items, lists, model, ops, recommend, similar, users,
};
use crate::state::AppState;
use crate::tenants::{tenant_not_found, Tenants};
use crate::{dashboard, docs, limits, metrics, openapi};

/// The whole HTTP API over every tenant, ready to be served.
///
/// `/v1` requests are dispatched to the tenant their key belongs to (see
/// [`dispatch`]); `/admin` manages tenants and keys with the admin key;
/// `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/docs`, `/dashboard`
/// and `/demo` stay open (the pages ask for a key and send it with their API
/// calls). Every error, including unknown routes, wrong methods, oversized
/// bodies and timeouts, is answered in the JSON error format.
pub fn router(tenants: Tenants) -> Router {
    let settings = &tenants.config().server;
    let max_body = settings.max_body_bytes;
    let timeout = Duration::from_secs(settings.request_timeout_secs);

    let to_tenants = tenants.clone();
    Router::new()
        .nest_service(
            "/v1",
            tower::service_fn(move |req: Request| dispatch(to_tenants.clone(), req)),
        )
        .route(
            "/admin/tenants",
            post(admin::create_tenant).get(admin::list_tenants),
        )
        .route(
            "/admin/tenants/{tenant}",
            get(admin::get_tenant).delete(admin::delete_tenant),
        )
        .route(
            "/admin/tenants/{tenant}/keys",
            post(admin::create_key).get(admin::list_keys),
        )
        .route(
            "/admin/tenants/{tenant}/keys/{id}",
            delete(admin::revoke_key),
        )
        .route(
            "/admin/tenants/{tenant}/keys/{id}/rotate",
            post(admin::rotate_key),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(docs::page))
        .route("/docs/assets/{file}", get(docs::asset))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/assets/{file}", get(dashboard::asset))
        .route("/demo", get(dashboard::demo))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            enforce_timeout(timeout, req, next)
        }))
        .layer(middleware::from_fn(metrics::track_requests))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(tenants)
}

/// One tenant's `/v1` routes (relative to `/v1`) over its state. Reached only through
/// [`dispatch`], which has checked the key, its scope and its limits.
pub(crate) fn tenant_routes(state: AppState) -> Router {
    let v1: Router<AppState> = Router::new()
        .route("/items", post(items::upsert_items).get(items::list_items))
        .route(
            "/items/{id}",
            get(items::get_item)
                .patch(items::patch_item)
                .delete(items::delete_item),
        )
        .route("/items/{id}/similar", get(similar::similar))
        .route("/model", get(model::current_model))
        .route("/model/history", get(model::history))
        .route("/analytics/events", get(analytics::events))
        .route("/analytics/ctr", get(analytics::ctr))
        .route("/analytics/top-items", get(analytics::top_items))
        .route("/analytics/coverage", get(analytics::coverage))
        .route("/analytics/users", get(analytics::users))
        .route(
            "/experiments",
            post(experiments::create).get(experiments::list),
        )
        .route(
            "/experiments/{name}",
            get(experiments::get).delete(experiments::delete),
        )
        .route("/experiments/{name}/start", post(experiments::start))
        .route("/experiments/{name}/stop", post(experiments::stop))
        .route("/experiments/{name}/results", get(experiments::results))
        .route("/admin/train", post(model::train))
        .route("/users", post(users::upsert_users).get(users::list_users))
        .route(
            "/users/{id}",
            get(users::get_user)
                .patch(users::patch_user)
                .delete(users::delete_user),
        )
        .route("/users/{id}/events", get(events::user_events))
        .route("/events", post(events::append_events))
        .route("/popular", get(lists::popular))
        .route("/trending", get(lists::trending))
        .route("/latest", get(lists::latest))
        .route("/recommend", post(recommend::recommend_post))
        .route("/recommend/{user_id}", get(recommend::recommend));
    v1.fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(metrics::label_route))
        .with_state(state)
}

/// Sends a `/v1` request to its tenant: checks the key ([`Tenants::authenticate`]),
/// the scope the route needs, the key's rate limit, and for CPU-heavy routes
/// waits briefly for an admission slot; answers 401, 403, 429 or 503 with
/// `Retry-After` when one of them refuses.
async fn dispatch(tenants: Tenants, req: Request) -> Result<Response, Infallible> {
    // Nesting stripped `/v1` from the URI (the tenant's routes are
    // relative to it); the checks look at the path as sent.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |o| o.0.path().to_owned());
    let admitted = admit(&tenants, req.method(), &path, req.headers()).await;
    match admitted {
        Ok((routes, permit)) => {
            let response = match routes.oneshot(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            drop(permit);
            Ok(response)
        }
        Err(error) => Ok(error.into_response()),
    }
}

/// The checks of [`dispatch`]: the tenant's routes and, for a heavy route,
/// the admission slot to hold while it runs.
async fn admit(
    tenants: &Tenants,
    method: &Method,
    path: &str,
    headers: &axum::http::HeaderMap,
) -> Result<(Router, Option<tokio::sync::OwnedSemaphorePermit>), ApiError> {
    let access = tenants.authenticate(headers)?;
    let needed = Scope::required(method, path);
    if !access.scopes.contains(&needed) {
        return Err(ApiError::Forbidden(format!(
            "{method} {path} needs a key with the `{}` scope; this key has {}",
            needed.as_str(),
            if access.scopes.is_empty() {
                "none".to_owned()
            } else {
                access
                    .scopes
                    .iter()
                    .map(|s| format!("`{}`", s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    }
    if let Some((bucket, limit)) = &access.bucket {
        let checked = match tenants.cluster() {
            Some(link) => link.check_rate(bucket, *limit).await,
            None => tenants.limiter().check(bucket, *limit),
        };
        if let Err(wait) = checked {
            return Err(ApiError::RateLimited {
                retry_after: limits::retry_after_secs(wait),
            });
        }
    }
    let tenant = tenants
        .get(&access.tenant)
        .ok_or_else(|| tenant_not_found(&access.tenant))?;
    let permit = if limits::is_heavy(path) {
        match tenants.admission().admit().await {
            Some(permit) => Some(permit),
            None => return Err(ApiError::Overloaded { retry_after: 1 }),
        }
    } else {
        None
    };
    Ok((tenant.routes(), permit))
}

async fn route_not_found(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::RouteNotFound {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

/// Answers 503 `timeout` when the rest of the stack takes longer than `limit`.
///
/// Writes run in their own tasks (see `write.rs`), so abandoning the request
/// never abandons a write halfway.
async fn enforce_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout {
            secs: limit.as_secs(),
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use tower::ServiceExt;

    #[tokio::test]
    async fn slow_requests_get_a_json_503() {
        let limit = Duration::from_millis(10);
        let app: Router = Router::new()
            .route("/slow", get(std::future::pending::<&'static str>))
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                enforce_timeout(limit, req, next)
            }));
        let response = app
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "timeout");
    }

    /// A one-tenant API over an in-memory store with at most one heavy
    /// request at a time and almost no wait for a slot.
    async fn one_slot() -> Tenants {
        let mut config = crate::Config::default();
        config.server.max_concurrent_heavy = 1;
        config.server.admission_wait_ms = 5;
        config.training.enabled = false;
        let store = std::sync::Arc::new(tephra_store::MemoryStore::new());
        let state = AppState::open(config, store).await.unwrap();
        Tenants::single(state).await.unwrap()
    }

    async fn status_of(
        app: &Router,
        path: &str,
    ) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let retry = response
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 100_000)
            .await
            .unwrap();
        (
            status,
            retry,
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned().into()),
        )
    }

    #[tokio::test]
    async fn heavy_routes_get_503_with_retry_after_when_no_slot_frees_up() {
        let tenants = one_slot().await;
        let app = router(tenants.clone());
        let held = tenants.admission().admit().await.expect("the only slot");
        let (status, retry, body) = status_of(&app, "/v1/recommend/u").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "overloaded");
        assert_eq!(retry.as_deref(), Some("1"));
        // Light routes do not queue behind heavy ones.
        let light = status_of(&app, "/v1/popular").await;
        assert_eq!(light.0, StatusCode::OK, "{}", light.2);
        drop(held);
        let admitted = status_of(&app, "/v1/recommend/u").await;
        assert_eq!(admitted.0, StatusCode::OK, "{}", admitted.2);
        tenants.shutdown().await;
    }
}
