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
    modifiers(&BearerKey, &AccessAnswers),
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

/// Documents the answers every protected route may give before its handler
/// runs: 401 and 403 from the key check, and on `/v1` also 429 (rate limit)
/// and 503 (admission control, timeout, storage), each with `Retry-After`
/// where the server sends it.
struct AccessAnswers;

impl Modify for AccessAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::content::ContentBuilder;
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::response::ResponseBuilder;
        use utoipa::openapi::{Ref, RefOr, Type};

        let error = |description: &str, retry_after: bool| {
            let mut response = ResponseBuilder::new().description(description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            );
            if retry_after {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer))
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                );
            }
            RefOr::T(response.build())
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let v1 = path.starts_with("/v1/");
            if !v1 && !path.starts_with("/admin/") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, response: RefOr<utoipa::openapi::Response>| {
                    responses.entry(status.to_owned()).or_insert(response);
                };
                add(
                    "401",
                    error("No key, or a wrong, rotated or revoked key", false),
                );
                add(
                    "403",
                    error(
                        "The key lacks the scope, names another tenant, or is not the admin key",
                        false,
                    ),
                );
                if v1 {
                    add("413", error("The body or batch is over the limit", false));
                    add("429", error("The key's rate limit is used up", true));
                    add(
                        "503",
                        error(
                            "At capacity, timed out, storage failed or shutting down",
                            true,
                        ),
                    );
                    add("507", error("The server's disk is full", false));
                }
            }
        }
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
