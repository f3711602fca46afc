//! Import sessions: one transaction across many batches.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Postgres, Transaction};
use tephra_core::{Event, Item, User};

use super::store::WriteTurn;
use super::write::{self, Counters};
use super::Doing;
use crate::{
    validate_events, validate_items, validate_users, ImportSession, Result, StoreCounts, StoreError,
};

/// An import into a [`PostgresStore`](super::PostgresStore).
///
/// Holds one transaction, and in it the tenant's counters lock, from
/// [`Store::begin_import`](crate::Store::begin_import) to `commit`: other
/// writes of the tenant, on every node, wait until the import ends, and
/// nothing of it is visible before. Each batch is validated before anything
/// of it is written, so a refused batch leaves the transaction as it was and
/// the session usable. Dropping the session rolls the transaction back.
pub(super) struct PostgresImport {
    tenant: Arc<str>,
    tx: Transaction<'static, Postgres>,
    counters: Counters,
    /// Why an earlier batch failed in the database, which aborted the
    /// transaction: every later call fails with it.
    failed: Option<String>,
    /// Keeps this node's other writes of the tenant queued in the process
    /// rather than on pool connections.
    _turn: WriteTurn,
}

impl PostgresImport {
    pub(super) fn new(
        tenant: Arc<str>,
        tx: Transaction<'static, Postgres>,
        counters: Counters,
        turn: WriteTurn,
    ) -> Self {
        Self {
            tenant,
            tx,
            counters,
            failed: None,
            _turn: turn,
        }
    }

    /// Refuses to go on after a storage failure.
    fn check_usable(&self) -> Result<()> {
        match &self.failed {
            Some(why) => Err(StoreError::Io(format!(
                "this import failed earlier and stores nothing: {why}"
            ))),
            None => Ok(()),
        }
    }

    /// Remembers a storage failure of a batch (refusals are not failures).
    fn note<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if !matches!(e, StoreError::Invalid(_)) {
                self.failed = Some(e.to_string());
            }
        }
        result
    }
}

#[async_trait]
impl ImportSession for PostgresImport {
    async fn add_items(&mut self, items: Vec<Item>) -> Result<()> {
        self.check_usable()?;
        validate_items(&items)?;
        let result = write::upsert_items(&mut self.tx, &self.tenant, &mut self.counters, &items)
            .await
            .map(drop);
        self.note(result)
    }

    async fn add_users(&mut self, users: Vec<User>) -> Result<()> {
        self.check_usable()?;
        validate_users(&users)?;
        let result = write::upsert_users(&mut self.tx, &self.tenant, &mut self.counters, &users)
            .await
            .map(drop);
        self.note(result)
    }

    async fn add_events(&mut self, events: Vec<Event>) -> Result<()> {
        self.check_usable()?;
        validate_events(&events)?;
        let result = write::append_events(&mut self.tx, &self.tenant, &mut self.counters, events)
            .await
            .map(drop);
        self.note(result)
    }

    async fn commit(self: Box<Self>) -> Result<StoreCounts> {
        self.check_usable()?;
        let Self {
            tenant,
            mut tx,
            counters,
            ..
        } = *self;
        write::save_counters(&mut tx, &tenant, &counters).await?;
        tx.commit().await.doing("committing an import")?;
        Ok(counters.values.counts())
    }
}
