//! Cluster mode on PostgreSQL: the trainer election by advisory lock and the
//! shared model snapshots, and opening every tenant of a cluster node.

use std::sync::Arc;

use async_trait::async_trait;
use tephra_store::postgres::{PostgresCluster, TrainerLock};
use tephra_store::SnapshotStore;

use super::{ClusterLink, Lease, ModelExchange, TrainerElection};
use crate::config::Config;
use crate::error::ServerError;
use crate::tenants::Tenants;

/// Trainer leases as PostgreSQL advisory locks (see
/// [`PostgresCluster::try_trainer_lock`]): a dead node's session ends and
/// its lock with it.
struct AdvisoryElection(PostgresCluster);

struct AdvisoryLease(TrainerLock);

#[async_trait]
impl Lease for AdvisoryLease {
    async fn is_held(&mut self) -> bool {
        self.0.is_held().await
    }
}

#[async_trait]
impl TrainerElection for AdvisoryElection {
    async fn try_acquire(&self, tenant: &str) -> Result<Option<Box<dyn Lease>>, String> {
        self.0
            .try_trainer_lock(tenant)
            .await
            .map(|lock| lock.map(|l| Box::new(AdvisoryLease(l)) as Box<dyn Lease>))
            .map_err(|e| e.to_string())
    }
}

/// Model snapshots in PostgreSQL, where every node can load them.
struct SharedSnapshots(PostgresCluster);

#[async_trait]
impl ModelExchange for SharedSnapshots {
    async fn put(&self, tenant: &str, version: &str, bytes: Vec<u8>) -> Result<(), String> {
        self.0
            .put_snapshot(tenant, version, bytes)
            .await
            .map_err(|e| e.to_string())
    }

    async fn get(&self, tenant: &str) -> Result<Option<(String, Vec<u8>)>, String> {
        self.0.get_snapshot(tenant).await.map_err(|e| e.to_string())
    }

    async fn version(&self, tenant: &str) -> Result<Option<String>, String> {
        self.0
            .snapshot_version(tenant)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Opens this node of the cluster named by `config.cluster`: PostgreSQL as
/// the store of every tenant and the registry, Redis between the nodes.
pub async fn open_cluster(config: Config) -> Result<Tenants, ServerError> {
    let (Some(store), Some(cache)) = (&config.cluster.store, &config.cluster.cache) else {
        return Err(ServerError::Config(tephra_core::ValidationError::field(
            "invalid_config",
            "cluster.store",
            "cluster mode needs cluster.store (postgres://…) and cluster.cache (redis://…)",
        )));
    };
    let postgres = PostgresCluster::connect(store).await?;
    let link = ClusterLink::connect(
        cache,
        &config.cluster.namespace,
        Arc::new(AdvisoryElection(postgres.clone())),
        Arc::new(SharedSnapshots(postgres.clone())),
    )
    .await
    .map_err(|e| ServerError::Inconsistent(format!("the cache: {e}")))?;
    tracing::info!(
        store = postgres.url(),
        cache = %super::redact(cache),
        node = link.node(),
        "cluster mode"
    );
    Tenants::open_with(
        config,
        Arc::new(postgres.registry()),
        Arc::new(postgres.tenant_stores()),
        Some(link),
    )
    .await
}
