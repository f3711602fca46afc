//! The PostgreSQL backend: the store, persistence and registry conformance
//! suites, plus what only a shared database does (several nodes writing to one
//! tenant, trainer election, model snapshots).
//!
//! Runs against `postgres://postgres@127.0.0.1:5432/test`, or the URL in
//! `TEPHRA_TEST_POSTGRES`. Every test works in a fresh schema of its own
//! (dropped at its end) with a fresh random tenant. When PostgreSQL is not
//! reachable the tests are skipped with a banner on stderr, unless
//! `TEPHRA_REQUIRE_SERVICES=1`, which makes them fail.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tephra_core::{Event, Timestamp};
use tephra_store::conformance::{event, item, user};
use tephra_store::postgres::redacted_url;
use tephra_store::{
    PostgresCluster, PostgresOptions, SharedRegistry, SharedStore, SnapshotStore, Store,
    StoreCounts, StoreError, TenantStores,
};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The database the tests use.
fn base_url() -> String {
    std::env::var("TEPHRA_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A name no other test (of this run or another) uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{prefix}{:016x}", hasher.finish())
}

/// Whether PostgreSQL answers, found out once per test process (on a thread of
/// its own, since every test has its own runtime).
fn availability() -> &'static Result<(), String> {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    AVAILABLE.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("no runtime: {e}"))?;
            runtime.block_on(async {
                match tokio::time::timeout(Duration::from_secs(5), admin_connection()).await {
                    Ok(Ok(conn)) => {
                        let _ = conn.close().await;
                        Ok(())
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer within 5 s".to_owned()),
                }
            })
        })
        .join()
        .unwrap_or_else(|_| Err("the availability check panicked".to_owned()))
    })
}

async fn admin_connection() -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect(&base_url()).await
}

/// `true` if the tests can run; otherwise says loudly why this test is
/// skipped (straight to stderr, past the test harness's capture), or fails it
/// if `TEPHRA_REQUIRE_SERVICES=1`.
fn postgres_available() -> bool {
    let Err(why) = availability() else {
        return true;
    };
    let url = redacted_url(&base_url());
    if std::env::var("TEPHRA_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("PostgreSQL is required (TEPHRA_REQUIRE_SERVICES=1) but is not reachable at {url}: {why}");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a PostgreSQL test")
        .to_owned();
    let banner = format!(
        "\n********************************************************************************\n\
         SKIPPED {test}: PostgreSQL is not reachable at {url} ({why}).\n\
         Start it, point TEPHRA_TEST_POSTGRES at one, or set TEPHRA_REQUIRE_SERVICES=1 to fail.\n\
         ********************************************************************************\n"
    );
    let _ = std::io::stderr().write_all(banner.as_bytes());
    false
}

/// A fresh schema, dropped (with everything in it) when this is dropped.
struct Scratch {
    schema: String,
    /// The database URL with the schema as the search path.
    url: String,
}

impl Scratch {
    /// `None` when PostgreSQL is not reachable (see [`postgres_available`]).
    async fn new() -> Option<Self> {
        if !postgres_available() {
            return None;
        }
        let schema = unique("tephra_test_");
        let mut conn = admin_connection().await.expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&mut conn)
            .await
            .expect("create a scratch schema");
        let _ = conn.close().await;
        let base = base_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        Some(Self { schema, url })
    }

    async fn cluster(&self) -> PostgresCluster {
        PostgresCluster::connect(&self.url)
            .await
            .expect("connect a cluster")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Drop runs inside a test's runtime, which cannot be blocked on: use a
        // thread with a runtime of its own.
        let schema = self.schema.clone();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut conn = admin_connection().await?;
                sqlx::query("SET lock_timeout = '20s'")
                    .execute(&mut conn)
                    .await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop the scratch schema {}: {done:?}",
                self.schema
            );
        }
    }
}

/// A fresh store in a fresh schema, for the conformance cases.
async fn fresh_store() -> Option<(SharedStore, Scratch)> {
    let scratch = Scratch::new().await?;
    let store = scratch.cluster().await.store(&unique("t-"));
    Some((Arc::new(store) as SharedStore, scratch))
}

mod conformance {
    tephra_store::conformance_tests_or_skip!(super::fresh_store);
}

mod persistence {
    use super::{unique, Arc, PathBuf, PostgresCluster, Scratch, SharedStore};

    tephra_store::persistence_tests_or_skip!(|| async {
        let scratch = Scratch::new().await?;
        let url = scratch.url.clone();
        let tenant = unique("t-");
        // Each open is a new cluster (a new pool), like a restarted node.
        let open = move |_dir: PathBuf| {
            let url = url.clone();
            let tenant = tenant.clone();
            async move {
                let cluster = PostgresCluster::connect(&url).await.expect("connect");
                Arc::new(cluster.store(&tenant)) as SharedStore
            }
        };
        Some((open, scratch))
    });
}

mod registry {
    use super::{Arc, PathBuf, PostgresCluster, Scratch, SharedRegistry};

    async fn fresh() -> Option<(SharedRegistry, Scratch)> {
        let scratch = Scratch::new().await?;
        let registry = scratch.cluster().await.registry();
        Some((Arc::new(registry) as SharedRegistry, scratch))
    }

    tephra_store::registry_conformance_tests_or_skip!(
        fresh,
        reopen = || async {
            let scratch = Scratch::new().await?;
            let url = scratch.url.clone();
            let open = move |_dir: PathBuf| {
                let url = url.clone();
                async move {
                    let cluster = PostgresCluster::connect(&url).await.expect("connect");
                    Arc::new(cluster.registry()) as SharedRegistry
                }
            };
            Some((open, scratch))
        }
    );
}

#[tokio::test]
async fn unreachable_database_is_a_clear_error_without_the_password() {
    let url = "postgres://tephra:s3cret-pw@127.0.0.1:1/tephra";
    match PostgresCluster::connect(url).await {
        Err(StoreError::Io(message)) => {
            assert!(
                message.contains("not reachable") && message.contains("127.0.0.1:1"),
                "says what and where: {message}"
            );
            assert!(!message.contains("s3cret-pw"), "no password: {message}");
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
}

/// Two API nodes (two clusters, two pools) writing to the same tenant at once
/// lose nothing, and share one gapless log and one set of indices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_write_to_one_tenant() {
    let Some(scratch) = Scratch::new().await else {
        return;
    };
    let tenant = unique("t-");
    let nodes = [
        scratch.cluster().await.store(&tenant),
        scratch.cluster().await.store(&tenant),
    ];
    const TASKS_PER_NODE: usize = 4;
    const BATCHES: usize = 25;
    const PER_BATCH: usize = 4;
    let mut handles = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..TASKS_PER_NODE {
            let node = node.clone();
            handles.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for b in 0..BATCHES {
                    node.upsert_items(vec![item(&format!("n{n}-t{t}-b{b}"))])
                        .await
                        .expect("upsert");
                    let batch = (0..PER_BATCH)
                        .map(|k| event(&format!("u{n}-{t}"), &format!("shared-{}", (b + k) % 10)))
                        .collect();
                    let stored = node.append_events(batch).await.expect("append");
                    assert!(stored.windows(2).all(|w| w[1].seq == w[0].seq + 1));
                    seqs.extend(stored.into_iter().map(|e| e.seq));
                }
                seqs
            }));
        }
    }
    let mut all = BTreeSet::new();
    for handle in handles {
        for seq in handle.await.expect("task") {
            assert!(all.insert(seq), "seq {seq} was given twice");
        }
    }
    let writers = 2 * TASKS_PER_NODE;
    let events = (writers * BATCHES * PER_BATCH) as u64;
    assert_eq!(all, (0..events).collect(), "seq is contiguous from 0");
    let items = (writers * BATCHES + 10) as u64;
    let expected = StoreCounts {
        items,
        users: writers as u64,
        events,
    };
    for node in &nodes {
        assert_eq!(node.counts().await.expect("counts"), expected);
        let maps = node.id_maps().await.expect("id maps");
        assert_eq!(maps.items.len() as u64, items, "item indices are dense");
        assert_eq!(
            maps.users.len() as u64,
            writers as u64,
            "user indices are dense"
        );
        assert_eq!(maps.items.iter().count() as u64, items);
    }
    let log = nodes[1].scan_events(0, usize::MAX).await.expect("scan");
    assert_eq!(log.len() as u64, events);
    let maps = nodes[0].id_maps().await.expect("id maps");
    for e in &log {
        let item = maps.items.id(e.item).expect("known item index");
        assert!(item.starts_with("shared-"), "event {e:?} points at {item}");
    }
}

/// Only one node at a time holds a tenant's trainer lock; it passes on when
/// the holder lets go or its connection dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trainer_lock_elects_one_node_per_tenant() {
    let Some(scratch) = Scratch::new().await else {
        return;
    };
    let tenant = unique("t-");
    let other_tenant = unique("t-");
    let (first, second) = (scratch.cluster().await, scratch.cluster().await);

    let mut held = first
        .try_trainer_lock(&tenant)
        .await
        .expect("try")
        .expect("a free lock is taken");
    assert_eq!(held.tenant(), tenant);
    assert!(held.is_held().await);
    assert!(
        second
            .try_trainer_lock(&tenant)
            .await
            .expect("try")
            .is_none(),
        "another node cannot take a held lock"
    );
    assert!(
        first
            .try_trainer_lock(&tenant)
            .await
            .expect("try")
            .is_none(),
        "nor can another session of the same node"
    );
    let other = second
        .try_trainer_lock(&other_tenant)
        .await
        .expect("try")
        .expect("another tenant's lock is independent");

    drop(held);
    let taken_over = wait_for_lock(&second, &tenant).await;
    assert!(
        first
            .try_trainer_lock(&tenant)
            .await
            .expect("try")
            .is_none(),
        "the new holder has it now"
    );
    other.release().await.expect("release");
    let mut again = wait_for_lock(&first, &other_tenant).await;
    assert!(again.is_held().await);

    // A holder whose session dies knows it, and the lock is free again.
    let mut admin = admin_connection().await.expect("connect");
    let key = taken_over.key();
    let bits = u64::from_ne_bytes(key.to_ne_bytes());
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
         AND granted AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
    )
    .bind((bits >> 32) as i64)
    .bind((bits & 0xffff_ffff) as i64)
    .fetch_all(&mut admin)
    .await
    .expect("terminate the holder's session");
    assert_eq!(terminated, [true]);
    let mut taken_over = taken_over;
    assert!(!taken_over.is_held().await, "a dead session holds nothing");
    drop(taken_over);
    let mut back = wait_for_lock(&first, &tenant).await;
    assert!(back.is_held().await);
}

/// Tries the lock until it is taken: a dropped connection's session ends a
/// moment after the drop.
async fn wait_for_lock(cluster: &PostgresCluster, tenant: &str) -> tephra_store::TrainerLock {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(lock) = cluster.try_trainer_lock(tenant).await.expect("try") {
            return lock;
        }
        assert!(
            Instant::now() < deadline,
            "the lock of {tenant} was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Snapshots round-trip byte for byte, the latest replaces the previous one,
/// tenants do not share them, and destroying a tenant removes its snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_round_trip() {
    let Some(scratch) = Scratch::new().await else {
        return;
    };
    let (writer, reader) = (scratch.cluster().await, scratch.cluster().await);
    let (tenant, other) = (unique("t-"), unique("t-"));
    assert_eq!(reader.get_snapshot(&tenant).await.expect("get"), None);
    assert_eq!(
        reader.snapshot_version(&tenant).await.expect("version"),
        None
    );

    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let big: Vec<u8> = (0..24 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    writer
        .put_snapshot(&tenant, "v1", vec![1, 2, 3])
        .await
        .expect("put");
    let started = Instant::now();
    writer
        .put_snapshot(&tenant, "v2", big.clone())
        .await
        .expect("put a large snapshot");
    let put = started.elapsed();
    assert_eq!(
        reader.snapshot_version(&tenant).await.expect("version"),
        Some("v2".to_owned())
    );
    let started = Instant::now();
    let (version, bytes) = reader
        .get_snapshot(&tenant)
        .await
        .expect("get")
        .expect("a snapshot");
    println!(
        "a {} MiB snapshot: saved in {put:?}, loaded in {:?}",
        big.len() >> 20,
        started.elapsed()
    );
    assert_eq!(version, "v2");
    assert!(bytes == big, "the bytes round-trip");
    assert_eq!(
        reader.snapshot_version(&other).await.expect("version"),
        None
    );

    assert!(matches!(
        writer.put_snapshot(&tenant, "", Vec::new()).await,
        Err(StoreError::Invalid(_))
    ));
    writer
        .tenant_stores()
        .destroy(&tenant)
        .await
        .expect("destroy");
    assert_eq!(
        reader.snapshot_version(&tenant).await.expect("version"),
        None
    );
}

/// A tenant's store is opened by name and destroyed whole, without touching
/// another tenant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_stores_open_and_destroy() {
    let Some(scratch) = Scratch::new().await else {
        return;
    };
    let cluster = scratch.cluster().await;
    let stores = cluster.tenant_stores();
    match stores.open("bad/name").await {
        Err(StoreError::Invalid(e)) => assert_eq!(e.code, "invalid_tenant"),
        Err(other) => panic!("expected invalid_tenant, got {other:?}"),
        Ok(_) => panic!("a bad tenant name was accepted"),
    }
    let (a, b) = (unique("a-"), unique("b-"));
    for tenant in [&a, &b] {
        let store = stores.open(tenant).await.expect("open");
        store.upsert_items(vec![item("i")]).await.expect("upsert");
        store.upsert_users(vec![user("u")]).await.expect("upsert");
        store
            .append_events(vec![event("u", "i"), event("v", "j")])
            .await
            .expect("append");
        store
            .put_experiment("e", &serde_json::json!({"x": 1}))
            .await
            .expect("put experiment");
    }
    stores.destroy(&a).await.expect("destroy");
    let store_a = stores.open(&a).await.expect("reopen");
    assert_eq!(
        store_a.counts().await.expect("counts"),
        StoreCounts::default()
    );
    assert!(store_a.experiments().await.expect("experiments").is_empty());
    assert!(store_a.id_maps().await.expect("id maps").items.is_empty());
    assert_eq!(
        store_a.upsert_items(vec![item("x")]).await.expect("upsert"),
        [0],
        "a destroyed tenant starts afresh"
    );
    let store_b = stores.open(&b).await.expect("open");
    assert_eq!(
        store_b.counts().await.expect("counts"),
        StoreCounts {
            items: 2,
            users: 2,
            events: 2
        },
        "the other tenant is untouched"
    );
}

/// An open import holds the tenant's writes (on every node) until it ends;
/// reads and other tenants go on, and writes queued on the importing node do
/// not use up its connections. A dropped import lets the writes go at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_for_an_open_import() {
    let Some(scratch) = Scratch::new().await else {
        return;
    };
    let tenant = unique("t-");
    let small_pool = PostgresOptions {
        max_connections: 2,
        ..PostgresOptions::default()
    };
    let node_a = PostgresCluster::connect_with(&scratch.url, small_pool)
        .await
        .expect("connect");
    let node_b = scratch.cluster().await;
    let store = node_a.store(&tenant);
    let mut import = store.begin_import().await.expect("begin import");
    import.add_items(vec![item("imported")]).await.expect("add");
    let other_node_writer = {
        let other_node = node_b.store(&tenant);
        tokio::spawn(async move { other_node.upsert_items(vec![item("later")]).await })
    };
    let same_node_writers: Vec<_> = (0..5)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_events(vec![event(&format!("w{i}"), "later")])
                    .await
            })
        })
        .collect();
    node_b
        .store(&unique("t-"))
        .upsert_items(vec![item("elsewhere")])
        .await
        .expect("another tenant does not wait");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !other_node_writer.is_finished() && same_node_writers.iter().all(|w| !w.is_finished()),
        "writes must wait while an import is open"
    );
    let read = tokio::time::timeout(Duration::from_secs(2), store.get_item("imported")).await;
    assert!(
        matches!(read, Ok(Ok(None))),
        "reads on the importing node still get a connection, and see nothing of the import: {read:?}"
    );
    import.commit().await.expect("commit");
    assert_eq!(
        other_node_writer.await.expect("task").expect("upsert"),
        [1],
        "then runs, after the import's ids"
    );
    for writer in same_node_writers {
        writer.await.expect("task").expect("append");
    }
    assert_eq!(store.counts().await.expect("counts").events, 5);

    let mut dropped = store.begin_import().await.expect("begin import");
    dropped.add_items(vec![item("lost")]).await.expect("add");
    drop(dropped);
    let write = tokio::time::timeout(
        Duration::from_secs(5),
        node_b.store(&tenant).upsert_items(vec![item("after-drop")]),
    )
    .await;
    assert!(
        matches!(&write, Ok(Ok(indices)) if indices == &[2]),
        "a dropped import releases the tenant at once and consumes no index: {write:?}"
    );
}

/// Event values, times and optional fields survive exactly, and large batches
/// commit as one. Prints how long a batch of 1,000 events takes (not asserted:
/// it depends on the machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_batch_of_1000_commit_time() {
    let Some(scratch) = Scratch::new().await else {
        return;
    };
    let store = scratch.cluster().await.store(&unique("t-"));
    store
        .upsert_items((0..500).map(|i| item(&format!("item-{i}"))).collect())
        .await
        .expect("upsert");
    let batch = |b: usize| -> Vec<Event> {
        (0..1000)
            .map(|k| {
                let n = b * 1000 + k;
                let mut e = event(&format!("user-{}", n % 300), &format!("item-{}", n % 700));
                e.value = n as f64 / 7.0;
                e.timestamp = Timestamp(1_700_000_000_000 + n as i64);
                e.request_id = (k % 3 == 0).then(|| format!("req-{n}"));
                e.position = (k % 3 == 0).then_some((k % 10) as u32);
                e
            })
            .collect()
    };
    let mut timings = Vec::new();
    for b in 0..5 {
        let events = batch(b);
        let started = Instant::now();
        let stored = store.append_events(events.clone()).await.expect("append");
        timings.push(started.elapsed());
        assert_eq!(stored.len(), 1000);
        assert_eq!(stored[0].seq, (b * 1000) as u64);
        let read = store
            .scan_events((b * 1000) as u64, 1000)
            .await
            .expect("scan");
        assert_eq!(read, stored, "the log holds exactly what was returned");
        for (e, s) in events.iter().zip(&stored) {
            assert_eq!(
                (s.value, s.timestamp, &s.request_id, s.position),
                (e.value, e.timestamp, &e.request_id, e.position)
            );
        }
    }
    println!(
        "append_events of 1,000 events: first batch (300 new users, 200 new items) {:?}, \
         then {:?}",
        timings[0],
        &timings[1..]
    );
    assert_eq!(
        store.counts().await.expect("counts"),
        StoreCounts {
            items: 700,
            users: 300,
            events: 5000
        }
    );
}
