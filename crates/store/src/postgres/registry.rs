//! The registry (tenants and API keys) and the tenants' stores in PostgreSQL.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::PgPool;
use sqlx::types::Json;
use tephra_core::{Timestamp, ValidationError};

use super::{Doing, PostgresStore, WriteGates};
use crate::registry::{unknown_tenant, validate_tenant_name};
use crate::{
    KeyRecord, RateLimit, Registry, Result, SharedStore, StoreError, TenantRecord, TenantStores,
};

/// The [`Registry`] of a cluster: every node reads and writes the same
/// tenants and keys, so a key issued through one node works on all of them
/// (once each has reloaded its in-memory copy).
#[derive(Clone)]
pub struct PostgresRegistry {
    pool: PgPool,
}

impl std::fmt::Debug for PostgresRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRegistry").finish_non_exhaustive()
    }
}

impl PostgresRegistry {
    pub(super) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Refuses a JSON document PostgreSQL's `jsonb` cannot hold: one with the
/// character U+0000 in a string or a key (`jsonb` stores text, and text
/// cannot contain it). Saying so up front beats a database error.
pub(super) fn check_storable_json(field: &str, value: &Value) -> Result<(), ValidationError> {
    fn has_nul(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(values) => values.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    if has_nul(value) {
        return Err(ValidationError::field(
            "invalid_value",
            field,
            "the document contains the character U+0000, which cannot be stored",
        ));
    }
    Ok(())
}

/// The columns of a key, as selected by `keys`.
type KeyRow = (
    String,
    String,
    String,
    Vec<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<f64>,
    Option<i64>,
);

fn key_record(row: KeyRow) -> Result<KeyRecord> {
    let (
        id,
        tenant,
        label,
        scopes,
        secret_hash,
        created_at,
        rotated_at,
        revoked_at,
        per_second,
        burst,
    ) = row;
    let rate_limit = match (per_second, burst) {
        (Some(per_second), Some(burst)) => Some(RateLimit {
            per_second,
            burst: u32::try_from(burst).map_err(|_| {
                StoreError::Corrupt(format!("key `{id}` has the impossible burst {burst}"))
            })?,
        }),
        _ => None,
    };
    Ok(KeyRecord {
        id,
        tenant,
        label,
        scopes,
        secret_hash,
        created_at: Timestamp(created_at),
        rotated_at: rotated_at.map(Timestamp),
        revoked_at: revoked_at.map(Timestamp),
        rate_limit,
    })
}

/// PostgreSQL's code for a foreign key violation.
const FOREIGN_KEY_VIOLATION: &str = "23503";

#[async_trait]
impl Registry for PostgresRegistry {
    async fn create_tenant(&self, tenant: TenantRecord) -> Result<bool> {
        validate_tenant_name(&tenant.name)?;
        check_storable_json("settings", &tenant.settings)?;
        let created = sqlx::query(
            "INSERT INTO tenants (name, created_at, settings) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&tenant.name)
        .bind(tenant.created_at.millis())
        .bind(Json(&tenant.settings))
        .execute(&self.pool)
        .await
        .doing("registering a tenant")?;
        Ok(created.rows_affected() == 1)
    }

    async fn tenants(&self) -> Result<Vec<TenantRecord>> {
        let rows: Vec<(String, i64, Json<Value>)> =
            sqlx::query_as("SELECT name, created_at, settings FROM tenants ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .doing("listing tenants")?;
        Ok(rows
            .into_iter()
            .map(|(name, created_at, settings)| TenantRecord {
                name,
                created_at: Timestamp(created_at),
                settings: settings.0,
            })
            .collect())
    }

    async fn delete_tenant(&self, name: &str) -> Result<bool> {
        // The tenant's keys go with it (ON DELETE CASCADE).
        let deleted = sqlx::query("DELETE FROM tenants WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .doing("deleting a tenant")?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn put_key(&self, key: KeyRecord) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO api_keys (id, tenant, label, scopes, secret_hash, created_at, \
             rotated_at, revoked_at, rate_per_second, rate_burst) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
             WHERE EXISTS (SELECT 1 FROM tenants WHERE name = $2) \
             ON CONFLICT (id) DO UPDATE SET tenant = EXCLUDED.tenant, label = EXCLUDED.label, \
             scopes = EXCLUDED.scopes, secret_hash = EXCLUDED.secret_hash, \
             created_at = EXCLUDED.created_at, rotated_at = EXCLUDED.rotated_at, \
             revoked_at = EXCLUDED.revoked_at, rate_per_second = EXCLUDED.rate_per_second, \
             rate_burst = EXCLUDED.rate_burst",
        )
        .bind(&key.id)
        .bind(&key.tenant)
        .bind(&key.label)
        .bind(&key.scopes)
        .bind(&key.secret_hash)
        .bind(key.created_at.millis())
        .bind(key.rotated_at.map(Timestamp::millis))
        .bind(key.revoked_at.map(Timestamp::millis))
        .bind(key.rate_limit.map(|r| r.per_second))
        .bind(key.rate_limit.map(|r| i64::from(r.burst)))
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => Ok(()),
            Ok(_) => Err(unknown_tenant(&key.tenant)),
            // The tenant was deleted between the check and the insert.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(FOREIGN_KEY_VIOLATION) => {
                Err(unknown_tenant(&key.tenant))
            }
            Err(e) => Err(super::db_error("saving an API key", e)),
        }
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT id, tenant, label, scopes, secret_hash, created_at, rotated_at, revoked_at, \
             rate_per_second, rate_burst FROM api_keys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .doing("listing API keys")?;
        rows.into_iter().map(key_record).collect()
    }
}

/// The [`TenantStores`] of a cluster: a tenant's store is its rows in the
/// shared tables, so opening one creates nothing and any node can open it.
#[derive(Clone)]
pub struct PostgresTenantStores {
    pool: PgPool,
    gates: WriteGates,
}

impl std::fmt::Debug for PostgresTenantStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTenantStores")
            .finish_non_exhaustive()
    }
}

impl PostgresTenantStores {
    pub(super) fn new(pool: PgPool, gates: WriteGates) -> Self {
        Self { pool, gates }
    }
}

/// Every table holding a tenant's data (not its registry entry), emptied by
/// [`TenantStores::destroy`]; the counters go last.
const TENANT_DATA: [&str; 6] = [
    "DELETE FROM events WHERE tenant = $1",
    "DELETE FROM items WHERE tenant = $1",
    "DELETE FROM users WHERE tenant = $1",
    "DELETE FROM experiments WHERE tenant = $1",
    "DELETE FROM model_snapshots WHERE tenant = $1",
    "DELETE FROM tenant_counters WHERE tenant = $1",
];

#[async_trait]
impl TenantStores for PostgresTenantStores {
    async fn open(&self, tenant: &str) -> Result<SharedStore> {
        validate_tenant_name(tenant)?;
        Ok(Arc::new(PostgresStore::new(
            self.pool.clone(),
            tenant,
            self.gates.gate(tenant),
        )))
    }

    async fn destroy(&self, tenant: &str) -> Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .doing("starting to destroy a tenant's store")?;
        // Wait for the tenant's writes in flight (on any node) to end first.
        sqlx::query("SELECT 1 FROM tenant_counters WHERE tenant = $1 FOR UPDATE")
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await
            .doing("locking the tenant's counters")?;
        for statement in TENANT_DATA {
            sqlx::query(statement)
                .bind(tenant)
                .execute(&mut *tx)
                .await
                .doing("destroying a tenant's store")?;
        }
        tx.commit()
            .await
            .doing("committing the destruction of a tenant's store")
    }
}
