//! The PostgreSQL backend: one database shared by several stateless API nodes.
//!
//! The embedded store keeps a tenant's data in a file that only one process may
//! open, which ties a tenant to one machine. With this backend every node
//! connects to the same PostgreSQL, which becomes the system of record: any
//! node can take any request, and nodes can come and go.
//!
//! The semantics are those of the [`Store`](crate::Store) contract, checked by
//! the same [`conformance`](crate::conformance) suite as the other backends:
//! - every write is one transaction, acknowledged after PostgreSQL committed it;
//! - the writes of one tenant are serialized by locking the tenant's row of
//!   `tenant_counters` (`SELECT ... FOR UPDATE`) first in every write
//!   transaction, whichever node runs it, so dense indices and `seq` are handed
//!   out in order and without gaps, exactly like the embedded store's single
//!   writer. Different tenants never wait for each other;
//! - an event batch is inserted with one multi-row statement, and ids it sees for
//!   the first time get their index and placeholder record in the same
//!   transaction;
//! - an import session is one open transaction that holds the tenant's counters
//!   lock until it commits or is dropped, so other writes of the tenant wait.
//!
//! The schema lives in `crates/store/migrations`, embedded in the binary and
//! applied by [`PostgresCluster::connect`] (PostgreSQL serializes concurrent
//! migrations of several nodes starting at once). Besides the tenants' data the
//! cluster keeps the [registry](PostgresRegistry), the promoted model of each
//! tenant ([`SnapshotStore`]) and elects one trainer per tenant
//! ([`PostgresCluster::try_trainer_lock`]).

mod import;
mod lock;
mod registry;
mod store;
mod write;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tephra_core::Timestamp;

pub use lock::TrainerLock;
pub use registry::{PostgresRegistry, PostgresTenantStores};
pub use store::PostgresStore;

use crate::snapshots::SnapshotStore;
use crate::{Result, StoreError};

/// The schema, applied in order by [`PostgresCluster::connect`].
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How a [`PostgresCluster`] connects, for operators sizing a deployment: the
/// connections of all nodes together must stay below the server's
/// `max_connections`.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections this node keeps open (each import session and each
    /// trainer lock holds one of its own while it lasts).
    pub max_connections: u32,
    /// How long [`PostgresCluster::connect`] waits for the first connection
    /// before reporting the database unreachable.
    pub connect_timeout: Duration,
    /// How long an operation waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// A connection pool to the PostgreSQL database shared by all nodes, handing
/// out the tenants' stores, the registry, model snapshots and trainer locks.
///
/// Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PostgresCluster {
    pool: PgPool,
    /// The URL without its password, for messages.
    url: Arc<str>,
    gates: WriteGates,
}

/// The write gate of each tenant on this node: one asynchronous mutex per
/// tenant, shared by every handle of its store made by one cluster.
///
/// The database serializes a tenant's writes anyway (its counters lock), so
/// queueing them in the process first loses no throughput, and spares the
/// pool: without it, every write waiting for the lock would hold a connection,
/// and a burst of writes to one tenant could leave none for reads.
#[derive(Clone, Default)]
struct WriteGates(Arc<parking_lot::Mutex<HashMap<Arc<str>, Weak<GateLock>>>>);

/// The mutex of a tenant's write gate.
type GateLock = tokio::sync::Mutex<()>;

/// A tenant's write gate.
type WriteGate = Arc<GateLock>;

impl WriteGates {
    /// The gate of `tenant`, made if no live handle has it.
    fn gate(&self, tenant: &str) -> WriteGate {
        let mut gates = self.0.lock();
        if let Some(gate) = gates.get(tenant).and_then(Weak::upgrade) {
            return gate;
        }
        // Forget the gates of tenants whose handles are all gone.
        gates.retain(|_, gate| gate.strong_count() > 0);
        let gate = WriteGate::default();
        gates.insert(tenant.into(), Arc::downgrade(&gate));
        gate
    }
}

impl std::fmt::Debug for PostgresCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresCluster")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PostgresCluster {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`)
    /// with [`PostgresOptions::default`] and brings its schema up to date.
    ///
    /// Fails with [`StoreError::Io`] naming the URL (without its password) if
    /// the database cannot be reached, and with [`StoreError::UnsupportedVersion`]
    /// if a newer Tephra already migrated it further than this build knows.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// [`connect`](Self::connect) with explicit pool sizes and timeouts.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self> {
        let shown = redacted_url(url);
        let connect_options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Io(format!("invalid PostgreSQL URL {shown}: {e}")))?;
        // One plain connection first: the pool would retry a refused
        // connection until its timeout and then report only that it timed out.
        let mut conn = match tokio::time::timeout(
            options.connect_timeout,
            PgConnection::connect_with(&connect_options),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(StoreError::Io(format!(
                    "PostgreSQL is not reachable at {shown}: {e}"
                )))
            }
            Err(_) => {
                return Err(StoreError::Io(format!(
                    "PostgreSQL is not reachable at {shown}: no answer within {} s",
                    options.connect_timeout.as_secs_f64()
                )))
            }
        };
        migrate(&mut conn, &shown).await?;
        if let Err(e) = conn.close().await {
            tracing::debug!(error = %e, "closing the migration connection");
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect_options);
        Ok(Self {
            pool,
            url: shown.into(),
            gates: WriteGates::default(),
        })
    }

    /// The database's URL without its password, for logs.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store of `tenant` (created on its first write). Handles are cheap
    /// and may be made on any number of nodes: they coordinate through the
    /// database.
    pub fn store(&self, tenant: &str) -> PostgresStore {
        PostgresStore::new(self.pool.clone(), tenant, self.gates.gate(tenant))
    }

    /// The registry of tenants and API keys kept in this database.
    pub fn registry(&self) -> PostgresRegistry {
        PostgresRegistry::new(self.pool.clone())
    }

    /// Opens and destroys tenants' stores in this database.
    pub fn tenant_stores(&self) -> PostgresTenantStores {
        PostgresTenantStores::new(self.pool.clone(), self.gates.clone())
    }

    /// Tries to become the one node that trains `tenant`'s models.
    ///
    /// Takes a PostgreSQL advisory lock on a connection of its own, held by the
    /// returned [`TrainerLock`]: `None` if another session (on this node or
    /// another) holds it. The lock ends when the `TrainerLock` is dropped or
    /// released, or when this process dies and its connection closes, so
    /// another node can take over.
    pub async fn try_trainer_lock(&self, tenant: &str) -> Result<Option<TrainerLock>> {
        TrainerLock::try_acquire(&self.pool, tenant).await
    }

    /// Closes every connection of the pool, waiting for those in use to come
    /// back: call it at shutdown so the database frees them at once.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl SnapshotStore for PostgresCluster {
    async fn put_snapshot(&self, tenant: &str, version: &str, bytes: Vec<u8>) -> Result<()> {
        tephra_core::validate_id("version", version)?;
        sqlx::query(
            "INSERT INTO model_snapshots (tenant, version, data, saved_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant) DO UPDATE \
             SET version = EXCLUDED.version, data = EXCLUDED.data, saved_at = EXCLUDED.saved_at",
        )
        .bind(tenant)
        .bind(version)
        .bind(bytes)
        .bind(Timestamp::now().millis())
        .execute(&self.pool)
        .await
        .doing("saving a model snapshot")?;
        Ok(())
    }

    async fn get_snapshot(&self, tenant: &str) -> Result<Option<(String, Vec<u8>)>> {
        sqlx::query_as("SELECT version, data FROM model_snapshots WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await
            .doing("loading a model snapshot")
    }

    async fn snapshot_version(&self, tenant: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT version FROM model_snapshots WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await
            .doing("reading the model snapshot's version")
    }
}

/// Applies the migrations this build knows that the database lacks.
async fn migrate(conn: &mut PgConnection, shown: &str) -> Result<()> {
    MIGRATOR.run(conn).await.map_err(|e| match e {
        MigrateError::VersionMissing(found) => StoreError::UnsupportedVersion {
            found: u32::try_from(found).unwrap_or(u32::MAX),
            supported: MIGRATOR
                .iter()
                .map(|m| u32::try_from(m.version).unwrap_or(u32::MAX))
                .max()
                .unwrap_or(0),
        },
        e => StoreError::Io(format!(
            "bringing the schema of the PostgreSQL database at {shown} up to date failed: {e}"
        )),
    })
}

/// `url` with its password (in the user part or the query) replaced by `***`,
/// so that it can be logged and shown in errors.
///
/// Anything that does not look like a URL is not shown at all, since it may be
/// a connection string with a password in it.
pub fn redacted_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return "<a connection string that is not a URL>".to_owned();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

/// Turns a database error into a [`StoreError`] saying what was being done.
trait Doing<T> {
    fn doing(self, what: &str) -> Result<T>;
}

impl<T> Doing<T> for std::result::Result<T, sqlx::Error> {
    fn doing(self, what: &str) -> Result<T> {
        self.map_err(|e| db_error(what, e))
    }
}

/// A database error as a [`StoreError`]: the pool being closed means the
/// store was shut down; anything else is a storage failure.
fn db_error(what: &str, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolClosed => StoreError::Closed,
        e => StoreError::Io(format!("PostgreSQL failed while {what}: {e}")),
    }
}

/// A stored index as a dense index: out of range means the rows were damaged.
fn dense_index(value: i64, what: &str) -> Result<u32> {
    u32::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{what} has the impossible index {value}")))
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redacted_url("postgres://tephra:s3cret@db.internal:5432/tephra"),
            "postgres://tephra:***@db.internal:5432/tephra"
        );
        assert_eq!(
            redacted_url("postgres://postgres@127.0.0.1/test?sslmode=disable&password=x"),
            "postgres://postgres@127.0.0.1/test?sslmode=disable&password=***"
        );
        assert_eq!(
            redacted_url("postgresql://u:p:q@host"),
            "postgresql://u:***@host"
        );
        assert_eq!(
            redacted_url("host=db password=secret"),
            "<a connection string that is not a URL>"
        );
    }
}
