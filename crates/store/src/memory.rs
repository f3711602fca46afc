//! An in-memory backend: the reference implementation of the [`Store`] contract.
//!
//! Nothing survives a restart, so it serves tests, demos and tools that build a
//! throwaway store. It is deliberately simple (one mutex over ordered maps) so that
//! it doubles as the model the other backends are checked against.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use tephra_core::{Event, IdMap, Item, ItemPatch, User, UserPatch};

use crate::{
    validate_events, validate_items, validate_users, IdMaps, ImportSession, Result, Seq, Store,
    StoreCounts, StoredEvent,
};

/// A [`Store`] held entirely in memory.
///
/// Cheap to create, safe to share between tasks; every call takes one short lock,
/// so each batch is applied atomically with respect to other callers.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Everything the store holds, behind one lock.
#[derive(Debug, Default, Clone)]
struct State {
    items: BTreeMap<String, Item>,
    users: BTreeMap<String, User>,
    item_ids: IdMap,
    user_ids: IdMap,
    events: Vec<StoredEvent>,
    experiments: BTreeMap<String, serde_json::Value>,
}

/// Assigns the next index to `id` if it has none, keeping the map dense.
fn index_of(map: &mut IdMap, id: &str) -> u32 {
    map.get_or_insert(id).0
}

impl State {
    fn upsert_items(&mut self, items: Vec<Item>) -> Vec<u32> {
        items
            .into_iter()
            .map(|item| {
                let index = index_of(&mut self.item_ids, &item.id);
                self.items.insert(item.id.clone(), item);
                index
            })
            .collect()
    }

    fn upsert_users(&mut self, users: Vec<User>) -> Vec<u32> {
        users
            .into_iter()
            .map(|user| {
                let index = index_of(&mut self.user_ids, &user.id);
                self.users.insert(user.id.clone(), user);
                index
            })
            .collect()
    }

    /// Appends validated events; unseen ids get an index and a placeholder record,
    /// ids that were seen before (even if deleted since) keep theirs untouched.
    fn append_events(&mut self, events: Vec<Event>) -> Vec<StoredEvent> {
        events
            .into_iter()
            .map(|e| {
                let (user, new_user) = self.user_ids.get_or_insert(&e.user_id);
                if new_user {
                    self.users
                        .insert(e.user_id.clone(), User::placeholder(e.user_id.clone()));
                }
                let (item, new_item) = self.item_ids.get_or_insert(&e.item_id);
                if new_item {
                    self.items.insert(
                        e.item_id.clone(),
                        Item::placeholder(e.item_id.clone(), e.timestamp),
                    );
                }
                let stored = StoredEvent::from_event(self.events.len() as Seq, user, item, e);
                self.events.push(stored.clone());
                stored
            })
            .collect()
    }

    fn counts(&self) -> StoreCounts {
        StoreCounts {
            items: self.items.len() as u64,
            users: self.users.len() as u64,
            events: self.events.len() as u64,
        }
    }
}

/// Up to `limit` values whose keys sort after `after`.
fn page<V: Clone>(map: &BTreeMap<String, V>, after: Option<&str>, limit: usize) -> Vec<V> {
    use std::ops::Bound;
    let lower = match after {
        Some(a) => Bound::Excluded(a),
        None => Bound::Unbounded,
    };
    map.range::<str, _>((lower, Bound::Unbounded))
        .take(limit)
        .map(|(_, v)| v.clone())
        .collect()
}

#[async_trait]
impl Store for MemoryStore {
    async fn upsert_items(&self, items: Vec<Item>) -> Result<Vec<u32>> {
        validate_items(&items)?;
        Ok(self.state.lock().upsert_items(items))
    }

    async fn get_item(&self, id: &str) -> Result<Option<Item>> {
        Ok(self.state.lock().items.get(id).cloned())
    }

    async fn patch_item(&self, id: &str, patch: ItemPatch) -> Result<Option<Item>> {
        let mut state = self.state.lock();
        let Some(current) = state.items.get(id) else {
            return Ok(None);
        };
        let mut updated = current.clone();
        updated.apply(patch)?;
        state.items.insert(id.to_owned(), updated.clone());
        Ok(Some(updated))
    }

    async fn delete_item(&self, id: &str) -> Result<bool> {
        Ok(self.state.lock().items.remove(id).is_some())
    }

    async fn list_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>> {
        Ok(page(&self.state.lock().items, after, limit))
    }

    async fn upsert_users(&self, users: Vec<User>) -> Result<Vec<u32>> {
        validate_users(&users)?;
        Ok(self.state.lock().upsert_users(users))
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        Ok(self.state.lock().users.get(id).cloned())
    }

    async fn patch_user(&self, id: &str, patch: UserPatch) -> Result<Option<User>> {
        let mut state = self.state.lock();
        let Some(current) = state.users.get(id) else {
            return Ok(None);
        };
        let mut updated = current.clone();
        updated.apply(patch)?;
        state.users.insert(id.to_owned(), updated.clone());
        Ok(Some(updated))
    }

    async fn delete_user(&self, id: &str) -> Result<bool> {
        Ok(self.state.lock().users.remove(id).is_some())
    }

    async fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>> {
        Ok(page(&self.state.lock().users, after, limit))
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<Vec<StoredEvent>> {
        validate_events(&events)?;
        Ok(self.state.lock().append_events(events))
    }

    async fn scan_events(&self, from: Seq, limit: usize) -> Result<Vec<StoredEvent>> {
        let state = self.state.lock();
        let start = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(state.events.len());
        Ok(state.events[start..].iter().take(limit).cloned().collect())
    }

    async fn events_by_seq(&self, seqs: &[Seq]) -> Result<Vec<StoredEvent>> {
        let state = self.state.lock();
        Ok(seqs
            .iter()
            .filter_map(|&s| {
                usize::try_from(s)
                    .ok()
                    .and_then(|i| state.events.get(i))
                    .cloned()
            })
            .collect())
    }

    async fn id_maps(&self) -> Result<IdMaps> {
        let state = self.state.lock();
        Ok(IdMaps {
            items: state.item_ids.clone(),
            users: state.user_ids.clone(),
        })
    }

    async fn counts(&self) -> Result<StoreCounts> {
        Ok(self.state.lock().counts())
    }

    async fn put_experiment(&self, name: &str, doc: &serde_json::Value) -> Result<()> {
        tephra_core::validate_id("name", name)?;
        self.state
            .lock()
            .experiments
            .insert(name.to_owned(), doc.clone());
        Ok(())
    }

    async fn experiments(&self) -> Result<Vec<(String, serde_json::Value)>> {
        let state = self.state.lock();
        Ok(state
            .experiments
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn delete_experiment(&self, name: &str) -> Result<bool> {
        Ok(self.state.lock().experiments.remove(name).is_some())
    }

    async fn begin_import(&self) -> Result<Box<dyn ImportSession>> {
        Ok(Box::new(MemoryImport {
            store: self.clone(),
            pending: Vec::new(),
        }))
    }
}

/// One validated batch waiting for the import to commit.
enum PendingBatch {
    Items(Vec<Item>),
    Users(Vec<User>),
    Events(Vec<Event>),
}

/// An import into a [`MemoryStore`]: batches are validated as they arrive and
/// buffered; `commit` applies them all under one lock, so other callers see all of
/// the import or none of it. Other writes do not wait while the session is open.
struct MemoryImport {
    store: MemoryStore,
    pending: Vec<PendingBatch>,
}

#[async_trait]
impl ImportSession for MemoryImport {
    async fn add_items(&mut self, items: Vec<Item>) -> Result<()> {
        validate_items(&items)?;
        self.pending.push(PendingBatch::Items(items));
        Ok(())
    }

    async fn add_users(&mut self, users: Vec<User>) -> Result<()> {
        validate_users(&users)?;
        self.pending.push(PendingBatch::Users(users));
        Ok(())
    }

    async fn add_events(&mut self, events: Vec<Event>) -> Result<()> {
        validate_events(&events)?;
        self.pending.push(PendingBatch::Events(events));
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<StoreCounts> {
        let mut state = self.store.state.lock();
        for batch in self.pending {
            match batch {
                PendingBatch::Items(items) => {
                    state.upsert_items(items);
                }
                PendingBatch::Users(users) => {
                    state.upsert_users(users);
                }
                PendingBatch::Events(events) => {
                    state.append_events(events);
                }
            }
        }
        Ok(state.counts())
    }
}
