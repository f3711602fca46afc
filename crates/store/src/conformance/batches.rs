//! Batch rules: validation with index paths, atomicity, duplicate ids.

use serde_json::Map;
use tephra_core::User;

use super::support::*;
use crate::{SharedStore, StoreCounts};

/// A batch with one bad element is refused with the element's index in the field
/// path, and nothing of it is stored (not even ids).
pub async fn invalid_batches_store_nothing(store: SharedStore) {
    let before = store.counts().await.expect("counts");

    let mut bad_item = item("bad");
    bad_item.id = "line\nbreak".into();
    expect_invalid(
        store
            .upsert_items(vec![item("ok1"), bad_item, item("ok2")])
            .await,
        "invalid_id",
        "[1].id",
    );
    let mut long_title = item("long");
    long_title.title = "x".repeat(5000);
    expect_invalid(
        store
            .upsert_items(vec![item("ok1"), item("ok2"), long_title])
            .await,
        "too_large",
        "[2].title",
    );

    let bad_user = User {
        id: String::new(),
        attributes: Map::new(),
    };
    expect_invalid(
        store.upsert_users(vec![user("ok"), bad_user]).await,
        "invalid_id",
        "[1].id",
    );

    let mut nan = event("u", "i");
    nan.value = f64::NAN;
    expect_invalid(
        store
            .append_events(vec![event("u", "i"), event("u2", "i2"), nan])
            .await,
        "invalid_value",
        "[2].value",
    );
    let mut negative = event("u", "i");
    negative.value = -1.0;
    expect_invalid(
        store.append_events(vec![negative]).await,
        "invalid_value",
        "[0].value",
    );
    let long_id = "x".repeat(257);
    expect_invalid(
        store
            .append_events(vec![event("u", "i"), event("u", &long_id)])
            .await,
        "invalid_id",
        "[1].item_id",
    );
    let mut control = event("u", "i");
    control.request_id = Some("a\u{7}".into());
    expect_invalid(
        store.append_events(vec![control]).await,
        "invalid_id",
        "[0].request_id",
    );

    assert_eq!(
        store.counts().await.expect("counts"),
        before,
        "refused batches change no count"
    );
    assert_eq!(store.get_item("ok1").await.expect("get"), None);
    assert_eq!(store.get_user("ok").await.expect("get"), None);
    assert!(all_events(&store).await.is_empty());
    let maps = store.id_maps().await.expect("id maps");
    assert!(
        maps.items.is_empty() && maps.users.is_empty(),
        "refused batches consume no index"
    );
    assert_eq!(
        store
            .upsert_items(vec![item("first")])
            .await
            .expect("upsert"),
        [0]
    );
}

/// An upsert batch naming an id twice is refused at the second occurrence.
pub async fn duplicate_ids_are_refused(store: SharedStore) {
    expect_invalid(
        store
            .upsert_items(vec![item("a"), item("b"), item("a")])
            .await,
        "duplicate_id",
        "[2].id",
    );
    expect_invalid(
        store.upsert_users(vec![user("u"), user("u")]).await,
        "duplicate_id",
        "[1].id",
    );
    assert_eq!(
        store.counts().await.expect("counts"),
        StoreCounts::default()
    );
    assert!(store.id_maps().await.expect("id maps").items.is_empty());
    // Events may name the same ids many times.
    let stored = store
        .append_events(vec![event("u", "a"), event("u", "a")])
        .await
        .expect("append");
    assert_eq!(stored.len(), 2);
}

/// Empty batches succeed and change nothing.
pub async fn empty_batches_are_accepted(store: SharedStore) {
    assert!(store
        .upsert_items(Vec::new())
        .await
        .expect("upsert")
        .is_empty());
    assert!(store
        .upsert_users(Vec::new())
        .await
        .expect("upsert")
        .is_empty());
    assert!(store
        .append_events(Vec::new())
        .await
        .expect("append")
        .is_empty());
    assert!(store.events_by_seq(&[]).await.expect("by seq").is_empty());
    assert_eq!(
        store.counts().await.expect("counts"),
        StoreCounts::default()
    );
}
