//! Building blocks shared by the cases: sample records, assertions, listings.

use std::path::PathBuf;

use serde_json::{json, Map, Value};
use tephra_core::{Event, IdMap, Item, Timestamp, User};

use crate::{SharedStore, StoreError, StoredEvent};

/// A fixed time, so that no case depends on the clock.
pub(crate) const T0: Timestamp = Timestamp(1_700_000_000_000);

/// An item with a title and one attribute.
pub fn item(id: &str) -> Item {
    let mut item = Item::placeholder(id, T0);
    item.title = format!("title of {id}");
    item.categories = vec!["books".into()];
    item.attributes.insert("price".into(), json!(10));
    item
}

/// A user with one attribute.
pub fn user(id: &str) -> User {
    let mut user = User::placeholder(id);
    user.attributes.insert("plan".into(), json!("free"));
    user
}

/// A click by `user` on `item`.
pub fn event(user: &str, item: &str) -> Event {
    Event {
        user_id: user.into(),
        item_id: item.into(),
        event_type: "click".into(),
        value: 1.0,
        timestamp: T0,
        request_id: None,
        scene: None,
        position: None,
        attribution: None,
    }
}

pub(crate) fn attrs(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test attributes must be an object, got {other}"),
    }
}

pub(crate) fn expect_invalid<T: std::fmt::Debug>(
    result: crate::Result<T>,
    code: &str,
    field: &str,
) {
    match result {
        Err(StoreError::Invalid(e)) => {
            assert_eq!(e.code, code, "error code of {e:?}");
            assert_eq!(e.field.as_deref(), Some(field), "field path of {e:?}");
        }
        other => panic!("expected a `{code}` validation error at `{field}`, got {other:?}"),
    }
}

pub(crate) async fn all_items(store: &SharedStore) -> Vec<Item> {
    store
        .list_items(None, usize::MAX)
        .await
        .expect("list items")
}

pub(crate) async fn all_users(store: &SharedStore) -> Vec<User> {
    store
        .list_users(None, usize::MAX)
        .await
        .expect("list users")
}

pub(crate) async fn all_events(store: &SharedStore) -> Vec<StoredEvent> {
    store.scan_events(0, usize::MAX).await.expect("scan events")
}

pub(crate) fn pairs(map: &IdMap) -> Vec<(u32, String)> {
    map.iter().map(|(i, id)| (i, id.to_owned())).collect()
}

/// A directory removed when dropped; std only, so that the suite needs no
/// test-only dependency.
pub(crate) struct ScratchDir(pub(crate) PathBuf);

impl ScratchDir {
    pub(crate) fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "tephra-conformance-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Self(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stored click as built by [`event`], at position 0 of index 0 and 0.
pub(crate) fn expected_click() -> StoredEvent {
    StoredEvent {
        seq: 0,
        user: 0,
        item: 0,
        event_type: "click".into(),
        value: 1.0,
        timestamp: T0,
        request_id: None,
        scene: None,
        position: None,
        attribution: None,
    }
}
