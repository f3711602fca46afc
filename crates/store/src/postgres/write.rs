//! The writes themselves, shared by single writes and import sessions: each
//! runs inside a transaction that already holds the tenant's counters lock.

use std::collections::HashMap;

use sqlx::PgConnection;
use tephra_core::{Event, Item, User};

use super::{dense_index, Doing};
use crate::embedded::codec::{encode_item, encode_user};
use crate::{Result, StoreCounts, StoreError, StoredEvent};

/// The tenant's row of `tenant_counters`, as locked by the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct CounterValues {
    pub next_item: i64,
    pub next_user: i64,
    pub next_seq: i64,
    pub live_items: i64,
    pub live_users: i64,
}

impl CounterValues {
    /// The sizes these counters describe.
    pub fn counts(&self) -> StoreCounts {
        let size = |n: i64| u64::try_from(n).unwrap_or(0);
        StoreCounts {
            items: size(self.live_items),
            users: size(self.live_users),
            events: size(self.next_seq),
        }
    }
}

/// The counters of a write transaction: as locked, and as the writes so far
/// left them; only a change is written back.
#[derive(Debug)]
pub(super) struct Counters {
    locked: CounterValues,
    pub values: CounterValues,
}

/// Locks and reads the tenant's counters row, columns in [`CounterValues`] order.
const LOCK_COUNTERS: &str = "SELECT next_item, next_user, next_seq, live_items, live_users \
     FROM tenant_counters WHERE tenant = $1 FOR UPDATE";

/// Locks the tenant's counters row, creating it on the tenant's first write,
/// and reads it. Every write transaction of a tenant starts here, which
/// serializes them across all nodes.
pub(super) async fn lock_counters(conn: &mut PgConnection, tenant: &str) -> Result<Counters> {
    for _ in 0..2 {
        let row: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(LOCK_COUNTERS)
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await
            .doing("locking the tenant's counters")?;
        if let Some((next_item, next_user, next_seq, live_items, live_users)) = row {
            let values = CounterValues {
                next_item,
                next_user,
                next_seq,
                live_items,
                live_users,
            };
            return Ok(Counters {
                locked: values,
                values,
            });
        }
        sqlx::query("INSERT INTO tenant_counters (tenant) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(tenant)
            .execute(&mut *conn)
            .await
            .doing("creating the tenant's counters")?;
    }
    Err(StoreError::Io(format!(
        "the counters of tenant `{}` vanished while being created (was the tenant destroyed meanwhile?)",
        tenant.escape_debug()
    )))
}

/// Writes the counters back if the transaction's writes changed them.
pub(super) async fn save_counters(
    conn: &mut PgConnection,
    tenant: &str,
    counters: &Counters,
) -> Result<()> {
    if counters.values == counters.locked {
        return Ok(());
    }
    let v = counters.values;
    let updated = sqlx::query(
        "UPDATE tenant_counters SET next_item = $2, next_user = $3, next_seq = $4, \
         live_items = $5, live_users = $6 WHERE tenant = $1",
    )
    .bind(tenant)
    .bind(v.next_item)
    .bind(v.next_user)
    .bind(v.next_seq)
    .bind(v.live_items)
    .bind(v.live_users)
    .execute(&mut *conn)
    .await
    .doing("saving the tenant's counters")?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::Io(format!(
            "the counters of tenant `{}` vanished during a write (was the tenant destroyed meanwhile?)",
            tenant.escape_debug()
        )));
    }
    Ok(())
}

/// The statements of one record table (`items` or `users`), which share a
/// layout.
pub(super) struct RecordTable {
    /// `items` or `users`, for messages.
    pub name: &'static str,
    /// `$1` tenant, `$2` ids: `(id, idx, has a record)` of those that exist.
    existing: &'static str,
    /// `$1` tenant, `$2` ids, `$3` indices, `$4` records: inserts or replaces.
    upsert: &'static str,
    /// Like `upsert`, for ids known to be new (placeholders).
    insert_new: &'static str,
    /// `$1` tenant, `$2` id: the record, locking the row.
    pub select_for_update: &'static str,
    /// `$1` tenant, `$2` id, `$3` record.
    pub update_record: &'static str,
    /// `$1` tenant, `$2` id: clears the record of a live row.
    pub delete: &'static str,
    /// `$1` tenant, `$2` id.
    pub get: &'static str,
    /// `$1` tenant, `$2` limit: the first records in id order.
    pub first_page: &'static str,
    /// `$1` tenant, `$2` after, `$3` limit: the records after an id.
    pub next_page: &'static str,
    /// `$1` tenant: every `(id, idx)`.
    pub id_map: &'static str,
}

macro_rules! record_table {
    ($table:literal) => {
        RecordTable {
            name: $table,
            existing: concat!(
                "SELECT id, idx, record IS NOT NULL FROM ",
                $table,
                " WHERE tenant = $1 AND id = ANY($2::text[])"
            ),
            upsert: concat!(
                "INSERT INTO ",
                $table,
                " (tenant, id, idx, record) SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::bytea[]) \
                 ON CONFLICT (tenant, id) DO UPDATE SET record = EXCLUDED.record"
            ),
            insert_new: concat!(
                "INSERT INTO ",
                $table,
                " (tenant, id, idx, record) SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::bytea[])"
            ),
            select_for_update: concat!(
                "SELECT record FROM ",
                $table,
                " WHERE tenant = $1 AND id = $2 FOR UPDATE"
            ),
            update_record: concat!(
                "UPDATE ",
                $table,
                " SET record = $3 WHERE tenant = $1 AND id = $2"
            ),
            delete: concat!(
                "UPDATE ",
                $table,
                " SET record = NULL WHERE tenant = $1 AND id = $2 AND record IS NOT NULL"
            ),
            get: concat!(
                "SELECT record FROM ",
                $table,
                " WHERE tenant = $1 AND id = $2 AND record IS NOT NULL"
            ),
            first_page: concat!(
                "SELECT record FROM ",
                $table,
                " WHERE tenant = $1 AND record IS NOT NULL ORDER BY id LIMIT $2"
            ),
            next_page: concat!(
                "SELECT record FROM ",
                $table,
                " WHERE tenant = $1 AND record IS NOT NULL AND id > $2 COLLATE \"C\" \
                 ORDER BY id LIMIT $3"
            ),
            id_map: concat!(
                "SELECT id, idx FROM ",
                $table,
                " WHERE tenant = $1 ORDER BY idx"
            ),
        }
    };
}

/// The catalogue.
pub(super) const ITEMS: RecordTable = record_table!("items");
/// The users.
pub(super) const USERS: RecordTable = record_table!("users");

/// Which counters a record table uses.
fn counters_of<'a>(
    table: &RecordTable,
    values: &'a mut CounterValues,
) -> (&'a mut i64, &'a mut i64) {
    if table.name == ITEMS.name {
        (&mut values.next_item, &mut values.live_items)
    } else {
        (&mut values.next_user, &mut values.live_users)
    }
}

/// Inserts or replaces validated records (`(id, encoded record)`, ids unique),
/// giving new ids the next indices in input order. Returns the indices.
async fn upsert_records(
    conn: &mut PgConnection,
    table: &RecordTable,
    tenant: &str,
    counters: &mut Counters,
    ids: Vec<&str>,
    records: Vec<Vec<u8>>,
) -> Result<Vec<u32>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let existing: Vec<(String, i64, bool)> = sqlx::query_as(table.existing)
        .bind(tenant)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .doing(&format!("looking up {}", table.name))?;
    let existing: HashMap<String, (i64, bool)> = existing
        .into_iter()
        .map(|(id, idx, live)| (id, (idx, live)))
        .collect();
    let (next, live) = counters_of(table, &mut counters.values);
    let mut indices = Vec::with_capacity(ids.len());
    for id in &ids {
        let index = match existing.get(*id) {
            Some(&(index, was_live)) => {
                if !was_live {
                    *live += 1;
                }
                index
            }
            None => {
                let index = *next;
                *next += 1;
                *live += 1;
                index
            }
        };
        indices.push(index);
    }
    let dense = indices
        .iter()
        .map(|&i| assign_index(i, table.name))
        .collect::<Result<Vec<u32>>>()?;
    sqlx::query(table.upsert)
        .bind(tenant)
        .bind(&ids)
        .bind(&indices)
        .bind(&records)
        .execute(&mut *conn)
        .await
        .doing(&format!("writing {}", table.name))?;
    Ok(dense)
}

/// A newly assigned index, refused once the `u32` index space is used up.
fn assign_index(index: i64, table: &str) -> Result<u32> {
    u32::try_from(index).map_err(|_| {
        StoreError::Io(format!(
            "no index is left for new {table}: all {} are taken",
            u32::MAX
        ))
    })
}

/// Inserts or replaces validated items; returns their indices.
pub(super) async fn upsert_items(
    conn: &mut PgConnection,
    tenant: &str,
    counters: &mut Counters,
    items: &[Item],
) -> Result<Vec<u32>> {
    let records = items.iter().map(encode_item).collect::<Result<Vec<_>>>()?;
    let ids = items.iter().map(|it| it.id.as_str()).collect();
    upsert_records(conn, &ITEMS, tenant, counters, ids, records).await
}

/// Inserts or replaces validated users; returns their indices.
pub(super) async fn upsert_users(
    conn: &mut PgConnection,
    tenant: &str,
    counters: &mut Counters,
    users: &[User],
) -> Result<Vec<u32>> {
    let records = users.iter().map(encode_user).collect::<Result<Vec<_>>>()?;
    let ids = users.iter().map(|u| u.id.as_str()).collect();
    upsert_records(conn, &USERS, tenant, counters, ids, records).await
}

/// Ids of one table resolved for an event batch: known ones with their index,
/// new ones with the index and placeholder they get.
struct Resolved<'e> {
    indices: HashMap<&'e str, i64>,
    new_ids: Vec<&'e str>,
    new_indices: Vec<i64>,
    new_records: Vec<Vec<u8>>,
}

/// Looks up the distinct `ids` (in first-appearance order) of a table.
async fn known_indices<'e>(
    conn: &mut PgConnection,
    table: &RecordTable,
    tenant: &str,
    ids: &[&'e str],
) -> Result<Resolved<'e>> {
    let rows: Vec<(String, i64, bool)> = sqlx::query_as(table.existing)
        .bind(tenant)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .doing(&format!("looking up the {} of an event batch", table.name))?;
    let found: HashMap<String, i64> = rows.into_iter().map(|(id, idx, _)| (id, idx)).collect();
    let indices = ids
        .iter()
        .filter_map(|&id| found.get(id).map(|&idx| (id, idx)))
        .collect();
    Ok(Resolved {
        indices,
        new_ids: Vec::new(),
        new_indices: Vec::new(),
        new_records: Vec::new(),
    })
}

/// Distinct values in first-appearance order.
fn distinct<'e>(values: impl Iterator<Item = &'e str>) -> Vec<&'e str> {
    let mut seen = std::collections::HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

/// Appends validated events: ids never seen get the next indices (users and
/// items each in order of first appearance) and a placeholder record, all in
/// the transaction of the events; ids seen before (even if deleted since) keep
/// theirs. Returns the events as stored.
pub(super) async fn append_events(
    conn: &mut PgConnection,
    tenant: &str,
    counters: &mut Counters,
    events: Vec<Event>,
) -> Result<Vec<StoredEvent>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let user_ids = distinct(events.iter().map(|e| e.user_id.as_str()));
    let item_ids = distinct(events.iter().map(|e| e.item_id.as_str()));
    let mut users = known_indices(conn, &USERS, tenant, &user_ids).await?;
    let mut items = known_indices(conn, &ITEMS, tenant, &item_ids).await?;

    let n = events.len();
    let mut columns = EventColumns::with_capacity(n);
    let values = &mut counters.values;
    for e in &events {
        let user = match users.indices.get(e.user_id.as_str()) {
            Some(&index) => index,
            None => {
                let index = values.next_user;
                values.next_user += 1;
                values.live_users += 1;
                users.indices.insert(e.user_id.as_str(), index);
                users.new_ids.push(e.user_id.as_str());
                users.new_indices.push(index);
                users
                    .new_records
                    .push(encode_user(&User::placeholder(e.user_id.as_str()))?);
                index
            }
        };
        let item = match items.indices.get(e.item_id.as_str()) {
            Some(&index) => index,
            None => {
                let index = values.next_item;
                values.next_item += 1;
                values.live_items += 1;
                items.indices.insert(e.item_id.as_str(), index);
                items.new_ids.push(e.item_id.as_str());
                items.new_indices.push(index);
                items.new_records.push(encode_item(&Item::placeholder(
                    e.item_id.as_str(),
                    e.timestamp,
                ))?);
                index
            }
        };
        columns.push(values.next_seq, user, item, e);
        values.next_seq += 1;
    }

    for (table, resolved) in [(&USERS, &users), (&ITEMS, &items)] {
        if let Some(&last) = resolved.new_indices.last() {
            assign_index(last, table.name)?;
            sqlx::query(table.insert_new)
                .bind(tenant)
                .bind(&resolved.new_ids)
                .bind(&resolved.new_indices)
                .bind(&resolved.new_records)
                .execute(&mut *conn)
                .await
                .doing(&format!("creating placeholder {}", table.name))?;
        }
    }
    columns.insert(conn, tenant).await?;
    let (seqs, user_indices, item_indices) = columns.into_indices();

    let mut stored = Vec::with_capacity(n);
    for (i, e) in events.into_iter().enumerate() {
        stored.push(StoredEvent::from_event(
            u64::try_from(seqs[i]).unwrap_or_default(),
            dense_index(user_indices[i], "a user")?,
            dense_index(item_indices[i], "an item")?,
            e,
        ));
    }
    Ok(stored)
}

/// An event batch laid out as one array per column, for one `UNNEST` insert.
struct EventColumns<'e> {
    seq: Vec<i64>,
    user: Vec<i64>,
    item: Vec<i64>,
    event_type: Vec<&'e str>,
    value: Vec<f64>,
    ts: Vec<i64>,
    request_id: Vec<Option<&'e str>>,
    scene: Vec<Option<&'e str>>,
    position: Vec<Option<i32>>,
    source: Vec<Option<&'e str>>,
    experiment: Vec<Option<&'e str>>,
    variant: Vec<Option<&'e str>>,
}

impl<'e> EventColumns<'e> {
    fn with_capacity(n: usize) -> Self {
        Self {
            seq: Vec::with_capacity(n),
            user: Vec::with_capacity(n),
            item: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            value: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            request_id: Vec::with_capacity(n),
            scene: Vec::with_capacity(n),
            position: Vec::with_capacity(n),
            source: Vec::with_capacity(n),
            experiment: Vec::with_capacity(n),
            variant: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, seq: i64, user: i64, item: i64, e: &'e Event) {
        let attribution = e.attribution.as_ref();
        self.seq.push(seq);
        self.user.push(user);
        self.item.push(item);
        self.event_type.push(&e.event_type);
        self.value.push(e.value);
        self.ts.push(e.timestamp.millis());
        self.request_id.push(e.request_id.as_deref());
        self.scene.push(e.scene.as_deref());
        // Validated: at most `MAX_POSITION`, far below `i32::MAX`.
        self.position
            .push(e.position.map(|p| i32::try_from(p).unwrap_or(i32::MAX)));
        self.source
            .push(attribution.and_then(|a| a.source.as_deref()));
        self.experiment
            .push(attribution.and_then(|a| a.experiment.as_deref()));
        self.variant
            .push(attribution.and_then(|a| a.variant.as_deref()));
    }

    /// The `(seq, user, item)` columns, releasing the borrowed rest.
    fn into_indices(self) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
        (self.seq, self.user, self.item)
    }

    /// Inserts the whole batch with one statement.
    async fn insert(&self, conn: &mut PgConnection, tenant: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO events (tenant, seq, user_idx, item_idx, event_type, value, ts, \
             request_id, scene, position, source, experiment, variant) \
             SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[], $5::text[], \
             $6::float8[], $7::bigint[], $8::text[], $9::text[], $10::int4[], $11::text[], \
             $12::text[], $13::text[])",
        )
        .bind(tenant)
        .bind(&self.seq)
        .bind(&self.user)
        .bind(&self.item)
        .bind(&self.event_type)
        .bind(&self.value)
        .bind(&self.ts)
        .bind(&self.request_id)
        .bind(&self.scene)
        .bind(&self.position)
        .bind(&self.source)
        .bind(&self.experiment)
        .bind(&self.variant)
        .execute(&mut *conn)
        .await
        .doing("appending events")?;
        Ok(())
    }
}
