//! Model snapshots shared by every node of a cluster.
//!
//! A single node trains (see [`PostgresCluster::try_trainer_lock`]) and
//! promotes a model; the other nodes serve it. They cannot read each other's
//! disks, so the promoted model travels through the shared store: the trainer
//! saves it with [`SnapshotStore::put_snapshot`], and the others poll the cheap
//! [`SnapshotStore::snapshot_version`] and download the bytes only when the
//! version changed.
//!
//! [`PostgresCluster::try_trainer_lock`]: crate::PostgresCluster::try_trainer_lock

use async_trait::async_trait;

use crate::Result;

/// Where the promoted model of each tenant is kept for every node to load.
///
/// The bytes are opaque to the store (the models crate encodes them); the
/// version is whatever the trainer names the snapshot, and lets readers skip
/// the download when they already serve it.
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// Saves tenant's promoted model snapshot under `version`, replacing the previous one.
    async fn put_snapshot(&self, tenant: &str, version: &str, bytes: Vec<u8>) -> Result<()>;
    /// The tenant's latest snapshot: (version, bytes), if any.
    async fn get_snapshot(&self, tenant: &str) -> Result<Option<(String, Vec<u8>)>>;
    /// Only the version of the latest snapshot (cheap).
    async fn snapshot_version(&self, tenant: &str) -> Result<Option<String>>;
}
