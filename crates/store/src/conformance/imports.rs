//! Import sessions: commit, drop, refused batches.

use tephra_core::User;

use super::support::*;
use crate::{SharedStore, StoreCounts};

/// Nothing of an import is visible before `commit`; everything is after, and
/// `commit` reports the new counts.
pub async fn import_commit_makes_everything_visible(store: SharedStore) {
    store
        .upsert_items(vec![item("before")])
        .await
        .expect("upsert");
    let mut import = store.begin_import().await.expect("begin import");
    import
        .add_items(vec![item("a"), item("b")])
        .await
        .expect("add items");
    import.add_users(vec![user("u")]).await.expect("add users");
    import
        .add_events(vec![event("u", "a"), event("w", "new")])
        .await
        .expect("add events");
    import
        .add_items(vec![item("new")])
        .await
        .expect("add items");
    import
        .add_events((0..100).map(|i| event("u", &format!("bulk{i}"))).collect())
        .await
        .expect("add events");
    let counts = import.commit().await.expect("commit");
    assert_eq!(
        counts,
        StoreCounts {
            items: 104,
            users: 2,
            events: 102
        }
    );
    assert_eq!(store.counts().await.expect("counts"), counts);

    assert_eq!(store.get_item("a").await.expect("get"), Some(item("a")));
    assert_eq!(
        store.get_item("new").await.expect("get"),
        Some(item("new")),
        "a later upsert replaces a placeholder"
    );
    assert_eq!(
        store.get_user("w").await.expect("get"),
        Some(User::placeholder("w"))
    );
    let maps = store.id_maps().await.expect("id maps");
    assert_eq!(maps.items.get("before"), Some(0));
    assert_eq!(maps.items.get("a"), Some(1));
    assert_eq!(maps.items.get("new"), Some(3));
    let events = all_events(&store).await;
    assert_eq!(events.len(), 102);
    assert_eq!((events[1].user, events[1].item), (1, 3));
    assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64));
    // The store takes ordinary writes again.
    assert_eq!(
        store
            .append_events(vec![event("u", "a")])
            .await
            .expect("append")[0]
            .seq,
        102
    );
}

/// Dropping an import without commit stores nothing and consumes no index.
pub async fn import_dropped_stores_nothing(store: SharedStore) {
    store
        .upsert_items(vec![item("kept")])
        .await
        .expect("upsert");
    let before = store.counts().await.expect("counts");
    {
        let mut import = store.begin_import().await.expect("begin import");
        import
            .add_items(vec![item("x"), item("y")])
            .await
            .expect("add items");
        import
            .add_events(vec![event("u", "z")])
            .await
            .expect("add events");
        let visible = store.get_item("x").await.expect("get");
        assert_eq!(visible, None, "an uncommitted import is invisible");
    }
    assert_eq!(store.counts().await.expect("counts"), before);
    assert_eq!(store.get_item("x").await.expect("get"), None);
    let maps = store.id_maps().await.expect("id maps");
    assert_eq!(
        (maps.items.len(), maps.users.len()),
        (1, 0),
        "no index was consumed"
    );
    assert_eq!(
        store
            .upsert_items(vec![item("next")])
            .await
            .expect("upsert"),
        [1]
    );
    assert_eq!(
        store
            .append_events(vec![event("u", "kept")])
            .await
            .expect("append")[0]
            .seq,
        0
    );
}

/// A refused batch reports its own error and leaves the rest of the import intact.
pub async fn import_refused_batch_keeps_session_usable(store: SharedStore) {
    let mut import = store.begin_import().await.expect("begin import");
    import
        .add_items(vec![item("good")])
        .await
        .expect("add items");
    let mut bad = event("u", "i");
    bad.value = f64::INFINITY;
    expect_invalid(
        import.add_events(vec![event("u", "i"), bad]).await,
        "invalid_value",
        "[1].value",
    );
    expect_invalid(
        import.add_items(vec![item("d"), item("d")]).await,
        "duplicate_id",
        "[1].id",
    );
    import.add_users(vec![user("v")]).await.expect("add users");
    let counts = import.commit().await.expect("commit");
    assert_eq!(
        counts,
        StoreCounts {
            items: 1,
            users: 1,
            events: 0
        }
    );
    assert_eq!(
        store.get_item("i").await.expect("get"),
        None,
        "nothing of the refused batch was stored"
    );
    assert_eq!(store.get_item("d").await.expect("get"), None);
}
