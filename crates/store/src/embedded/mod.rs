//! The embedded backend: one redb file per tenant in the data directory.
//!
//! Zero setup and durable: by default a write is acknowledged only after its
//! transaction is committed with redb's immediate durability (fsync), and
//! concurrent writes share commits through a single writer thread (see `writer`);
//! [`Durability::Periodic`] trades a bounded window of acknowledged writes for
//! speed. Id maps and counters are kept in memory (see `state`); reads run in redb
//! read transactions on tokio's blocking pool, so long scans never stall the async
//! runtime.
//!
//! A disk failure poisons redb's handle of the file; the writer thread then
//! serves reads from a read-only view of the file and reopens it by itself once
//! the disk accepts writes again (see `writer`). [`FaultSwitch`] makes the disk
//! fail on demand, to test exactly that (see `backend`).

mod backend;
pub(crate) mod codec;
mod import;
mod options;
mod read;
mod resolve;
mod state;
pub(crate) mod tables;
mod txn;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::{Condvar, Mutex, RwLock};
use redb::Database;
use tephra_core::{Event, Item, ItemPatch, User, UserPatch, ValidationError};
use tokio::sync::{mpsc, oneshot};

pub use self::options::{Durability, FaultMode, FaultSwitch, StoreOptions};
use self::state::{Index, Staged};
use self::txn::{Op, Outcome};
use self::writer::Request;
use crate::{
    validate_events, validate_items, validate_users, IdMaps, ImportSession, Result, Seq, Store,
    StoreCounts, StoreError, StoredEvent,
};

/// Longest time a read waits for the writer to install a new handle of the file
/// after a disk failure (normally the time it takes to open the file).
const HANDLE_WAIT: Duration = Duration::from_secs(5);

/// Name of the store file inside a tenant's directory.
pub const STORE_FILE_NAME: &str = "tephra.redb";

/// A [`Store`] in a redb file at `<data_dir>/tenants/<tenant>/tephra.redb`.
///
/// Only one process (and one `EmbeddedStore`) may have a file open at a time; a
/// second open fails with [`StoreError::Locked`]. Dropping the last handle (and
/// the last import session) finishes pending writes and closes the file, so the
/// same directory can be reopened right after.
///
/// When the disk fails, writes are refused with [`StoreError::Io`] (nothing of
/// the batch stored) while reads go on from the file's last durable commit, and
/// the store resumes writing by itself at the first write after the disk
/// recovers; callers never need to reopen it. See [`Durability`] for what an
/// acknowledgement guarantees.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.inner.shared.path)
            .finish_non_exhaustive()
    }
}

/// What the writer thread and the readers share.
pub(crate) struct Shared {
    /// The handle readers use: redb's handle of the file, or a read-only view of
    /// it while the file cannot be written, or none for the moment the writer
    /// swaps one for the other (see `writer`).
    db: Mutex<Option<Arc<Database>>>,
    /// Signalled when a handle is installed in `db`.
    db_installed: Condvar,
    path: PathBuf,
    /// Passed to every reopen of the file, so that faults keep being injected.
    faults: Option<FaultSwitch>,
    /// The page cache size, for every reopen too.
    cache_bytes: usize,
    index: RwLock<Index>,
}

impl Shared {
    /// The current handle of the file; while the writer swaps handles, waits for
    /// the new one (at most [`HANDLE_WAIT`]), so that reads do not fail meanwhile.
    ///
    /// The writer thread itself only calls this while a handle is installed.
    fn db(&self) -> Result<Arc<Database>> {
        let deadline = Instant::now() + HANDLE_WAIT;
        let mut db = self.db.lock();
        loop {
            if let Some(db) = db.as_ref() {
                return Ok(db.clone());
            }
            if self.db_installed.wait_until(&mut db, deadline).timed_out() {
                return Err(StoreError::Io(format!(
                    "the store file {} could not be reopened after a disk failure \
                     (see the log); retry later",
                    self.path.display()
                )));
            }
        }
    }

    /// Makes `db` the handle everyone uses; returns the one it replaces.
    fn swap_db(&self, db: Option<Arc<Database>>) -> Option<Arc<Database>> {
        let installed = db.is_some();
        let old = std::mem::replace(&mut *self.db.lock(), db);
        if installed {
            self.db_installed.notify_all();
        }
        old
    }

    /// Teaches the in-memory index what a committed transaction did.
    fn merge(&self, staged: Staged) -> Result<()> {
        self.index.write().merge(staged).inspect_err(|e| {
            tracing::error!(error = %e, path = %self.path.display(), "in-memory index disagrees with the store file");
        })
    }
}

/// The store proper; dropping it stops the writer thread and closes the file.
pub(crate) struct Inner {
    shared: Arc<Shared>,
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit; waiting
        // for it releases the file before the drop returns.
        self.requests.take();
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!(path = %self.shared.path.display(), "the store's writer thread panicked");
            }
        }
    }
}

impl EmbeddedStore {
    /// Opens the store of `tenant` under `data_dir`, creating directories and the
    /// file as needed.
    ///
    /// Tenant names must be valid ids made only of ASCII letters, digits, `_` and
    /// `-`, because they become directory names. Fails with
    /// [`StoreError::Locked`] if the file is already open (in this or another
    /// process), [`StoreError::UnsupportedVersion`] if another format version wrote
    /// it, and [`StoreError::Corrupt`] if its id maps are inconsistent.
    ///
    /// Writes are acknowledged once fsynced ([`Durability::Immediate`]); see
    /// [`Self::open_with`] for the other options.
    pub fn open(data_dir: &Path, tenant: &str) -> Result<Self> {
        Self::open_with(data_dir, tenant, StoreOptions::default())
    }

    /// Opens the store of `tenant` under `data_dir` like [`Self::open`], with a
    /// choice of durability (and, for tests, injected disk faults).
    ///
    /// Also fails with [`StoreError::Invalid`] if the options cannot work (a zero
    /// interval).
    pub fn open_with(data_dir: &Path, tenant: &str, options: StoreOptions) -> Result<Self> {
        validate_tenant(tenant)?;
        options.validate()?;
        let dir = data_dir.join("tenants").join(tenant);
        std::fs::create_dir_all(&dir).map_err(|e| {
            StoreError::Io(format!("creating the directory {}: {e}", dir.display()))
        })?;
        Self::open_file_with(&dir.join(STORE_FILE_NAME), options)
    }

    /// Opens (or creates) a store file at an explicit path, with the default
    /// options.
    pub fn open_file(path: &Path) -> Result<Self> {
        Self::open_file_with(path, StoreOptions::default())
    }

    /// Opens (or creates) a store file at an explicit path, with `options`; fails
    /// like [`Self::open_with`].
    pub fn open_file_with(path: &Path, options: StoreOptions) -> Result<Self> {
        options.validate()?;
        let db = backend::open_database(path, options.faults.as_ref(), options.cache_bytes)?;
        let index = tables::init(&db)?;
        let durable_commits = match options.durability {
            Durability::Immediate => 0,
            Durability::Periodic { .. } => tables::durable_commits(&db)?,
        };
        let shared = Arc::new(Shared {
            db: Mutex::new(Some(Arc::new(db))),
            db_installed: Condvar::new(),
            path: path.to_owned(),
            faults: options.faults,
            cache_bytes: options.cache_bytes,
            index: RwLock::new(index),
        });
        let (requests, writer) =
            writer::spawn(shared.clone(), options.durability, durable_commits)?;
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                requests: Some(requests),
                writer: Some(writer),
            }),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Queues `op` for the next group commit and waits for its durable outcome.
    async fn write(&self, op: Op) -> Result<Outcome> {
        let requests = self.inner.requests.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        requests
            .send(Request::Write(op, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a read on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&*inner.shared.db()?))
            .await
            .map_err(|e| StoreError::Io(format!("a read task failed: {e}")))?
    }
}

/// Checks a tenant name (see [`crate::registry::validate_tenant_name`]).
fn validate_tenant(tenant: &str) -> Result<(), ValidationError> {
    crate::registry::validate_tenant_name(tenant)
}

/// The answer of the writer did not match the request: a bug, reported as such.
fn unexpected(outcome: Outcome) -> StoreError {
    StoreError::Io(format!("internal error: the writer answered {outcome:?}"))
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn upsert_items(&self, items: Vec<Item>) -> Result<Vec<u32>> {
        validate_items(&items)?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        match self.write(Op::UpsertItems(items)).await? {
            Outcome::Indices(indices) => Ok(indices),
            other => Err(unexpected(other)),
        }
    }

    async fn get_item(&self, id: &str) -> Result<Option<Item>> {
        let id = id.to_owned();
        self.read(move |db| read::get(db, tables::ITEMS, &id, codec::decode_item))
            .await
    }

    async fn patch_item(&self, id: &str, patch: ItemPatch) -> Result<Option<Item>> {
        match self.write(Op::PatchItem(id.to_owned(), patch)).await? {
            Outcome::Item(item) => Ok(item),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_item(&self, id: &str) -> Result<bool> {
        match self.write(Op::DeleteItem(id.to_owned())).await? {
            Outcome::Deleted(deleted) => Ok(deleted),
            other => Err(unexpected(other)),
        }
    }

    async fn list_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>> {
        let after = after.map(str::to_owned);
        self.read(move |db| {
            read::list(
                db,
                tables::ITEMS,
                after.as_deref(),
                limit,
                codec::decode_item,
            )
        })
        .await
    }

    async fn upsert_users(&self, users: Vec<User>) -> Result<Vec<u32>> {
        validate_users(&users)?;
        if users.is_empty() {
            return Ok(Vec::new());
        }
        match self.write(Op::UpsertUsers(users)).await? {
            Outcome::Indices(indices) => Ok(indices),
            other => Err(unexpected(other)),
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        let id = id.to_owned();
        self.read(move |db| read::get(db, tables::USERS, &id, codec::decode_user))
            .await
    }

    async fn patch_user(&self, id: &str, patch: UserPatch) -> Result<Option<User>> {
        match self.write(Op::PatchUser(id.to_owned(), patch)).await? {
            Outcome::User(user) => Ok(user),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_user(&self, id: &str) -> Result<bool> {
        match self.write(Op::DeleteUser(id.to_owned())).await? {
            Outcome::Deleted(deleted) => Ok(deleted),
            other => Err(unexpected(other)),
        }
    }

    async fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>> {
        let after = after.map(str::to_owned);
        self.read(move |db| {
            read::list(
                db,
                tables::USERS,
                after.as_deref(),
                limit,
                codec::decode_user,
            )
        })
        .await
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<Vec<StoredEvent>> {
        validate_events(&events)?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        match self.write(Op::AppendEvents(events)).await? {
            Outcome::Events(stored) => Ok(stored),
            other => Err(unexpected(other)),
        }
    }

    async fn scan_events(&self, from: Seq, limit: usize) -> Result<Vec<StoredEvent>> {
        self.read(move |db| read::scan_events(db, from, limit))
            .await
    }

    async fn events_by_seq(&self, seqs: &[Seq]) -> Result<Vec<StoredEvent>> {
        let seqs = seqs.to_vec();
        self.read(move |db| read::events_by_seq(db, &seqs)).await
    }

    async fn id_maps(&self) -> Result<IdMaps> {
        Ok(self.inner.shared.index.read().ids.clone())
    }

    async fn counts(&self) -> Result<StoreCounts> {
        Ok(self.inner.shared.index.read().counts())
    }

    async fn put_experiment(&self, name: &str, doc: &serde_json::Value) -> Result<()> {
        tephra_core::validate_id("name", name)?;
        let bytes = serde_json::to_vec(doc)
            .map_err(|e| StoreError::Io(format!("encoding an experiment: {e}")))?;
        match self
            .write(Op::PutExperiment(name.to_owned(), bytes))
            .await?
        {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn experiments(&self) -> Result<Vec<(String, serde_json::Value)>> {
        self.read(read::experiments).await
    }

    async fn delete_experiment(&self, name: &str) -> Result<bool> {
        match self.write(Op::DeleteExperiment(name.to_owned())).await? {
            Outcome::Deleted(removed) => Ok(removed),
            other => Err(unexpected(other)),
        }
    }

    async fn begin_import(&self) -> Result<Box<dyn ImportSession>> {
        let requests = self.inner.requests.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        requests
            .send(Request::BeginImport(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        let link = answer.await.map_err(|_| StoreError::Closed)??;
        Ok(Box::new(import::EmbeddedImport::new(
            link,
            self.inner.clone(),
        )))
    }
}
