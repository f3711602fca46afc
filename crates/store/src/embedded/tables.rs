//! The tables of a store file, its format version, and loading the in-memory index
//! at open.

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableError,
};
use tephra_core::IdMap;

use super::state::Index;
use crate::{IdMaps, Result, StoreError};

/// Version of the file layout this build reads and writes. Bump it when a table
/// changes meaning; an old build then refuses the file instead of misreading it.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Store-wide settings; holds [`FORMAT_VERSION_KEY`].
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Key of the format version in [`META`].
pub(crate) const FORMAT_VERSION_KEY: &str = "format_version";
/// Key in [`META`] of the number of durable commits made in
/// [`Durability::Periodic`](crate::Durability::Periodic) mode. After a failed
/// durable commit it tells whether that commit reached the file after all, so
/// that writes kept in memory are neither lost nor written twice. Absent means 0.
pub(crate) const DURABLE_COMMITS_KEY: &str = "durable_commits";
/// Item id → item record (JSON, see `codec`).
pub(crate) const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
/// User id → user record (JSON, see `codec`).
pub(crate) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Item id → dense index; kept for ids whose record was deleted.
pub(crate) const ITEM_IDS: TableDefinition<&str, u32> = TableDefinition::new("item_ids");
/// Dense index → item id, the reverse of [`ITEM_IDS`].
pub(crate) const ITEM_KEYS: TableDefinition<u32, &str> = TableDefinition::new("item_keys");
/// User id → dense index; kept for ids whose record was deleted.
pub(crate) const USER_IDS: TableDefinition<&str, u32> = TableDefinition::new("user_ids");
/// Dense index → user id, the reverse of [`USER_IDS`].
pub(crate) const USER_KEYS: TableDefinition<u32, &str> = TableDefinition::new("user_keys");
/// Experiment name → definition (JSON owned by the server).
pub(crate) const EXPERIMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("experiments");
/// Log position → event record (binary, see `codec`).
pub(crate) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// Turns any redb error into a [`StoreError`], naming what was being done.
///
/// Damage reported by redb becomes `Corrupt`; everything else is an I/O failure of
/// the operation (nothing of it was stored).
pub(crate) fn db_error(context: &str) -> impl FnOnce(redb::Error) -> StoreError + '_ {
    move |e| match e {
        redb::Error::Corrupted(why) => StoreError::Corrupt(format!("{context}: {why}")),
        // redb refuses a handle after a disk error; the writer thread replaces it
        // (see `writer`), so the caller only has to wait.
        redb::Error::PreviousIo => StoreError::Io(format!(
            "{context}: an earlier disk error made the store file unusable through this \
             handle; the store is switching to a new one, retry in a moment"
        )),
        other => StoreError::Io(format!("{context}: {other}")),
    }
}

/// Shorthand for `map_err(|e| db_error(context)(e.into()))`.
pub(crate) trait DbResultExt<T> {
    /// Maps a redb error with [`db_error`].
    fn ctx(self, context: &str) -> Result<T>;
}

impl<T, E: Into<redb::Error>> DbResultExt<T> for std::result::Result<T, E> {
    fn ctx(self, context: &str) -> Result<T> {
        self.map_err(|e| db_error(context)(e.into()))
    }
}

/// Checks the format version, creates missing tables in a new file, and loads the
/// id maps and counters into memory.
pub(crate) fn init(db: &Database) -> Result<Index> {
    check_version(db)?;
    let txn = db.begin_write().ctx("starting the setup transaction")?;
    {
        let mut meta = txn.open_table(META).ctx("creating tables")?;
        if meta
            .get(FORMAT_VERSION_KEY)
            .ctx("reading the format version")?
            .is_none()
        {
            meta.insert(FORMAT_VERSION_KEY, u64::from(FORMAT_VERSION))
                .ctx("writing the format version")?;
        }
        txn.open_table(ITEMS).ctx("creating tables")?;
        txn.open_table(USERS).ctx("creating tables")?;
        txn.open_table(ITEM_IDS).ctx("creating tables")?;
        txn.open_table(ITEM_KEYS).ctx("creating tables")?;
        txn.open_table(USER_IDS).ctx("creating tables")?;
        txn.open_table(USER_KEYS).ctx("creating tables")?;
        txn.open_table(EVENTS).ctx("creating tables")?;
        txn.open_table(EXPERIMENTS).ctx("creating tables")?;
    }
    txn.commit().ctx("committing the setup transaction")?;
    load_index(db)
}

/// The number of durable commits recorded under [`DURABLE_COMMITS_KEY`].
pub(crate) fn durable_commits(db: &Database) -> Result<u64> {
    let txn = db.begin_read().ctx("starting a read transaction")?;
    let meta = txn.open_table(META).ctx("opening the meta table")?;
    let found = meta
        .get(DURABLE_COMMITS_KEY)
        .ctx("reading the durable commit count")?;
    Ok(found.map_or(0, |n| n.value()))
}

/// Records, in the transaction about to commit durably, that it is durable commit
/// number `n`.
pub(crate) fn record_durable_commit(txn: &redb::WriteTransaction, n: u64) -> Result<()> {
    txn.open_table(META)
        .ctx("opening the meta table")?
        .insert(DURABLE_COMMITS_KEY, n)
        .ctx("recording a durable commit")?;
    Ok(())
}

/// Refuses a file written with another format version, before anything is written
/// to it.
fn check_version(db: &Database) -> Result<()> {
    let txn = db.begin_read().ctx("starting a read transaction")?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        // A new file: `init` creates the tables.
        Err(TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(db_error("opening the meta table")(e.into())),
    };
    let Some(found) = meta
        .get(FORMAT_VERSION_KEY)
        .ctx("reading the format version")?
    else {
        return Ok(());
    };
    let found = found.value();
    if found != u64::from(FORMAT_VERSION) {
        return Err(StoreError::UnsupportedVersion {
            found: u32::try_from(found).unwrap_or(u32::MAX),
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// Reads every id mapping and the counters.
fn load_index(db: &Database) -> Result<Index> {
    let txn = db.begin_read().ctx("starting a read transaction")?;
    let items = load_id_map(&txn, ITEM_KEYS, ITEM_IDS, "item")?;
    let users = load_id_map(&txn, USER_KEYS, USER_IDS, "user")?;
    let item_records = txn
        .open_table(ITEMS)
        .ctx("opening items")?
        .len()
        .ctx("counting items")?;
    let user_records = txn
        .open_table(USERS)
        .ctx("opening users")?
        .len()
        .ctx("counting users")?;
    let events = txn.open_table(EVENTS).ctx("opening events")?;
    let next_seq = match events.last().ctx("reading the end of the event log")? {
        Some((seq, _)) => seq.value() + 1,
        None => 0,
    };
    let event_count = events.len().ctx("counting events")?;
    if event_count != next_seq {
        return Err(StoreError::Corrupt(format!(
            "the event log holds {event_count} events but ends at position {next_seq}"
        )));
    }
    Ok(Index {
        ids: IdMaps { items, users },
        item_records,
        user_records,
        next_seq,
    })
}

/// Loads one id map from its reverse table and checks it against the forward one.
fn load_id_map(
    txn: &redb::ReadTransaction,
    keys: TableDefinition<u32, &str>,
    ids: TableDefinition<&str, u32>,
    what: &str,
) -> Result<IdMap> {
    let keys = txn.open_table(keys).ctx("opening an id table")?;
    let forward_len = txn
        .open_table(ids)
        .ctx("opening an id table")?
        .len()
        .ctx("counting ids")?;
    let mut map = IdMap::new();
    for entry in keys.iter().ctx("reading ids")? {
        let (index, id) = entry.ctx("reading ids")?;
        map.insert_known(id.value(), index.value())
            .map_err(|why| StoreError::Corrupt(format!("{what} id map: {why}")))?;
    }
    let loaded = map.iter().count() as u64;
    if loaded != forward_len || map.len() as u64 != loaded {
        return Err(StoreError::Corrupt(format!(
            "{what} id map: {loaded} indices for {forward_len} ids, highest index {}",
            map.len().saturating_sub(1)
        )));
    }
    Ok(map)
}
