//! [`PostgresStore`]: one tenant's data in the shared database.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use tephra_core::{Attribution, Event, IdMap, Item, ItemPatch, Timestamp, User, UserPatch};

use super::import::PostgresImport;
use super::write::{self, CounterValues, Counters, RecordTable, ITEMS, USERS};
use super::{dense_index, Doing, WriteGate};
use crate::embedded::codec::{decode_item, decode_user, encode_item, encode_user};
use crate::{
    validate_events, validate_items, validate_users, IdMaps, ImportSession, Result, Seq, Store,
    StoreCounts, StoreError, StoredEvent,
};

/// One tenant's [`Store`] in PostgreSQL.
///
/// Every node of a cluster can hold a handle to the same tenant: the database
/// serializes their writes (see the [module documentation](super)), so they
/// see one log and one set of indices. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    tenant: Arc<str>,
    /// Queues this node's writes of the tenant before they take a connection
    /// (see `WriteGates`).
    gate: WriteGate,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// This node's turn to write a tenant, held until the write ends.
pub(super) type WriteTurn = tokio::sync::OwnedMutexGuard<()>;

/// The columns of an event, as selected by [`EVENT_COLUMNS`].
type EventRow = (
    i64,
    i64,
    i64,
    String,
    f64,
    i64,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The columns of [`EventRow`].
macro_rules! event_columns {
    ($prefix:literal) => {
        concat!(
            $prefix,
            "seq, ",
            $prefix,
            "user_idx, ",
            $prefix,
            "item_idx, ",
            $prefix,
            "event_type, ",
            $prefix,
            "value, ",
            $prefix,
            "ts, ",
            $prefix,
            "request_id, ",
            $prefix,
            "scene, ",
            $prefix,
            "position, ",
            $prefix,
            "source, ",
            $prefix,
            "experiment, ",
            $prefix,
            "variant"
        )
    };
}

/// An event row as the stored event it is.
fn stored_event(row: EventRow) -> Result<StoredEvent> {
    let (
        seq,
        user,
        item,
        event_type,
        value,
        ts,
        request_id,
        scene,
        position,
        source,
        experiment,
        variant,
    ) = row;
    let seq = Seq::try_from(seq)
        .map_err(|_| StoreError::Corrupt(format!("an event has the impossible seq {seq}")))?;
    let position = position
        .map(|p| {
            u32::try_from(p).map_err(|_| {
                StoreError::Corrupt(format!("event {seq} has the impossible position {p}"))
            })
        })
        .transpose()?;
    let attribution = Attribution {
        source,
        experiment,
        variant,
    };
    Ok(StoredEvent {
        seq,
        user: dense_index(user, "a user of an event")?,
        item: dense_index(item, "an item of an event")?,
        event_type,
        value,
        timestamp: Timestamp(ts),
        request_id,
        scene,
        position,
        attribution: (!attribution.is_empty()).then_some(attribution),
    })
}

/// A `usize` limit as SQL's `LIMIT`.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl PostgresStore {
    pub(super) fn new(pool: PgPool, tenant: &str, gate: WriteGate) -> Self {
        Self {
            pool,
            tenant: tenant.into(),
            gate,
        }
    }

    /// The tenant whose data this store reaches.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Starts a write transaction holding the tenant's counters lock, after
    /// this node's earlier writes of the tenant (the returned guard keeps the
    /// later ones waiting until the transaction ends).
    async fn begin_write(&self) -> Result<(Transaction<'static, Postgres>, Counters, WriteTurn)> {
        let turn = self.gate.clone().lock_owned().await;
        let mut tx = self
            .pool
            .begin()
            .await
            .doing("starting a write transaction")?;
        let counters = write::lock_counters(&mut tx, &self.tenant).await?;
        Ok((tx, counters, turn))
    }

    /// Saves the counters and commits.
    async fn finish_write(
        &self,
        mut tx: Transaction<'static, Postgres>,
        counters: &Counters,
    ) -> Result<()> {
        write::save_counters(&mut tx, &self.tenant, counters).await?;
        tx.commit().await.doing("committing a write")
    }

    async fn get_record(&self, table: &RecordTable, id: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar(table.get)
            .bind(&*self.tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .doing(&format!("reading one of the {}", table.name))
    }

    async fn page(
        &self,
        table: &RecordTable,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let query = match after {
            Some(after) => sqlx::query_scalar(table.next_page)
                .bind(&*self.tenant)
                .bind(after)
                .bind(sql_limit(limit)),
            None => sqlx::query_scalar(table.first_page)
                .bind(&*self.tenant)
                .bind(sql_limit(limit)),
        };
        query
            .fetch_all(&self.pool)
            .await
            .doing(&format!("listing {}", table.name))
    }

    /// Clears the record of `id` (keeping its index); `false` if there was none.
    async fn delete_record(&self, table: &RecordTable, id: &str) -> Result<bool> {
        let (mut tx, mut counters, _turn) = self.begin_write().await?;
        let deleted = sqlx::query(table.delete)
            .bind(&*self.tenant)
            .bind(id)
            .execute(&mut *tx)
            .await
            .doing(&format!("deleting one of the {}", table.name))?
            .rows_affected()
            == 1;
        if !deleted {
            tx.rollback()
                .await
                .doing("ending a write that changed nothing")?;
            return Ok(false);
        }
        if table.name == ITEMS.name {
            counters.values.live_items -= 1;
        } else {
            counters.values.live_users -= 1;
        }
        self.finish_write(tx, &counters).await?;
        Ok(true)
    }

    /// Reads, updates and writes back one record under its row lock; `None`
    /// if it does not exist. Patches touch no counter, so they lock only
    /// their row, not the tenant's counters.
    async fn patch_record<T>(
        &self,
        table: &RecordTable,
        id: &str,
        decode: fn(&[u8]) -> Result<T>,
        update: impl FnOnce(&mut T) -> Result<Vec<u8>>,
    ) -> Result<Option<T>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .doing("starting a write transaction")?;
        let current: Option<Option<Vec<u8>>> = sqlx::query_scalar(table.select_for_update)
            .bind(&*self.tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .doing(&format!("reading one of the {} to patch it", table.name))?;
        let Some(Some(bytes)) = current else {
            tx.rollback()
                .await
                .doing("ending a write that changed nothing")?;
            return Ok(None);
        };
        let mut record = decode(&bytes)?;
        let encoded = match update(&mut record) {
            Ok(encoded) => encoded,
            Err(e) => {
                tx.rollback().await.doing("ending a refused write")?;
                return Err(e);
            }
        };
        sqlx::query(table.update_record)
            .bind(&*self.tenant)
            .bind(id)
            .bind(encoded)
            .execute(&mut *tx)
            .await
            .doing(&format!("writing a patched record of the {}", table.name))?;
        tx.commit().await.doing("committing a patch")?;
        Ok(Some(record))
    }

    async fn id_map(&self, table: &RecordTable) -> Result<IdMap> {
        let rows: Vec<(String, i64)> = sqlx::query_as(table.id_map)
            .bind(&*self.tenant)
            .fetch_all(&self.pool)
            .await
            .doing(&format!("loading the ids of the {}", table.name))?;
        let mut map = IdMap::new();
        for (id, index) in rows {
            map.insert_known(&id, dense_index(index, &format!("`{id}`"))?)
                .map_err(|e| StoreError::Corrupt(format!("{} ids: {e}", table.name)))?;
        }
        Ok(map)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn upsert_items(&self, items: Vec<Item>) -> Result<Vec<u32>> {
        validate_items(&items)?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (mut tx, mut counters, _turn) = self.begin_write().await?;
        let indices = write::upsert_items(&mut tx, &self.tenant, &mut counters, &items).await?;
        self.finish_write(tx, &counters).await?;
        Ok(indices)
    }

    async fn get_item(&self, id: &str) -> Result<Option<Item>> {
        self.get_record(&ITEMS, id)
            .await?
            .map(|bytes| decode_item(&bytes))
            .transpose()
    }

    async fn patch_item(&self, id: &str, patch: ItemPatch) -> Result<Option<Item>> {
        self.patch_record(&ITEMS, id, decode_item, |item| {
            item.apply(patch)?;
            encode_item(item)
        })
        .await
    }

    async fn delete_item(&self, id: &str) -> Result<bool> {
        self.delete_record(&ITEMS, id).await
    }

    async fn list_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>> {
        self.page(&ITEMS, after, limit)
            .await?
            .iter()
            .map(|bytes| decode_item(bytes))
            .collect()
    }

    async fn upsert_users(&self, users: Vec<User>) -> Result<Vec<u32>> {
        validate_users(&users)?;
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let (mut tx, mut counters, _turn) = self.begin_write().await?;
        let indices = write::upsert_users(&mut tx, &self.tenant, &mut counters, &users).await?;
        self.finish_write(tx, &counters).await?;
        Ok(indices)
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        self.get_record(&USERS, id)
            .await?
            .map(|bytes| decode_user(&bytes))
            .transpose()
    }

    async fn patch_user(&self, id: &str, patch: UserPatch) -> Result<Option<User>> {
        self.patch_record(&USERS, id, decode_user, |user| {
            user.apply(patch)?;
            encode_user(user)
        })
        .await
    }

    async fn delete_user(&self, id: &str) -> Result<bool> {
        self.delete_record(&USERS, id).await
    }

    async fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>> {
        self.page(&USERS, after, limit)
            .await?
            .iter()
            .map(|bytes| decode_user(bytes))
            .collect()
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<Vec<StoredEvent>> {
        validate_events(&events)?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (mut tx, mut counters, _turn) = self.begin_write().await?;
        let stored = write::append_events(&mut tx, &self.tenant, &mut counters, events).await?;
        self.finish_write(tx, &counters).await?;
        Ok(stored)
    }

    async fn scan_events(&self, from: Seq, limit: usize) -> Result<Vec<StoredEvent>> {
        let Ok(from) = i64::try_from(from) else {
            return Ok(Vec::new());
        };
        let rows: Vec<EventRow> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(""),
            " FROM events WHERE tenant = $1 AND seq >= $2 ORDER BY seq LIMIT $3"
        ))
        .bind(&*self.tenant)
        .bind(from)
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .doing("scanning events")?;
        rows.into_iter().map(stored_event).collect()
    }

    async fn events_by_seq(&self, seqs: &[Seq]) -> Result<Vec<StoredEvent>> {
        // Positions past i64::MAX cannot exist; skip them like unknown ones.
        let seqs: Vec<i64> = seqs.iter().filter_map(|&s| i64::try_from(s).ok()).collect();
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<EventRow> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!("e."),
            " FROM UNNEST($2::bigint[]) WITH ORDINALITY AS q(seq, ord) \
             JOIN events e ON e.tenant = $1 AND e.seq = q.seq ORDER BY q.ord"
        ))
        .bind(&*self.tenant)
        .bind(&seqs)
        .fetch_all(&self.pool)
        .await
        .doing("reading events by seq")?;
        rows.into_iter().map(stored_event).collect()
    }

    async fn id_maps(&self) -> Result<IdMaps> {
        Ok(IdMaps {
            items: self.id_map(&ITEMS).await?,
            users: self.id_map(&USERS).await?,
        })
    }

    async fn counts(&self) -> Result<StoreCounts> {
        let row: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT next_item, next_user, next_seq, live_items, live_users \
             FROM tenant_counters WHERE tenant = $1",
        )
        .bind(&*self.tenant)
        .fetch_optional(&self.pool)
        .await
        .doing("reading the tenant's counts")?;
        Ok(row
            .map(
                |(next_item, next_user, next_seq, live_items, live_users)| CounterValues {
                    next_item,
                    next_user,
                    next_seq,
                    live_items,
                    live_users,
                },
            )
            .unwrap_or_default()
            .counts())
    }

    async fn put_experiment(&self, name: &str, doc: &serde_json::Value) -> Result<()> {
        tephra_core::validate_id("name", name)?;
        super::registry::check_storable_json("doc", doc)?;
        sqlx::query(
            "INSERT INTO experiments (tenant, name, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant, name) DO UPDATE SET doc = EXCLUDED.doc",
        )
        .bind(&*self.tenant)
        .bind(name)
        .bind(sqlx::types::Json(doc))
        .execute(&self.pool)
        .await
        .doing("saving an experiment")?;
        Ok(())
    }

    async fn experiments(&self) -> Result<Vec<(String, serde_json::Value)>> {
        let rows: Vec<(String, sqlx::types::Json<serde_json::Value>)> =
            sqlx::query_as("SELECT name, doc FROM experiments WHERE tenant = $1 ORDER BY name")
                .bind(&*self.tenant)
                .fetch_all(&self.pool)
                .await
                .doing("listing experiments")?;
        Ok(rows.into_iter().map(|(name, doc)| (name, doc.0)).collect())
    }

    async fn delete_experiment(&self, name: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM experiments WHERE tenant = $1 AND name = $2")
            .bind(&*self.tenant)
            .bind(name)
            .execute(&self.pool)
            .await
            .doing("deleting an experiment")?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn begin_import(&self) -> Result<Box<dyn ImportSession>> {
        let (tx, counters, turn) = self.begin_write().await?;
        Ok(Box::new(PostgresImport::new(
            self.tenant.clone(),
            tx,
            counters,
            turn,
        )))
    }
}
