//! The registry in a redb file beside the tenants' directories, and tenant
//! stores as embedded store files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition};

use super::{unknown_tenant, KeyRecord, Registry, TenantRecord, TenantStores};
use crate::embedded::tables::DbResultExt;
use crate::{EmbeddedStore, Result, SharedStore, StoreError, StoreOptions};

/// Name of the registry file in the data directory.
pub const REGISTRY_FILE_NAME: &str = "registry.redb";

/// Tenant name → tenant record (JSON).
const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenants");
/// Key id → key record (JSON).
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");

/// A [`Registry`] in `<data_dir>/registry.redb`. Every write is one fsynced
/// transaction; writes are rare (an operator creating a tenant or a key).
#[derive(Clone)]
pub struct EmbeddedRegistry {
    db: Arc<Database>,
}

impl std::fmt::Debug for EmbeddedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRegistry").finish_non_exhaustive()
    }
}

impl EmbeddedRegistry {
    /// Opens (creating if needed) the registry of `data_dir`. Fails with
    /// [`StoreError::Locked`] while another process holds it.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Io(format!(
                "creating the directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(REGISTRY_FILE_NAME);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked(path.display().to_string()))
            }
            Err(e) => return Err(StoreError::Io(format!("opening {}: {e}", path.display()))),
        };
        let txn = db.begin_write().ctx("creating the registry tables")?;
        txn.open_table(TENANTS)
            .ctx("creating the registry tables")?;
        txn.open_table(KEYS).ctx("creating the registry tables")?;
        txn.commit().ctx("creating the registry tables")?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs `f` on a blocking thread with the database.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Io(format!("a registry task failed: {e}")))?
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| StoreError::Io(format!("encoding a registry record: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("a registry record does not decode: {e}")))
}

/// Every record of `table`, in key order.
fn all<T: serde::de::DeserializeOwned>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
) -> Result<Vec<T>> {
    let txn = db.begin_read().ctx("reading the registry")?;
    let table = txn.open_table(table).ctx("reading the registry")?;
    let mut out = Vec::new();
    for entry in table.iter().ctx("reading the registry")? {
        let (_, value) = entry.ctx("reading the registry")?;
        out.push(decode(value.value())?);
    }
    Ok(out)
}

#[async_trait]
impl Registry for EmbeddedRegistry {
    async fn create_tenant(&self, tenant: TenantRecord) -> Result<bool> {
        super::validate_tenant_name(&tenant.name)?;
        let bytes = encode(&tenant)?;
        self.run(move |db| {
            let txn = db.begin_write().ctx("registering a tenant")?;
            {
                let mut table = txn.open_table(TENANTS).ctx("registering a tenant")?;
                if table
                    .get(tenant.name.as_str())
                    .ctx("registering a tenant")?
                    .is_some()
                {
                    return Ok(false);
                }
                table
                    .insert(tenant.name.as_str(), bytes.as_slice())
                    .ctx("registering a tenant")?;
            }
            txn.commit().ctx("registering a tenant")?;
            Ok(true)
        })
        .await
    }

    async fn tenants(&self) -> Result<Vec<TenantRecord>> {
        self.run(|db| all(db, TENANTS)).await
    }

    async fn delete_tenant(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.run(move |db| {
            let txn = db.begin_write().ctx("deleting a tenant")?;
            let existed = {
                let mut tenants = txn.open_table(TENANTS).ctx("deleting a tenant")?;
                let existed = tenants
                    .remove(name.as_str())
                    .ctx("deleting a tenant")?
                    .is_some();
                let mut keys = txn.open_table(KEYS).ctx("deleting a tenant")?;
                let mut doomed = Vec::new();
                for entry in keys.iter().ctx("deleting a tenant")? {
                    let (id, value) = entry.ctx("deleting a tenant")?;
                    let key: KeyRecord = decode(value.value())?;
                    if key.tenant == name {
                        doomed.push(id.value().to_owned());
                    }
                }
                for id in doomed {
                    keys.remove(id.as_str()).ctx("deleting a tenant")?;
                }
                existed
            };
            txn.commit().ctx("deleting a tenant")?;
            Ok(existed)
        })
        .await
    }

    async fn put_key(&self, key: KeyRecord) -> Result<()> {
        let bytes = encode(&key)?;
        self.run(move |db| {
            let txn = db.begin_write().ctx("saving a key")?;
            {
                let tenants = txn.open_table(TENANTS).ctx("saving a key")?;
                if tenants
                    .get(key.tenant.as_str())
                    .ctx("saving a key")?
                    .is_none()
                {
                    return Err(unknown_tenant(&key.tenant));
                }
                let mut keys = txn.open_table(KEYS).ctx("saving a key")?;
                keys.insert(key.id.as_str(), bytes.as_slice())
                    .ctx("saving a key")?;
            }
            txn.commit().ctx("saving a key")
        })
        .await
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>> {
        self.run(|db| all(db, KEYS)).await
    }
}

/// [`TenantStores`] as embedded store files under `<data_dir>/tenants/`.
#[derive(Debug, Clone)]
pub struct EmbeddedTenantStores {
    data_dir: PathBuf,
    options: StoreOptions,
}

impl EmbeddedTenantStores {
    /// Tenant stores under `data_dir`, opened with `options`.
    pub fn new(data_dir: &Path, options: StoreOptions) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            options,
        }
    }

    /// The directory holding everything of `tenant` (its store file, models).
    pub fn tenant_dir(&self, tenant: &str) -> PathBuf {
        self.data_dir.join("tenants").join(tenant)
    }
}

#[async_trait]
impl TenantStores for EmbeddedTenantStores {
    async fn open(&self, tenant: &str) -> Result<SharedStore> {
        super::validate_tenant_name(tenant)?;
        let data_dir = self.data_dir.clone();
        let tenant = tenant.to_owned();
        let options = self.options.clone();
        tokio::task::spawn_blocking(move || EmbeddedStore::open_with(&data_dir, &tenant, options))
            .await
            .map_err(|e| StoreError::Io(format!("opening a tenant's store failed: {e}")))?
            .map(|store| Arc::new(store) as SharedStore)
    }

    async fn destroy(&self, tenant: &str) -> Result<()> {
        super::validate_tenant_name(tenant)?;
        let dir = self.tenant_dir(tenant);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io(format!("removing {}: {e}", dir.display()))),
        }
    }
}
