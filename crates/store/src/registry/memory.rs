//! The in-memory registry and tenant stores, for tests and throwaway servers.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{unknown_tenant, KeyRecord, Registry, TenantRecord, TenantStores};
use crate::{MemoryStore, Result, SharedStore};

/// Tenants by name and keys by id.
type Records = (BTreeMap<String, TenantRecord>, BTreeMap<String, KeyRecord>);

/// A [`Registry`] held in memory; nothing survives the process.
#[derive(Debug, Default, Clone)]
pub struct MemoryRegistry {
    state: Arc<Mutex<Records>>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn create_tenant(&self, tenant: TenantRecord) -> Result<bool> {
        super::validate_tenant_name(&tenant.name)?;
        let mut state = self.state.lock();
        if state.0.contains_key(&tenant.name) {
            return Ok(false);
        }
        state.0.insert(tenant.name.clone(), tenant);
        Ok(true)
    }

    async fn tenants(&self) -> Result<Vec<TenantRecord>> {
        Ok(self.state.lock().0.values().cloned().collect())
    }

    async fn delete_tenant(&self, name: &str) -> Result<bool> {
        let mut state = self.state.lock();
        let existed = state.0.remove(name).is_some();
        state.1.retain(|_, key| key.tenant != name);
        Ok(existed)
    }

    async fn put_key(&self, key: KeyRecord) -> Result<()> {
        let mut state = self.state.lock();
        if !state.0.contains_key(&key.tenant) {
            return Err(unknown_tenant(&key.tenant));
        }
        state.1.insert(key.id.clone(), key);
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>> {
        Ok(self.state.lock().1.values().cloned().collect())
    }
}

/// [`TenantStores`] that hand out fresh [`MemoryStore`]s: each tenant's store
/// lives as long as the process (or until destroyed).
#[derive(Debug, Default, Clone)]
pub struct MemoryTenantStores {
    stores: Arc<Mutex<BTreeMap<String, MemoryStore>>>,
}

#[async_trait]
impl TenantStores for MemoryTenantStores {
    async fn open(&self, tenant: &str) -> Result<SharedStore> {
        super::validate_tenant_name(tenant)?;
        let store = self
            .stores
            .lock()
            .entry(tenant.to_owned())
            .or_default()
            .clone();
        Ok(Arc::new(store))
    }

    async fn destroy(&self, tenant: &str) -> Result<()> {
        self.stores.lock().remove(tenant);
        Ok(())
    }
}
