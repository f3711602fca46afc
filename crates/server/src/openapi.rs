//! The OpenAPI description of the HTTP API, generated from the handlers.
//!
//! Each handler carries its own `#[utoipa::path]`, so the description cannot drift
//! from the code; this module only lists them and adds the security scheme.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    admin, analytics, events, experiments, items, lists, model, ops, recommend, similar, users,
};

/// The API description; `ApiDoc::openapi()` builds it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tephra API",
        description = "Ingest a catalogue, users and events; get recommendations. \
            Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`."
    ),
    paths(
        items::upsert_items, items::list_items, items::get_item, items::patch_item, items::delete_item,
        users::upsert_users, users::list_users, users::get_user, users::patch_user, users::delete_user,
        events::append_events, events::user_events,
        lists::popular, lists::trending, lists::latest,
        recommend::recommend, recommend::recommend_post, similar::similar,
        model::current_model, model::history, model::train,
        analytics::events, analytics::ctr, analytics::top_items, analytics::coverage, analytics::users,
        experiments::create, experiments::list, experiments::get, experiments::start,
        experiments::stop, experiments::delete, experiments::results,
        admin::create_tenant, admin::list_tenants, admin::get_tenant, admin::delete_tenant,
        admin::create_key, admin::list_keys, admin::rotate_key, admin::revoke_key,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&BearerKey),
    tags(
        (name = "items", description = "The catalogue"),
        (name = "users", description = "Who receives recommendations"),
        (name = "events", description = "What users did"),
        (name = "lists", description = "Non-personalized ranked lists"),
        (name = "recommend", description = "Recommendations for one user, similar items"),
        (name = "models", description = "The trained model: its metadata and retraining"),
        (name = "analytics", description = "Events, CTR, top items, coverage and users over time"),
        (name = "experiments", description = "A/B tests of scene settings, with intervals and p-values"),
        (name = "admin", description = "Tenants and their API keys (the admin key only)"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer schemes the operations refer to: `api_key` for `/v1`,
/// `admin_key` for `/admin`.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A tenant's key (`tph_...`), `server.api_key`, or the admin key with \
                         an `X-Tephra-Tenant` header; required on /v1 routes when \
                         `server.api_key` or `server.admin_key` is configured",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`server.admin_key`: required on /admin routes"))
                    .build(),
            ),
        );
    }
}

/// The description as JSON text, built once per process.
pub fn spec_json() -> &'static str {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], spec_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described() {
        let spec: serde_json::Value = serde_json::from_str(spec_json()).unwrap();
        let paths = spec["paths"].as_object().unwrap();
        for path in [
            "/v1/items",
            "/v1/items/{id}",
            "/v1/users",
            "/v1/users/{id}",
            "/v1/users/{id}/events",
            "/v1/events",
            "/v1/popular",
            "/v1/trending",
            "/v1/latest",
            "/v1/recommend/{user_id}",
            "/v1/items/{id}/similar",
            "/v1/model",
            "/v1/admin/train",
            "/admin/tenants",
            "/admin/tenants/{tenant}",
            "/admin/tenants/{tenant}/keys",
            "/admin/tenants/{tenant}/keys/{id}",
            "/admin/tenants/{tenant}/keys/{id}/rotate",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        assert!(spec["components"]["schemas"]["Item"].is_object());
        assert!(spec["components"]["securitySchemes"]["api_key"].is_object());
    }
}
