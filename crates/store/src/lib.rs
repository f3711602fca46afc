//! Where Tephra keeps its data.
//!
//! Everything the service knows (catalogue, users, the event log and the mapping
//! from external ids to dense indices) lives behind the [`Store`] trait, one store
//! per tenant. Backends: [`MemoryStore`] for tests, [`EmbeddedStore`] (redb, one
//! file in the data directory) as the zero-setup default, and [`PostgresStore`]
//! for several API nodes sharing one database. Every backend passes the same
//! [`conformance`] suite, so the server can treat them alike.
//!
//! Contract shared by all backends:
//! - a write that returned `Ok` is durable (for the embedded store: fsynced, with
//!   writes from concurrent callers grouped into one commit), unless the store was
//!   opened with [`Durability::Periodic`], which acknowledges before the fsync and
//!   bounds what a crash can lose instead;
//! - a batch is all or nothing: on error nothing of it is stored;
//! - an upsert batch naming the same id twice is refused (`duplicate_id`, field
//!   `[i].id` at the second occurrence), because which copy should win is ambiguous;
//! - dense indices are assigned by the store, in increasing order, and never reused;
//! - the event log is append-only and ordered by a sequence number `seq` starting at 0.

use std::sync::Arc;

use async_trait::async_trait;
use tephra_core::{
    Attribution, Event, IdMap, Item, ItemPatch, Timestamp, User, UserPatch, ValidationError,
};

pub mod conformance;
mod embedded;
mod error;
mod memory;
pub mod postgres;
pub mod registry;
mod snapshots;

pub use embedded::{Durability, FaultMode, FaultSwitch, StoreOptions};
pub use embedded::{EmbeddedStore, STORE_FILE_NAME};
pub use error::StoreError;
pub use memory::MemoryStore;
pub use postgres::{
    PostgresCluster, PostgresOptions, PostgresRegistry, PostgresStore, PostgresTenantStores,
    TrainerLock,
};
pub use registry::{
    KeyRecord, RateLimit, Registry, SharedRegistry, TenantRecord, TenantStores, DEFAULT_TENANT,
};
pub use snapshots::SnapshotStore;

/// Result of a storage operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Position of an event in the append-only log, starting at 0.
pub type Seq = u64;

/// An event as stored: with its log position and the dense indices of its user and
/// item, so that readers need no id lookups to build interaction matrices.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredEvent {
    /// Position in the log.
    pub seq: Seq,
    /// Dense index of the user.
    pub user: u32,
    /// Dense index of the item.
    pub item: u32,
    /// The event type as sent.
    pub event_type: String,
    /// The event value.
    pub value: f64,
    /// When it happened.
    pub timestamp: Timestamp,
    /// The recommendation response it follows from, if any.
    pub request_id: Option<String>,
    /// The scene it happened in, if any.
    pub scene: Option<String>,
    /// Where the item was shown in that response, if known.
    pub position: Option<u32>,
    /// What produced the item (joined by the server from `request_id`).
    pub attribution: Option<Attribution>,
}

impl StoredEvent {
    /// `event` as stored at `seq` with the dense indices of its user and item.
    /// An empty attribution is stored as none, so that every backend answers
    /// the same for the same event.
    pub fn from_event(seq: Seq, user: u32, item: u32, event: Event) -> Self {
        Self {
            seq,
            user,
            item,
            event_type: event.event_type,
            value: event.value,
            timestamp: event.timestamp,
            request_id: event.request_id,
            scene: event.scene,
            position: event.position,
            attribution: event.attribution.filter(|a| !a.is_empty()),
        }
    }
}

/// The id maps of a store, as loaded at startup.
#[derive(Debug, Default, Clone)]
pub struct IdMaps {
    /// Item ids to dense indices.
    pub items: IdMap,
    /// User ids to dense indices.
    pub users: IdMap,
}

/// Sizes of a store, for health checks and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreCounts {
    /// Items currently in the catalogue (deleted ones excluded).
    pub items: u64,
    /// Users currently stored (deleted ones excluded).
    pub users: u64,
    /// Events in the log (the next `seq`).
    pub events: u64,
}

/// One tenant's data.
///
/// Methods take whole batches so that a backend can commit each call as one
/// transaction. Implementations must be cheap to share (`Arc<dyn Store>`) and safe
/// to call from many tasks at once.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts or replaces items, all or nothing. Returns the dense index of each
    /// item, in input order. Items are validated first; the first invalid one fails
    /// the batch with its index in the error's field path.
    async fn upsert_items(&self, items: Vec<Item>) -> Result<Vec<u32>>;
    /// The item with this id, if it exists.
    async fn get_item(&self, id: &str) -> Result<Option<Item>>;
    /// Applies a partial update atomically; `Ok(None)` if the item does not exist.
    async fn patch_item(&self, id: &str, patch: ItemPatch) -> Result<Option<Item>>;
    /// Deletes the item record (its index and its events stay); `false` if absent.
    async fn delete_item(&self, id: &str) -> Result<bool>;
    /// Up to `limit` items with ids greater than `after`, in id (byte) order.
    async fn list_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>>;

    /// Inserts or replaces users, all or nothing; returns their dense indices.
    async fn upsert_users(&self, users: Vec<User>) -> Result<Vec<u32>>;
    /// The user with this id, if it exists.
    async fn get_user(&self, id: &str) -> Result<Option<User>>;
    /// Applies a partial update atomically; `Ok(None)` if the user does not exist.
    async fn patch_user(&self, id: &str, patch: UserPatch) -> Result<Option<User>>;
    /// Deletes the user record (its index and its events stay); `false` if absent.
    async fn delete_user(&self, id: &str) -> Result<bool>;
    /// Up to `limit` users with ids greater than `after`, in id (byte) order.
    async fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>>;

    /// Appends events, all or nothing, and returns them as stored (with `seq` and
    /// indices), in input order. A user or item id never seen before gets an index
    /// and a placeholder record ([`User::placeholder`], [`Item::placeholder`] with
    /// the event's timestamp as `published_at`); an id whose record was deleted
    /// keeps its index and is not re-created. Events must already be validated
    /// against the configured event types; the store re-checks the rest
    /// ([`validate_events`]).
    async fn append_events(&self, events: Vec<Event>) -> Result<Vec<StoredEvent>>;
    /// Up to `limit` events with `seq >= from`, in log order.
    async fn scan_events(&self, from: Seq, limit: usize) -> Result<Vec<StoredEvent>>;
    /// The events at these positions, in the order asked (unknown positions are
    /// skipped).
    async fn events_by_seq(&self, seqs: &[Seq]) -> Result<Vec<StoredEvent>>;

    /// Every id ever assigned, with its index.
    async fn id_maps(&self) -> Result<IdMaps>;
    /// Current sizes.
    async fn counts(&self) -> Result<StoreCounts>;

    /// Saves an experiment definition (a JSON document the server owns),
    /// replacing the one with the same name; durable like every write.
    async fn put_experiment(&self, name: &str, doc: &serde_json::Value) -> Result<()>;
    /// Every saved experiment, in name (byte) order.
    async fn experiments(&self) -> Result<Vec<(String, serde_json::Value)>>;
    /// Deletes an experiment definition; `false` if there was none.
    async fn delete_experiment(&self, name: &str) -> Result<bool>;

    /// Starts a bulk import: one transaction over many batches, committed only by
    /// [`ImportSession::commit`]. Dropping the session without committing stores
    /// nothing and consumes no index. While a session is open, other writes may
    /// wait until it ends (the embedded store queues them), so the task holding a
    /// session must not await other writes to the same store before ending it.
    async fn begin_import(&self) -> Result<Box<dyn ImportSession>>;
}

/// A bulk import in progress. See [`Store::begin_import`].
///
/// Each `add_*` call validates its batch like the corresponding [`Store`] method;
/// a refused batch adds nothing and the session stays usable, so an importer can
/// skip bad input or give up by dropping the session. A storage failure makes the
/// session fail on its next call (at the latest on `commit`), storing nothing.
#[async_trait]
pub trait ImportSession: Send {
    /// Adds items (upsert) to the import.
    async fn add_items(&mut self, items: Vec<Item>) -> Result<()>;
    /// Adds users (upsert) to the import.
    async fn add_users(&mut self, users: Vec<User>) -> Result<()>;
    /// Adds events to the import (same id rules as [`Store::append_events`]).
    async fn add_events(&mut self, events: Vec<Event>) -> Result<()>;
    /// Makes everything added durable at once.
    async fn commit(self: Box<Self>) -> Result<StoreCounts>;
}

/// A shared handle to a store.
pub type SharedStore = Arc<dyn Store>;

/// Validates a batch of items, prefixing errors with the element index.
///
/// Also refuses a batch that names the same id twice (`duplicate_id` at the
/// second occurrence): which copy should win would be an accident of ordering.
pub fn validate_items(items: &[Item]) -> Result<(), ValidationError> {
    items
        .iter()
        .enumerate()
        .try_for_each(|(i, it)| it.validate().map_err(|e| e.at_index(i)))?;
    check_unique_ids(items.iter().map(|it| it.id.as_str()))
}

/// Validates a batch of users, prefixing errors with the element index; refuses
/// duplicate ids like [`validate_items`].
pub fn validate_users(users: &[User]) -> Result<(), ValidationError> {
    users
        .iter()
        .enumerate()
        .try_for_each(|(i, u)| u.validate().map_err(|e| e.at_index(i)))?;
    check_unique_ids(users.iter().map(|u| u.id.as_str()))
}

/// Checks the parts of a batch of events that do not depend on configuration
/// (ids, value, optional fields), prefixing errors with the element index.
///
/// Callers validate event types against the configured [`tephra_core::EventTypes`]
/// before calling [`Store::append_events`]; the store re-checks the rest so that
/// nothing malformed can reach the log even from a careless caller.
pub fn validate_events(events: &[Event]) -> Result<(), ValidationError> {
    events
        .iter()
        .enumerate()
        .try_for_each(|(i, e)| validate_event_shape(e).map_err(|err| err.at_index(i)))
}

fn validate_event_shape(e: &Event) -> Result<(), ValidationError> {
    tephra_core::validate_id("user_id", &e.user_id)?;
    tephra_core::validate_id("item_id", &e.item_id)?;
    tephra_core::validate_id("type", &e.event_type)?;
    if !e.value.is_finite() || e.value < 0.0 || e.value > tephra_core::event::MAX_EVENT_VALUE {
        return Err(ValidationError::field(
            "invalid_value",
            "value",
            format!(
                "value must be a finite number between 0 and {:e}, got {}",
                tephra_core::event::MAX_EVENT_VALUE,
                e.value
            ),
        ));
    }
    if let Some(r) = &e.request_id {
        tephra_core::validate_id("request_id", r)?;
    }
    if let Some(s) = &e.scene {
        tephra_core::validate_id("scene", s)?;
    }
    if e.position
        .is_some_and(|p| p > tephra_core::event::MAX_POSITION)
    {
        return Err(ValidationError::field(
            "invalid_value",
            "position",
            format!(
                "position must be between 0 and {}",
                tephra_core::event::MAX_POSITION
            ),
        ));
    }
    if let Some(a) = &e.attribution {
        for (field, value) in [
            ("attribution.source", &a.source),
            ("attribution.experiment", &a.experiment),
            ("attribution.variant", &a.variant),
        ] {
            if let Some(v) = value {
                tephra_core::validate_id(field, v)?;
            }
        }
    }
    Ok(())
}

/// Refuses the second occurrence of an id within one batch.
fn check_unique_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Result<(), ValidationError> {
    let mut seen = std::collections::HashSet::new();
    for (i, id) in ids.enumerate() {
        if !seen.insert(id) {
            return Err(ValidationError::field(
                "duplicate_id",
                "id",
                format!(
                    "id `{}` appears more than once in this batch; send each id once",
                    id.escape_debug()
                ),
            )
            .at_index(i));
        }
    }
    Ok(())
}
