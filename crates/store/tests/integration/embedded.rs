//! The embedded (redb) backend: conformance, persistence, and how it treats its
//! files and tenant names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tephra_store::{EmbeddedStore, SharedStore, Store, StoreError};

/// A fresh store in a temporary directory that lives as long as the store.
async fn fresh() -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = EmbeddedStore::open(dir.path(), "test").expect("open store");
    (Arc::new(store) as SharedStore, dir)
}

mod conformance {
    tephra_store::conformance_tests!(super::fresh);
}

mod persistence {
    use super::*;

    tephra_store::persistence_tests!(|dir: PathBuf| async move {
        Arc::new(EmbeddedStore::open(&dir, "test").expect("open store")) as SharedStore
    });
}

#[tokio::test]
async fn lays_out_one_file_per_tenant() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let a = EmbeddedStore::open(dir.path(), "tenant-a").expect("open a");
    let b = EmbeddedStore::open(dir.path(), "tenant_B").expect("open b");
    assert_eq!(a.path(), dir.path().join("tenants/tenant-a/tephra.redb"));
    assert!(a.path().is_file() && b.path().is_file());
    a.upsert_items(vec![tephra_store::conformance::item("only-in-a")])
        .await
        .expect("upsert");
    assert_eq!(
        b.get_item("only-in-a").await.expect("get"),
        None,
        "tenants do not share data"
    );
}

#[tokio::test]
async fn second_open_of_the_same_file_is_locked() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = EmbeddedStore::open(dir.path(), "t").expect("first open");
    match EmbeddedStore::open(dir.path(), "t") {
        Err(StoreError::Locked(path)) => {
            assert!(path.ends_with("tephra.redb"), "names the file: {path}")
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    first
        .upsert_items(vec![tephra_store::conformance::item("x")])
        .await
        .expect("the first store still works");
    drop(first);
    let reopened = EmbeddedStore::open(dir.path(), "t").expect("open after the first closed");
    assert_eq!(reopened.counts().await.expect("counts").items, 1);
}

/// Writes a format version the build does not know into a store file, the way
/// a future version would.
fn stamp_format_version(path: &Path, version: u64) {
    const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    let db = redb::Database::create(path).expect("open with redb");
    let txn = db.begin_write().expect("write transaction");
    txn.open_table(META)
        .expect("meta table")
        .insert("format_version", version)
        .expect("insert");
    txn.commit().expect("commit");
}

#[test]
fn unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = EmbeddedStore::open(dir.path(), "t")
        .expect("create")
        .path()
        .to_owned();
    stamp_format_version(&path, 2);
    match EmbeddedStore::open(dir.path(), "t") {
        Err(StoreError::UnsupportedVersion {
            found: 2,
            supported: 1,
        }) => {}
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    stamp_format_version(&path, 1);
    EmbeddedStore::open(dir.path(), "t").expect("the supported version opens");
}

#[test]
fn tenant_names_are_checked() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let long = "t".repeat(257);
    for bad in ["", "..", "a/b", "a b", "ü", "a\nb", long.as_str(), "x.y"] {
        match EmbeddedStore::open(dir.path(), bad) {
            Err(StoreError::Invalid(e)) => {
                assert_eq!(e.code, "invalid_tenant", "{bad:?}");
                assert_eq!(e.field.as_deref(), Some("tenant"));
            }
            other => panic!("tenant {bad:?}: expected a validation error, got {other:?}"),
        }
    }
    assert!(
        !dir.path().join("tenants").exists(),
        "a refused tenant creates no directory"
    );
    EmbeddedStore::open(dir.path(), "Shop_42-eu").expect("a good name opens");
}

#[tokio::test]
async fn writes_wait_for_an_open_import() {
    let (store, _dir) = fresh().await;
    let mut import = store.begin_import().await.expect("begin import");
    import
        .add_items(vec![tephra_store::conformance::item("imported")])
        .await
        .expect("add");
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .upsert_items(vec![tephra_store::conformance::item("later")])
                .await
        })
    };
    // Give the write every chance to run; it must still be waiting.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !writer.is_finished(),
        "a write must wait while an import is open"
    );
    assert_eq!(store.get_item("later").await.expect("get"), None);
    import.commit().await.expect("commit");
    assert_eq!(
        writer.await.expect("task").expect("upsert"),
        [1],
        "then runs, after the import's ids"
    );
}
