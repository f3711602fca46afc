//! Reads: each runs in its own redb read transaction, a consistent snapshot of the
//! last commit, and never waits for the writer.

use std::ops::Bound;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::codec;
use super::tables::{self, DbResultExt};
use crate::{Result, Seq, StoreError, StoredEvent};

/// The record stored under `id` in `table`, decoded.
pub(crate) fn get<T>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    id: &str,
    decode: fn(&[u8]) -> Result<T>,
) -> Result<Option<T>> {
    let txn = db.begin_read().ctx("starting a read transaction")?;
    let table = txn.open_table(table).ctx("opening a table")?;
    let found = table.get(id).ctx("reading a record")?;
    found.map(|bytes| decode(bytes.value())).transpose()
}

/// Up to `limit` records of `table` with ids after `after`, in id byte order.
pub(crate) fn list<T>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    after: Option<&str>,
    limit: usize,
    decode: fn(&[u8]) -> Result<T>,
) -> Result<Vec<T>> {
    let txn = db.begin_read().ctx("starting a read transaction")?;
    let table = txn.open_table(table).ctx("opening a table")?;
    let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
    let range = table
        .range::<&str>((lower, Bound::Unbounded))
        .ctx("listing records")?;
    let mut out = Vec::with_capacity(limit.min(1024));
    for entry in range.take(limit) {
        let (_, bytes) = entry.ctx("listing records")?;
        out.push(decode(bytes.value())?);
    }
    Ok(out)
}

/// Up to `limit` events from position `from` on.
pub(crate) fn scan_events(db: &Database, from: Seq, limit: usize) -> Result<Vec<StoredEvent>> {
    let txn = db.begin_read().ctx("starting a read transaction")?;
    let events = txn
        .open_table(tables::EVENTS)
        .ctx("opening the event log")?;
    let mut out = Vec::with_capacity(limit.min(4096));
    for entry in events.range(from..).ctx("scanning events")?.take(limit) {
        let (seq, bytes) = entry.ctx("scanning events")?;
        out.push(codec::decode_event(seq.value(), bytes.value())?);
    }
    Ok(out)
}

/// The events at `seqs`, in that order, skipping unknown positions.
pub(crate) fn events_by_seq(db: &Database, seqs: &[Seq]) -> Result<Vec<StoredEvent>> {
    let txn = db.begin_read().ctx("starting a read transaction")?;
    let events = txn
        .open_table(tables::EVENTS)
        .ctx("opening the event log")?;
    let mut out = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        if let Some(bytes) = events.get(seq).ctx("reading an event")? {
            out.push(codec::decode_event(seq, bytes.value())?);
        }
    }
    Ok(out)
}

/// Every experiment definition, in name order.
pub(crate) fn experiments(db: &Database) -> Result<Vec<(String, serde_json::Value)>> {
    let txn = db.begin_read().ctx("starting a read transaction")?;
    let table = txn
        .open_table(tables::EXPERIMENTS)
        .ctx("opening the experiments")?;
    let mut out = Vec::new();
    for entry in table.iter().ctx("reading the experiments")? {
        let (name, doc) = entry.ctx("reading an experiment")?;
        let doc = serde_json::from_slice(doc.value())
            .map_err(|e| StoreError::Corrupt(format!("experiment `{}`: {e}", name.value())))?;
        out.push((name.value().to_owned(), doc));
    }
    Ok(out)
}
