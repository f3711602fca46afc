//! The operator's API: `/admin/tenants` creates, lists and deletes tenants,
//! `/admin/tenants/{tenant}/keys` issues, lists, rotates and revokes their
//! API keys. Every route needs the admin key (`server.admin_key`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{parse_one, IdPair, IdPath, RawBody};
use crate::keys::Scope;
use crate::tenants::{IssuedKey, KeyInfo, KeyRateLimit, TenantInfo, Tenants};

/// A tenant to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Its name: 1 to 256 ASCII letters, digits, `_` or `-`.
    pub name: String,
    /// Its own settings, merged over the server's: any of the sections
    /// `events`, `recommend`, `training`, `retrieval`, `scenes`, `analytics`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

/// Every tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    /// By name.
    pub tenants: Vec<TenantInfo>,
}

/// A key to issue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A label for people, e.g. `web frontend`.
    #[serde(default)]
    pub label: String,
    /// What the key may do; `["read"]` when absent.
    #[serde(default = "read_only")]
    pub scopes: Vec<Scope>,
    /// Its own rate limit; the server's default (`server.rate_limit_per_sec`)
    /// when absent.
    #[serde(default)]
    pub rate_limit: Option<KeyRateLimit>,
}

fn read_only() -> Vec<Scope> {
    vec![Scope::Read]
}

/// A tenant's keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Oldest first, revoked ones included.
    pub keys: Vec<KeyInfo>,
}

/// Longest accepted key label, in bytes.
const MAX_LABEL_BYTES: usize = 256;

/// Creates a tenant: its own empty store, models, analytics and settings.
#[utoipa::path(
    post, path = "/admin/tenants", tag = "admin",
    request_body = NewTenant,
    responses(
        (status = 201, description = "Created", body = TenantInfo),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No or a wrong admin key", body = ErrorBody),
        (status = 403, description = "Not the admin key, or the admin API is disabled", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "Invalid name or settings; `field` says which", body = ErrorBody),
    ),
    security(("admin_key" = []))
)]
pub async fn create_tenant(
    State(tenants): State<Tenants>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<TenantInfo>), ApiError> {
    tenants.authenticate_operator(&headers)?;
    let spec: NewTenant = parse_one(&body)?;
    let created = tenants.create(&spec.name, spec.settings).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Every tenant with its sizes.
#[utoipa::path(
    get, path = "/admin/tenants", tag = "admin",
    responses(
        (status = 200, description = "The tenants", body = TenantList),
        (status = 401, description = "No or a wrong admin key", body = ErrorBody),
        (status = 403, description = "Not the admin key, or the admin API is disabled", body = ErrorBody),
    ),
    security(("admin_key" = []))
)]
pub async fn list_tenants(
    State(tenants): State<Tenants>,
    headers: HeaderMap,
) -> Result<Json<TenantList>, ApiError> {
    tenants.authenticate_operator(&headers)?;
    Ok(Json(TenantList {
        tenants: tenants.list().await?,
    }))
}

/// One tenant with its sizes.
#[utoipa::path(
    get, path = "/admin/tenants/{tenant}", tag = "admin",
    params(("tenant" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The tenant", body = TenantInfo),
        (status = 401, description = "No or a wrong admin key", body = ErrorBody),
        (status = 403, description = "Not the admin key, or the admin API is disabled", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("admin_key" = []))
)]
pub async fn get_tenant(
    State(tenants): State<Tenants>,
    headers: HeaderMap,
    IdPath(name): IdPath,
) -> Result<Json<TenantInfo>, ApiError> {
    tenants.authenticate_operator(&headers)?;
    Ok(Json(tenants.describe(&name).await?))
}

/// Deletes a tenant with all its data, models and keys, for good.
#[utoipa::path(
    delete, path = "/admin/tenants/{tenant}", tag = "admin",
    params(("tenant" = String, Path, description = "Tenant name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or a wrong admin key", body = ErrorBody),
        (status = 403, description = "Not the admin key, or the admin API is disabled", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The default tenant cannot be deleted", body = ErrorBody),
    ),
    security(("admin_key" = []))
)]
pub async fn delete_tenant(
    State(tenants): State<Tenants>,
    headers: HeaderMap,
    IdPath(name): IdPath,
) -> Result<StatusCode, ApiError> {
    tenants.authenticate_operator(&headers)?;
    tenants.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues an API key for a tenant. The answer holds the key itself, which is
/// shown only this once.
#[utoipa::path(
    post, path = "/admin/tenants/{tenant}/keys", tag = "admin",
    params(("tenant" = String, Path, description = "Tenant name")),
    request_body = NewKey,
    responses(
        (status = 201, description = "Issued; `key` is shown only now", body = IssuedKey),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No or a wrong admin key", body = ErrorBody),
        (status = 403, description = "Not the admin key, or the admin API is disabled", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 422, description = "Invalid scopes, label or rate limit", body = ErrorBody),
    ),
    security(("admin_key" = []))
)]
pub async fn create_key(
    State(tenants): State<Tenants>,
    headers: HeaderMap,
    IdPath(tenant): IdPath,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    tenants.authenticate_operator(&headers)?;
    let spec: NewKey = if body.iter().all(u8::is_ascii_whitespace) {
        NewKey {
            label: String::new(),
            scopes: read_only(),
            rate_limit: None,
        }
    } else {
        parse_one(&body)?
    };
    if spec.label.len() > MAX_LABEL_BYTES {
        return Err(tephra_core::ValidationError::field(
            "invalid_value",
            "label",
            format!("a label may have at most {MAX_LABEL_BYTES} bytes"),
        )
        .into());
    }
    let issued = tenants
        .create_key(&tenant, spec.label, spec.scopes, spec.rate_limit)
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// A tenant's keys, without their secrets.
#[utoipa::path(
    get, path = "/admin/tenants/{tenant}/keys", tag = "admin",
    params(("tenant" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The keys, oldest first", body = KeyList),
        (status = 401, description = "No or a wrong admin key", body = ErrorBody),
        (status = 403, description = "Not the admin key, or the admin API is disabled", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("admin_key" = []))
)]
pub async fn list_keys(
    State(tenants): State<Tenants>,
    headers: HeaderMap,
    IdPath(tenant): IdPath,
) -> Result<Json<KeyList>, ApiError> {
    tenants.authenticate_operator(&headers)?;
    Ok(Json(KeyList {
        keys: tenants.keys(&tenant)?,
    }))
}

/// Replaces a key's secret: the old one stops working at once; the id, scopes
/// and rate limit stay. The answer holds the new key, shown only this once.
#[utoipa::path(
    post, path = "/admin/tenants/{tenant}/keys/{id}/rotate", tag = "admin",
    params(
        ("tenant" = String, Path, description = "Tenant name"),
        ("id" = String, Path, description = "Key id"),
    ),
    responses(
        (status = 200, description = "Rotated; `key` is shown only now", body = IssuedKey),
        (status = 401, description = "No or a wrong admin key", body = ErrorBody),
        (status = 403, description = "Not the admin key, or the admin API is disabled", body = ErrorBody),
        (status = 404, description = "No such tenant or key", body = ErrorBody),
        (status = 409, description = "The key is revoked", body = ErrorBody),
    ),
    security(("admin_key" = []))
)]
pub async fn rotate_key(
    State(tenants): State<Tenants>,
    headers: HeaderMap,
    IdPair(tenant, id): IdPair,
) -> Result<Json<IssuedKey>, ApiError> {
    tenants.authenticate_operator(&headers)?;
    Ok(Json(tenants.rotate_key(&tenant, &id).await?))
}

/// Revokes a key for good; it stays listed, with `revoked_at`.
#[utoipa::path(
    delete, path = "/admin/tenants/{tenant}/keys/{id}", tag = "admin",
    params(
        ("tenant" = String, Path, description = "Tenant name"),
        ("id" = String, Path, description = "Key id"),
    ),
    responses(
        (status = 200, description = "Revoked", body = KeyInfo),
        (status = 401, description = "No or a wrong admin key", body = ErrorBody),
        (status = 403, description = "Not the admin key, or the admin API is disabled", body = ErrorBody),
        (status = 404, description = "No such tenant or key", body = ErrorBody),
    ),
    security(("admin_key" = []))
)]
pub async fn revoke_key(
    State(tenants): State<Tenants>,
    headers: HeaderMap,
    IdPair(tenant, id): IdPair,
) -> Result<Json<KeyInfo>, ApiError> {
    tenants.authenticate_operator(&headers)?;
    Ok(Json(tenants.revoke_key(&tenant, &id).await?))
}
