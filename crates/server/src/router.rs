//! The route table and the middleware every request passes through.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::ApiError;
use crate::routes::{
    analytics, events, experiments, items, lists, model, ops, recommend, similar, users,
};
use crate::state::AppState;
use crate::{auth, dashboard, docs, metrics, openapi};

/// The whole HTTP API for `state`, ready to be served.
///
/// `/v1` routes require the API key when one is configured; `/healthz`,
/// `/readyz`, `/metrics`, `/openapi.json`, `/docs`, `/dashboard` and `/demo` stay open (the
/// pages ask for the key and send it with their API calls). Every error,
/// including unknown routes, wrong methods, oversized bodies and timeouts, is
/// answered in the JSON error format.
pub fn router(state: AppState) -> Router {
    let settings = &state.config().server;
    let max_body = settings.max_body_bytes;
    let timeout = Duration::from_secs(settings.request_timeout_secs);

    let v1 = Router::new()
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
        .route("/recommend/{user_id}", get(recommend::recommend))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));

    Router::new()
        .nest("/v1", v1)
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
        .with_state(state)
}

async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::RouteNotFound {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
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
}
