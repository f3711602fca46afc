//! Applying writes to an open write transaction.
//!
//! Used both by group commits (many callers' batches in one transaction) and by
//! import sessions (one caller's batches in one long transaction). Every id the
//! transaction assigns and every change of a counter is staged in [`Staged`] and
//! reaches the in-memory index only after the commit succeeded.
//!
//! Rule that keeps group commits safe: an operation returns `Invalid` or `Corrupt`
//! only *before* it has written anything, so such a failure concerns its caller
//! alone; any other error may leave partial writes behind and fails the whole
//! transaction.

use parking_lot::RwLock;
use redb::{ReadableTable, Table, WriteTransaction};
use tephra_core::{Event, Item, ItemPatch, User, UserPatch};

use super::codec;
use super::resolve::{resolve_events, EncodedEvents};
use super::state::{Index, NewIds, Staged};
use super::tables::{self, DbResultExt};
use crate::{Result, StoreError, StoredEvent};

/// One write operation, already validated where validation is pure.
///
/// `Clone`, so that the periodic durability mode can keep the operations of
/// non-durable commits and apply them again after a disk failure.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Upsert validated items.
    UpsertItems(Vec<Item>),
    /// Upsert validated users.
    UpsertUsers(Vec<User>),
    /// Patch an item (validated against the current record inside the transaction).
    PatchItem(String, ItemPatch),
    /// Patch a user.
    PatchUser(String, UserPatch),
    /// Delete an item record.
    DeleteItem(String),
    /// Delete a user record.
    DeleteUser(String),
    /// Append validated events.
    AppendEvents(Vec<Event>),
    /// Save an experiment definition (name, JSON bytes).
    PutExperiment(String, Vec<u8>),
    /// Delete an experiment definition.
    DeleteExperiment(String),
}

/// What an [`Op`] returns to its caller.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Indices of upserted records.
    Indices(Vec<u32>),
    /// The patched item, if it existed.
    Item(Option<Item>),
    /// The patched user, if they existed.
    User(Option<User>),
    /// Whether a record was deleted.
    Deleted(bool),
    /// Appended events.
    Events(Vec<StoredEvent>),
    /// Done, nothing to report.
    Done,
}

/// Whether an error concerns only the operation that returned it (see the module
/// documentation).
pub(crate) fn is_op_level(e: &StoreError) -> bool {
    matches!(e, StoreError::Invalid(_) | StoreError::Corrupt(_))
}

/// The two tables that map ids of one kind to indices and back.
struct IdTables<'t> {
    ids: Table<'t, &'static str, u32>,
    keys: Table<'t, u32, &'static str>,
}

impl IdTables<'_> {
    /// Records a newly assigned id.
    fn write(&mut self, id: &str, index: u32) -> Result<()> {
        self.ids.insert(id, index).ctx("writing an id")?;
        self.keys.insert(index, id).ctx("writing an id")?;
        Ok(())
    }
}

/// The tables of one write transaction, plus what it changed so far.
pub(crate) struct Changes<'t> {
    index: &'t RwLock<Index>,
    items: Table<'t, &'static str, &'static [u8]>,
    users: Table<'t, &'static str, &'static [u8]>,
    item_ids: IdTables<'t>,
    user_ids: IdTables<'t>,
    events: Table<'t, u64, &'static [u8]>,
    experiments: Table<'t, &'static str, &'static [u8]>,
    staged: Staged,
}

impl<'t> Changes<'t> {
    /// Opens the tables of `txn`; `index` is the committed in-memory state.
    pub fn open(txn: &'t WriteTransaction, index: &'t RwLock<Index>) -> Result<Self> {
        let ctx = "opening tables";
        Ok(Self {
            index,
            items: txn.open_table(tables::ITEMS).ctx(ctx)?,
            users: txn.open_table(tables::USERS).ctx(ctx)?,
            item_ids: IdTables {
                ids: txn.open_table(tables::ITEM_IDS).ctx(ctx)?,
                keys: txn.open_table(tables::ITEM_KEYS).ctx(ctx)?,
            },
            user_ids: IdTables {
                ids: txn.open_table(tables::USER_IDS).ctx(ctx)?,
                keys: txn.open_table(tables::USER_KEYS).ctx(ctx)?,
            },
            events: txn.open_table(tables::EVENTS).ctx(ctx)?,
            experiments: txn.open_table(tables::EXPERIMENTS).ctx(ctx)?,
            staged: Staged::default(),
        })
    }

    /// Ends the use of the tables (so that the transaction can commit) and hands
    /// over what must be merged into memory after the commit.
    pub fn into_staged(self) -> Staged {
        self.staged
    }

    /// Ends the use of the tables like [`Self::into_staged`], for a transaction
    /// whose ids were assigned outside (by an import session).
    pub fn into_staged_with(self, ids: NewIds) -> Staged {
        Staged { ids, ..self.staged }
    }

    /// Applies one operation of a group commit, assigning ids as it goes.
    pub fn apply(&mut self, op: Op) -> Result<Outcome> {
        Ok(match op {
            Op::UpsertItems(items) => Outcome::Indices(self.upsert_items(&items)?),
            Op::UpsertUsers(users) => Outcome::Indices(self.upsert_users(&users)?),
            Op::PatchItem(id, patch) => Outcome::Item(self.patch_item(&id, patch)?),
            Op::PatchUser(id, patch) => Outcome::User(self.patch_user(&id, patch)?),
            Op::DeleteItem(id) => Outcome::Deleted(self.delete_item(&id)?),
            Op::DeleteUser(id) => Outcome::Deleted(self.delete_user(&id)?),
            Op::AppendEvents(events) => Outcome::Events(self.append_events(events)?),
            Op::PutExperiment(name, doc) => {
                self.experiments
                    .insert(name.as_str(), doc.as_slice())
                    .ctx("saving an experiment")?;
                Outcome::Done
            }
            Op::DeleteExperiment(name) => {
                let removed = self
                    .experiments
                    .remove(name.as_str())
                    .ctx("deleting an experiment")?
                    .is_some();
                Outcome::Deleted(removed)
            }
        })
    }

    fn upsert_items(&mut self, items: &[Item]) -> Result<Vec<u32>> {
        let index_lock = self.index;
        let resolved = {
            let index = index_lock.read();
            items
                .iter()
                .map(|it| self.staged.ids.item(&index.ids, &it.id))
                .collect::<Result<Vec<_>>>()?
        };
        self.put_items(items, &resolved)?;
        Ok(resolved.into_iter().map(|(i, _)| i).collect())
    }

    fn upsert_users(&mut self, users: &[User]) -> Result<Vec<u32>> {
        let index_lock = self.index;
        let resolved = {
            let index = index_lock.read();
            users
                .iter()
                .map(|u| self.staged.ids.user(&index.ids, &u.id))
                .collect::<Result<Vec<_>>>()?
        };
        self.put_users(users, &resolved)?;
        Ok(resolved.into_iter().map(|(i, _)| i).collect())
    }

    fn append_events(&mut self, events: Vec<Event>) -> Result<Vec<StoredEvent>> {
        let index_lock = self.index;
        let (encoded, stored) = {
            let index = index_lock.read();
            let first_seq = index.next_seq + self.staged.events;
            resolve_events(events, &index.ids, &mut self.staged.ids, Some(first_seq))?
        };
        self.write_events(&encoded)?;
        Ok(stored)
    }

    /// Writes items whose indices were resolved already: `(index, is_new)` each.
    pub fn put_items(&mut self, items: &[Item], resolved: &[(u32, bool)]) -> Result<()> {
        for (item, &(index, new)) in items.iter().zip(resolved) {
            if new {
                self.item_ids.write(&item.id, index)?;
            }
            self.put_item(item)?;
        }
        Ok(())
    }

    /// Writes users whose indices were resolved already.
    pub fn put_users(&mut self, users: &[User], resolved: &[(u32, bool)]) -> Result<()> {
        for (user, &(index, new)) in users.iter().zip(resolved) {
            if new {
                self.user_ids.write(&user.id, index)?;
            }
            self.put_user(user)?;
        }
        Ok(())
    }

    fn put_item(&mut self, item: &Item) -> Result<()> {
        let record = codec::encode_item(item)?;
        if self
            .items
            .insert(item.id.as_str(), record.as_slice())
            .ctx("writing an item")?
            .is_none()
        {
            self.staged.item_records += 1;
        }
        Ok(())
    }

    fn put_user(&mut self, user: &User) -> Result<()> {
        let record = codec::encode_user(user)?;
        if self
            .users
            .insert(user.id.as_str(), record.as_slice())
            .ctx("writing a user")?
            .is_none()
        {
            self.staged.user_records += 1;
        }
        Ok(())
    }

    /// Appends resolved events at the end of the log, with id rows and placeholder
    /// records for the ids they introduced.
    pub fn write_events(&mut self, encoded: &EncodedEvents) -> Result<()> {
        for (index, id) in &encoded.new_users {
            self.user_ids.write(id, *index)?;
            self.put_user(&User::placeholder(id.as_str()))?;
        }
        for (index, id, first_seen) in &encoded.new_items {
            self.item_ids.write(id, *index)?;
            self.put_item(&Item::placeholder(id.as_str(), *first_seen))?;
        }
        let first_seq = self.index.read().next_seq + self.staged.events;
        for (seq, record) in (first_seq..).zip(encoded.records()) {
            self.events.insert(seq, record).ctx("appending an event")?;
        }
        self.staged.events += encoded.len() as u64;
        Ok(())
    }

    fn patch_item(&mut self, id: &str, patch: ItemPatch) -> Result<Option<Item>> {
        let Some(current) = self.items.get(id).ctx("reading an item")? else {
            return Ok(None);
        };
        let mut item = codec::decode_item(current.value())?;
        drop(current);
        item.apply(patch)?;
        let record = codec::encode_item(&item)?;
        self.items
            .insert(id, record.as_slice())
            .ctx("writing an item")?;
        Ok(Some(item))
    }

    fn patch_user(&mut self, id: &str, patch: UserPatch) -> Result<Option<User>> {
        let Some(current) = self.users.get(id).ctx("reading a user")? else {
            return Ok(None);
        };
        let mut user = codec::decode_user(current.value())?;
        drop(current);
        user.apply(patch)?;
        let record = codec::encode_user(&user)?;
        self.users
            .insert(id, record.as_slice())
            .ctx("writing a user")?;
        Ok(Some(user))
    }

    fn delete_item(&mut self, id: &str) -> Result<bool> {
        let removed = self.items.remove(id).ctx("deleting an item")?.is_some();
        if removed {
            self.staged.item_records -= 1;
        }
        Ok(removed)
    }

    fn delete_user(&mut self, id: &str) -> Result<bool> {
        let removed = self.users.remove(id).ctx("deleting a user")?.is_some();
        if removed {
            self.staged.user_records -= 1;
        }
        Ok(removed)
    }
}
