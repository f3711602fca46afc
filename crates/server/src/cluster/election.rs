//! One trainer per tenant: whoever holds the tenant's lease trains; the
//! others follow its models. A lease ends when its holder drops it or dies,
//! and the next node to ask gets it.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

/// A held trainer lease; dropping it gives the role up.
#[async_trait]
pub trait Lease: Send + Sync {
    /// Whether the lease still holds (its connection is alive).
    async fn is_held(&mut self) -> bool {
        true
    }
}

/// Hands out trainer leases.
#[async_trait]
pub trait TrainerElection: Send + Sync + 'static {
    /// The lease of `tenant` if nobody holds it, `None` if someone does.
    async fn try_acquire(&self, tenant: &str) -> Result<Option<Box<dyn Lease>>, String>;
}

/// An election inside one process (tests, and nodes sharing a process).
#[derive(Debug, Default, Clone)]
pub struct MemoryElection {
    held: Arc<Mutex<HashSet<String>>>,
}

struct MemoryLease {
    tenant: String,
    held: Arc<Mutex<HashSet<String>>>,
}

#[async_trait]
impl Lease for MemoryLease {}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        self.held.lock().remove(&self.tenant);
    }
}

#[async_trait]
impl TrainerElection for MemoryElection {
    async fn try_acquire(&self, tenant: &str) -> Result<Option<Box<dyn Lease>>, String> {
        if !self.held.lock().insert(tenant.to_owned()) {
            return Ok(None);
        }
        Ok(Some(Box::new(MemoryLease {
            tenant: tenant.to_owned(),
            held: Arc::clone(&self.held),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_tenant_until_dropped() {
        let election = MemoryElection::default();
        let lease = election.try_acquire("a").await.unwrap().expect("free");
        assert!(election.try_acquire("a").await.unwrap().is_none());
        assert!(election.try_acquire("b").await.unwrap().is_some());
        drop(lease);
        assert!(election.try_acquire("a").await.unwrap().is_some());
    }
}
