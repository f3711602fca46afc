//! Bulk import into an embedded store: one write transaction over many batches.
//!
//! The transaction runs on the writer thread (see `writer`), fed through the
//! session's own channel. The importer's task does everything that needs no file
//! access (validation, assigning indices to new ids, encoding event records) and
//! the writer only inserts, so the two work in parallel on consecutive batches.
//! This is safe because no other write runs while the session is open: the
//! committed id maps cannot change under the session.
//!
//! A batch refused by validation is reported by the `add_*` call that sent it,
//! nothing of it is added, and the session stays usable, so the caller can skip
//! it or give up. A storage failure poisons the session: the next call (at the
//! latest `commit`) reports it and nothing is stored. Ids assigned by the session
//! reach the in-memory maps only when the commit succeeds.
//!
//! While a session is open, other writes to the store wait until it commits or is
//! dropped. A task holding a session must therefore not await another write to the
//! same store before finishing the session.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use tephra_core::{Event, Item, User};
use tokio::sync::{mpsc, oneshot};

use super::resolve::{resolve_events, EncodedEvents};
use super::state::{NewIds, Staged};
use super::tables::{self, DbResultExt};
use super::txn::Changes;
use super::writer::{cause, write_failed, Reply};
use super::{Inner, Shared};
use crate::{
    validate_events, validate_items, validate_users, IdMaps, ImportSession, Result, StoreCounts,
    StoreError,
};

/// Batches queued ahead of the writer; enough to keep it busy while the importer
/// prepares the next one.
const IMPORT_QUEUE_CAPACITY: usize = 4;

/// A message from an import session to the writer.
pub(crate) enum ImportCommand {
    /// Upsert validated items with their resolved `(index, is_new)`.
    Items(Vec<Item>, Vec<(u32, bool)>),
    /// Upsert validated users with their resolved `(index, is_new)`.
    Users(Vec<User>, Vec<(u32, bool)>),
    /// Append resolved, encoded events.
    Events(EncodedEvents),
    /// Commit everything, with the ids the session assigned, and answer with the
    /// new counts.
    Commit(NewIds, Reply<StoreCounts>),
}

/// The caller's end of an import running on the writer thread.
pub(crate) struct ImportLink {
    commands: mpsc::Sender<ImportCommand>,
    /// Set by the writer when the transaction failed; later calls report it.
    failure: Arc<Mutex<Option<String>>>,
}

/// How an import session ended, for the writer.
pub(crate) enum ImportEnd {
    /// Committed durably.
    Committed,
    /// Dropped by its caller, or refused before writing: nothing happened.
    Abandoned,
    /// The storage failed (the message says how); nothing was stored.
    Failed(String),
}

/// Runs one import session on the writer thread until it commits or its caller
/// drops it. `durable_commit` is the number to record in the file with the
/// commit (periodic durability mode, see `tables::DURABLE_COMMITS_KEY`).
pub(crate) fn serve(
    shared: &Shared,
    reply: Reply<ImportLink>,
    durable_commit: Option<u64>,
) -> ImportEnd {
    let db = match shared.db() {
        Ok(db) => db,
        Err(e) => {
            let _ = reply.send(Err(e));
            return ImportEnd::Abandoned;
        }
    };
    let txn = match db.begin_write().ctx("starting the import transaction") {
        Ok(txn) => txn,
        Err(e) => {
            let failure = cause(&e);
            let _ = reply.send(Err(e));
            return ImportEnd::Failed(failure);
        }
    };
    let (commands, mut rx) = mpsc::channel(IMPORT_QUEUE_CAPACITY);
    let failure = Arc::new(Mutex::new(None));
    if reply
        .send(Ok(ImportLink {
            commands,
            failure: failure.clone(),
        }))
        .is_err()
    {
        return ImportEnd::Abandoned;
    }
    // The first storage failure, for the writer.
    let mut storage_failure = None;
    let mut changes = match Changes::open(&txn, &shared.index) {
        Ok(changes) => Some(changes),
        Err(e) => {
            *failure.lock() = Some(cause(&e));
            storage_failure = Some(cause(&e));
            None
        }
    };
    while let Some(command) = rx.blocking_recv() {
        let applied = match command {
            ImportCommand::Commit(ids, reply) => {
                let result = staged_changes(changes, ids, &failure)
                    .and_then(|staged| commit(shared, txn, staged, durable_commit));
                let end = match (&result, storage_failure) {
                    (Ok(_), _) => ImportEnd::Committed,
                    (Err(_), Some(earlier)) => ImportEnd::Failed(earlier),
                    (Err(e @ StoreError::Io(_)), None) => ImportEnd::Failed(cause(e)),
                    (Err(_), None) => ImportEnd::Abandoned,
                };
                let _ = reply.send(result.map_err(|e| write_failed("the import", &e)));
                return end;
            }
            // Once poisoned (`changes` is gone), batches are drained until the
            // caller commits or goes away.
            ImportCommand::Items(items, resolved) => changes
                .as_mut()
                .map_or(Ok(()), |c| c.put_items(&items, &resolved)),
            ImportCommand::Users(users, resolved) => changes
                .as_mut()
                .map_or(Ok(()), |c| c.put_users(&users, &resolved)),
            ImportCommand::Events(encoded) => changes
                .as_mut()
                .map_or(Ok(()), |c| c.write_events(&encoded)),
        };
        if let Err(e) = applied {
            tracing::error!(error = %e, "import transaction failed; nothing of it will be stored");
            *failure.lock() = Some(cause(&e));
            storage_failure.get_or_insert_with(|| cause(&e));
            changes = None;
        }
    }
    // Dropped without commit: the transaction aborts and the staged ids vanish.
    match storage_failure {
        Some(why) => ImportEnd::Failed(why),
        None => ImportEnd::Abandoned,
    }
}

/// What the session changed, unless it failed; ends the use of the tables so that
/// the transaction can commit.
fn staged_changes(
    changes: Option<Changes<'_>>,
    ids: NewIds,
    failure: &Mutex<Option<String>>,
) -> Result<Staged> {
    let earlier_failure = failure.lock().clone();
    match (changes, earlier_failure) {
        (Some(changes), None) => Ok(changes.into_staged_with(ids)),
        (_, why) => Err(StoreError::Io(
            why.unwrap_or_else(|| "the import failed".into()),
        )),
    }
}

fn commit(
    shared: &Shared,
    txn: redb::WriteTransaction,
    staged: Staged,
    durable_commit: Option<u64>,
) -> Result<StoreCounts> {
    if let Some(n) = durable_commit {
        tables::record_durable_commit(&txn, n)?;
    }
    txn.commit().ctx("committing the import")?;
    shared.merge(staged)?;
    Ok(shared.index.read().counts())
}

/// An import session of an [`super::EmbeddedStore`].
pub(crate) struct EmbeddedImport {
    link: ImportLink,
    /// Ids this session assigned; merged into the store's maps on commit.
    ids: NewIds,
    /// Keeps the store (and its writer thread) alive as long as the session, and
    /// gives access to the committed id maps.
    store: Arc<Inner>,
}

impl EmbeddedImport {
    /// Wraps the link answered by the writer.
    pub fn new(link: ImportLink, store: Arc<Inner>) -> Self {
        Self {
            link,
            ids: NewIds::default(),
            store,
        }
    }

    /// The failure of the transaction so far, if any.
    fn check(&self) -> Result<()> {
        match self.link.failure.lock().as_ref() {
            Some(why) => Err(StoreError::Io(why.clone())),
            None => Ok(()),
        }
    }

    /// Marks the session failed: its assigned ids no longer match what was sent.
    fn poison(&self, e: StoreError) -> StoreError {
        *self.link.failure.lock() = Some(cause(&e));
        e
    }

    async fn send(&self, command: ImportCommand) -> Result<()> {
        self.link
            .commands
            .send(command)
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Resolves the ids of a validated batch of records of one kind.
    fn resolve<'a>(
        &mut self,
        ids: impl Iterator<Item = &'a str>,
        assign: fn(&mut NewIds, &IdMaps, &str) -> Result<(u32, bool)>,
    ) -> Result<Vec<(u32, bool)>> {
        let index = self.store.shared.index.read();
        let resolved = ids
            .map(|id| assign(&mut self.ids, &index.ids, id))
            .collect::<Result<Vec<_>>>();
        drop(index);
        resolved.map_err(|e| self.poison(e))
    }
}

#[async_trait]
impl ImportSession for EmbeddedImport {
    async fn add_items(&mut self, items: Vec<Item>) -> Result<()> {
        validate_items(&items)?;
        self.check()?;
        let resolved = self.resolve(items.iter().map(|it| it.id.as_str()), NewIds::item)?;
        self.send(ImportCommand::Items(items, resolved)).await
    }

    async fn add_users(&mut self, users: Vec<User>) -> Result<()> {
        validate_users(&users)?;
        self.check()?;
        let resolved = self.resolve(users.iter().map(|u| u.id.as_str()), NewIds::user)?;
        self.send(ImportCommand::Users(users, resolved)).await
    }

    async fn add_events(&mut self, events: Vec<Event>) -> Result<()> {
        validate_events(&events)?;
        self.check()?;
        let encoded = {
            let index = self.store.shared.index.read();
            resolve_events(events, &index.ids, &mut self.ids, None)
        };
        let (encoded, _) = encoded.map_err(|e| self.poison(e))?;
        self.send(ImportCommand::Events(encoded)).await
    }

    async fn commit(self: Box<Self>) -> Result<StoreCounts> {
        self.check()?;
        let Self {
            link,
            ids,
            store: _store,
        } = *self;
        let (reply, answer) = oneshot::channel();
        link.commands
            .send(ImportCommand::Commit(ids, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(link
                .failure
                .lock()
                .as_ref()
                .map_or(StoreError::Closed, |why| StoreError::Io(why.clone()))),
        }
    }
}
