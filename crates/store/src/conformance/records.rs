//! Items and users: upsert, get, patch, delete, list.

use serde_json::json;
use tephra_core::{ItemPatch, Timestamp, User, UserPatch};

use super::support::*;
use crate::SharedStore;

/// Upsert returns dense indices in input order; replacing keeps the index.
pub async fn items_upsert_get_replace(store: SharedStore) {
    let indices = store
        .upsert_items(vec![item("a"), item("b")])
        .await
        .expect("upsert");
    assert_eq!(indices, [0, 1]);
    assert_eq!(store.get_item("a").await.expect("get"), Some(item("a")));
    assert_eq!(store.get_item("b").await.expect("get"), Some(item("b")));
    assert_eq!(store.get_item("c").await.expect("get"), None);

    let mut replacement = item("a");
    replacement.title = "new title".into();
    replacement.attributes = attrs(json!({"other": true}));
    replacement.expires_at = Some(Timestamp(T0.millis() + 5));
    let indices = store
        .upsert_items(vec![item("c"), replacement.clone()])
        .await
        .expect("upsert");
    assert_eq!(indices, [2, 0], "a replaced item keeps its index");
    assert_eq!(
        store.get_item("a").await.expect("get"),
        Some(replacement),
        "upsert replaces the whole record"
    );
}

/// Patches merge attributes (null removes a key), clear the expiry on `null`,
/// leave absent fields alone, and are refused whole when the result is invalid.
pub async fn items_patch(store: SharedStore) {
    let mut original = item("p");
    original.expires_at = Some(Timestamp(T0.millis() + 1000));
    original.attributes = attrs(json!({"keep": 1, "drop": 2, "change": 3}));
    store
        .upsert_items(vec![original.clone()])
        .await
        .expect("upsert");

    let patch = ItemPatch {
        attributes: Some(attrs(json!({"drop": null, "change": "x", "new": [1, 2]}))),
        expires_at: Some(None),
        hidden: Some(true),
        ..ItemPatch::default()
    };
    let patched = store
        .patch_item("p", patch)
        .await
        .expect("patch")
        .expect("item exists");
    let mut expected = original.clone();
    expected.attributes = attrs(json!({"keep": 1, "change": "x", "new": [1, 2]}));
    expected.expires_at = None;
    expected.hidden = true;
    assert_eq!(patched, expected);
    assert_eq!(
        store.get_item("p").await.expect("get"),
        Some(expected.clone()),
        "the patch is stored"
    );

    let empty = store
        .patch_item("p", ItemPatch::default())
        .await
        .expect("patch")
        .expect("item exists");
    assert_eq!(empty, expected, "an empty patch changes nothing");

    let bad = ItemPatch {
        categories: Some(vec![String::new()]),
        title: Some("t".into()),
        ..ItemPatch::default()
    };
    expect_invalid(
        store.patch_item("p", bad).await,
        "invalid_label",
        "categories[0]",
    );
    assert_eq!(
        store.get_item("p").await.expect("get"),
        Some(expected),
        "a refused patch changes nothing"
    );

    assert_eq!(
        store
            .patch_item("missing", ItemPatch::default())
            .await
            .expect("patch"),
        None
    );
    assert_eq!(
        store.get_item("missing").await.expect("get"),
        None,
        "patching a missing item creates nothing"
    );
}

/// Deleting removes the record but not the index: a later upsert gets it back.
pub async fn items_delete_keeps_index(store: SharedStore) {
    store
        .upsert_items(vec![item("x"), item("y")])
        .await
        .expect("upsert");
    assert!(store.delete_item("x").await.expect("delete"));
    assert!(
        !store.delete_item("x").await.expect("delete"),
        "a second delete finds nothing"
    );
    assert!(!store.delete_item("never").await.expect("delete"));
    assert_eq!(store.get_item("x").await.expect("get"), None);
    assert_eq!(all_items(&store).await, vec![item("y")]);
    assert_eq!(
        store.id_maps().await.expect("id maps").items.get("x"),
        Some(0),
        "the index survives"
    );
    assert_eq!(
        store
            .upsert_items(vec![item("z"), item("x")])
            .await
            .expect("upsert"),
        [2, 0]
    );
    assert_eq!(store.get_item("x").await.expect("get"), Some(item("x")));
}

/// `list_items` pages through ids in byte order with `after` as the cursor.
pub async fn items_list_pages_in_byte_order(store: SharedStore) {
    let ids = ["m", "b", "Z", "é", "a10", "a2", "日本", "a", "~"];
    store
        .upsert_items(ids.iter().map(|id| item(id)).collect())
        .await
        .expect("upsert");
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_items(after.as_deref(), 2).await.expect("list");
        assert!(page.len() <= 2, "a page holds at most `limit` items");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.into_iter().map(|it| it.id));
    }
    assert_eq!(seen, sorted, "pages concatenate to every id in byte order");
    assert!(store.list_items(None, 0).await.expect("list").is_empty());
    let from_gap: Vec<String> = store
        .list_items(Some("a1"), 2)
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(from_gap, ["a10", "a2"], "`after` need not be a stored id");
    let largest = sorted.last().copied();
    assert!(
        store
            .list_items(largest, 10)
            .await
            .expect("list")
            .is_empty(),
        "nothing sorts after the largest id"
    );
}

/// Same as [`items_upsert_get_replace`] for users.
pub async fn users_upsert_get_replace(store: SharedStore) {
    assert_eq!(
        store
            .upsert_users(vec![user("a"), user("b")])
            .await
            .expect("upsert"),
        [0, 1]
    );
    assert_eq!(store.get_user("a").await.expect("get"), Some(user("a")));
    assert_eq!(store.get_user("c").await.expect("get"), None);
    let replacement = User {
        id: "a".into(),
        attributes: attrs(json!({"plan": "pro", "age": 30})),
    };
    assert_eq!(
        store
            .upsert_users(vec![user("c"), replacement.clone()])
            .await
            .expect("upsert"),
        [2, 0]
    );
    assert_eq!(store.get_user("a").await.expect("get"), Some(replacement));
}

/// Same as [`items_patch`] for users.
pub async fn users_patch(store: SharedStore) {
    let original = User {
        id: "u".into(),
        attributes: attrs(json!({"keep": 1, "drop": 2})),
    };
    store.upsert_users(vec![original]).await.expect("upsert");
    let patch = UserPatch {
        attributes: Some(attrs(json!({"drop": null, "new": {"deep": true}}))),
    };
    let patched = store
        .patch_user("u", patch)
        .await
        .expect("patch")
        .expect("user exists");
    let expected = User {
        id: "u".into(),
        attributes: attrs(json!({"keep": 1, "new": {"deep": true}})),
    };
    assert_eq!(patched, expected);
    assert_eq!(
        store.get_user("u").await.expect("get"),
        Some(expected.clone())
    );

    let huge = UserPatch {
        attributes: Some(attrs(json!({"blob": "x".repeat(70 * 1024)}))),
    };
    expect_invalid(store.patch_user("u", huge).await, "too_large", "attributes");
    assert_eq!(
        store.get_user("u").await.expect("get"),
        Some(expected),
        "a refused patch changes nothing"
    );
    assert_eq!(
        store
            .patch_user("nobody", UserPatch::default())
            .await
            .expect("patch"),
        None
    );
    assert_eq!(store.get_user("nobody").await.expect("get"), None);
}

/// Same as [`items_delete_keeps_index`] for users.
pub async fn users_delete_keeps_index(store: SharedStore) {
    store
        .upsert_users(vec![user("x"), user("y")])
        .await
        .expect("upsert");
    assert!(store.delete_user("x").await.expect("delete"));
    assert!(!store.delete_user("x").await.expect("delete"));
    assert_eq!(store.get_user("x").await.expect("get"), None);
    assert_eq!(all_users(&store).await, vec![user("y")]);
    assert_eq!(
        store.id_maps().await.expect("id maps").users.get("x"),
        Some(0)
    );
    assert_eq!(
        store.upsert_users(vec![user("x")]).await.expect("upsert"),
        [0]
    );
}

/// Same as [`items_list_pages_in_byte_order`] for users.
pub async fn users_list_pages_in_byte_order(store: SharedStore) {
    let ids = ["u3", "u1", "U2", "ü", "u10"];
    store
        .upsert_users(ids.iter().map(|id| user(id)).collect())
        .await
        .expect("upsert");
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_users(after.as_deref(), 3).await.expect("list");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.into_iter().map(|u| u.id));
    }
    assert_eq!(seen, sorted);
}

/// Experiment definitions: saved, replaced, listed in name order, deleted; a
/// bad name is refused.
pub async fn experiments_put_list_delete(store: SharedStore) {
    assert!(store.experiments().await.expect("list").is_empty());
    let doc =
        |v: u64| serde_json::json!({"scene": "home", "version": v, "nested": {"w": [0.5, 0.5]}});
    store.put_experiment("zeta", &doc(1)).await.expect("put");
    store.put_experiment("alpha", &doc(1)).await.expect("put");
    store
        .put_experiment("zeta", &doc(2))
        .await
        .expect("replace");
    assert_eq!(
        store.experiments().await.expect("list"),
        [("alpha".to_owned(), doc(1)), ("zeta".to_owned(), doc(2))]
    );
    assert!(store.delete_experiment("alpha").await.expect("delete"));
    assert!(!store
        .delete_experiment("alpha")
        .await
        .expect("delete again"));
    assert_eq!(store.experiments().await.expect("list").len(), 1);
    let err = store
        .put_experiment("bad\tname", &doc(1))
        .await
        .expect_err("a control character in the name");
    assert!(matches!(err, crate::StoreError::Invalid(_)), "{err:?}");
}
