//! Who may use the service: tenants and their API keys.
//!
//! A tenant is one customer's isolated world (its own store, models, analytics);
//! an API key belongs to one tenant and carries scopes. The [`Registry`] keeps
//! both, apart from any tenant's data, so that creating or deleting a tenant
//! never touches another's store. Keys are kept only as hashes of their secret:
//! the registry never sees a usable key.
//!
//! Backends: [`MemoryRegistry`] for tests, [`EmbeddedRegistry`] (one redb
//! file beside the tenants' directories) and
//! [`PostgresRegistry`](crate::PostgresRegistry); every backend passes the registry
//! cases of the [`conformance`](crate::conformance) suite.

mod embedded;
mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tephra_core::{validate_id, Timestamp, ValidationError};

use crate::{Result, SharedStore};

pub use embedded::{EmbeddedRegistry, EmbeddedTenantStores, REGISTRY_FILE_NAME};
pub use memory::{MemoryRegistry, MemoryTenantStores};

/// The tenant every installation has: the zero-setup path serves it without
/// any key, and it cannot be deleted.
pub const DEFAULT_TENANT: &str = "default";

/// A tenant as registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// The tenant's name: an id of ASCII letters, digits, `_` and `-`.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its own settings, merged over the server's (a JSON object the server
    /// owns and validates).
    #[serde(default)]
    pub settings: serde_json::Value,
}

/// A per-key request rate: a token bucket refilled at `per_second` and holding
/// at most `burst` requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests that may arrive at once after a quiet period.
    pub burst: u32,
}

/// An API key as registered: everything but the secret itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public identifier, part of the key string; names the key in the admin API.
    pub id: String,
    /// The tenant whose data the key reaches.
    pub tenant: String,
    /// A label for people (`"web frontend"`).
    #[serde(default)]
    pub label: String,
    /// What the key may do (`read`, `write`, `admin`); the server defines them.
    pub scopes: Vec<String>,
    /// Hex SHA-256 of the whole key string.
    pub secret_hash: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its secret was last replaced, if ever.
    #[serde(default)]
    pub rotated_at: Option<Timestamp>,
    /// When it was revoked; a revoked key authorizes nothing.
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
    /// Its own rate limit, overriding the server's default.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// Tenants and API keys.
///
/// Writes are durable when they return, like a store's. The server keeps a
/// copy in memory to check keys without a lookup per request, and writes
/// through to the registry.
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Registers a tenant; `false` (and no change) if the name is taken.
    async fn create_tenant(&self, tenant: TenantRecord) -> Result<bool>;
    /// Every tenant, in name (byte) order.
    async fn tenants(&self) -> Result<Vec<TenantRecord>>;
    /// Removes a tenant and every key of it; `false` if there was none.
    async fn delete_tenant(&self, name: &str) -> Result<bool>;
    /// Saves a key, replacing the one with the same id. Refused with
    /// `unknown_tenant` (field `tenant`) if its tenant is not registered.
    async fn put_key(&self, key: KeyRecord) -> Result<()>;
    /// Every key (revoked ones included), in id (byte) order.
    async fn keys(&self) -> Result<Vec<KeyRecord>>;
}

/// A shared handle to a registry.
pub type SharedRegistry = Arc<dyn Registry>;

/// Opens and removes the stores of tenants, so that the server can create a
/// tenant at run time on whatever backend it was started with.
#[async_trait]
pub trait TenantStores: Send + Sync + 'static {
    /// Opens (creating if needed) the store of `tenant`.
    async fn open(&self, tenant: &str) -> Result<SharedStore>;
    /// Removes everything stored for `tenant` (its store and files beside it).
    /// The caller has dropped every handle to the store first.
    async fn destroy(&self, tenant: &str) -> Result<()>;
}

/// Checks a tenant name: a valid id, restricted to characters safe in a path
/// (tenants name directories, schemas and key prefixes).
pub fn validate_tenant_name(tenant: &str) -> Result<(), ValidationError> {
    validate_id("tenant", tenant).map_err(|mut e| {
        e.code = "invalid_tenant";
        e
    })?;
    if !tenant
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ValidationError::field(
            "invalid_tenant",
            "tenant",
            format!(
                "tenant `{}` may only contain ASCII letters, digits, `_` and `-`, because it names a directory",
                tenant.escape_debug()
            ),
        ));
    }
    Ok(())
}

/// The error of [`Registry::put_key`] for a key of an unregistered tenant.
pub(crate) fn unknown_tenant(name: &str) -> crate::StoreError {
    crate::StoreError::Invalid(ValidationError::field(
        "unknown_tenant",
        "tenant",
        format!("tenant `{}` is not registered", name.escape_debug()),
    ))
}
