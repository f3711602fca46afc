//! Persistence: closing and reopening a store loses and changes nothing.

use std::future::Future;
use std::path::PathBuf;

use serde_json::json;
use tephra_core::{Item, ItemPatch, Timestamp, User, UserPatch};

use super::support::*;
use crate::{SharedStore, StoreCounts, StoredEvent};

/// Everything observable about a store, for before/after comparisons.
#[derive(Debug, PartialEq)]
struct Snapshot {
    items: Vec<Item>,
    users: Vec<User>,
    item_ids: Vec<(u32, String)>,
    user_ids: Vec<(u32, String)>,
    item_ids_len: usize,
    user_ids_len: usize,
    events: Vec<StoredEvent>,
    counts: StoreCounts,
}

async fn snapshot(store: &SharedStore) -> Snapshot {
    let maps = store.id_maps().await.expect("id maps");
    Snapshot {
        items: all_items(store).await,
        users: all_users(store).await,
        item_ids: pairs(&maps.items),
        user_ids: pairs(&maps.users),
        item_ids_len: maps.items.len(),
        user_ids_len: maps.users.len(),
        events: all_events(store).await,
        counts: store.counts().await.expect("counts"),
    }
}

/// After closing and reopening, the store holds exactly what it held, and goes on
/// numbering where it stopped.
pub async fn reopen_restores_everything<F, Fut>(open: F)
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let dir = ScratchDir::new("reopen");
    let before = {
        let store = open(dir.0.clone()).await;
        let mut patched = item("p");
        patched.expires_at = Some(Timestamp(T0.millis() + 1));
        store
            .upsert_items(vec![item("a"), item("b"), patched, item("東京")])
            .await
            .expect("upsert");
        store
            .upsert_users(vec![user("u1"), user("u2")])
            .await
            .expect("upsert");
        let patch = ItemPatch {
            expires_at: Some(None),
            attributes: Some(attrs(json!({"price": null, "k": "v"}))),
            ..ItemPatch::default()
        };
        store.patch_item("p", patch).await.expect("patch");
        store
            .patch_user(
                "u2",
                UserPatch {
                    attributes: Some(attrs(json!({"plan": "pro"}))),
                },
            )
            .await
            .expect("patch");
        store.delete_item("b").await.expect("delete");
        store.delete_user("u1").await.expect("delete");
        let mut rich = event("u2", "a");
        rich.request_id = Some("req".into());
        rich.scene = Some("home".into());
        rich.value = 2.5;
        rich.position = Some(4);
        rich.attribution = Some(tephra_core::Attribution {
            source: Some("trending".into()),
            experiment: None,
            variant: None,
        });
        store
            .put_experiment("feed", &json!({"scene": "home", "variants": [1, 2]}))
            .await
            .expect("put experiment");
        store
            .append_events(vec![rich, event("new-user", "new-item"), event("u1", "b")])
            .await
            .expect("append");
        let mut import = store.begin_import().await.expect("begin import");
        import
            .add_items(vec![item("imported")])
            .await
            .expect("add items");
        import
            .add_events(
                (0..50)
                    .map(|i| event(&format!("iu{}", i % 5), "imported"))
                    .collect(),
            )
            .await
            .expect("add");
        import.commit().await.expect("commit");
        snapshot(&store).await
    };
    assert_eq!(
        before.counts,
        StoreCounts {
            items: 5,
            users: 7,
            events: 53
        }
    );

    let store = open(dir.0.clone()).await;
    let after = snapshot(&store).await;
    assert_eq!(after, before, "a reopened store holds exactly what it held");
    assert_eq!(
        store.experiments().await.expect("experiments"),
        [(
            "feed".to_owned(),
            json!({"scene": "home", "variants": [1, 2]})
        )],
        "experiments survive a reopen"
    );
    assert_eq!(
        store
            .append_events(vec![event("u2", "a")])
            .await
            .expect("append")[0]
            .seq,
        53,
        "seq continues"
    );
    let next_item = before.item_ids_len as u32;
    assert_eq!(
        store
            .upsert_items(vec![item("fresh")])
            .await
            .expect("upsert"),
        [next_item],
        "indices continue"
    );
    assert_eq!(
        store.upsert_items(vec![item("b")]).await.expect("upsert"),
        [1],
        "a deleted id keeps its index"
    );
    drop(store);

    let store = open(dir.0.clone()).await;
    assert_eq!(
        store.counts().await.expect("counts").events,
        54,
        "writes after a reopen persist too"
    );
}

/// An import dropped without commit leaves no trace on disk either.
pub async fn reopen_after_dropped_import_finds_nothing_of_it<F, Fut>(open: F)
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = SharedStore>,
{
    let dir = ScratchDir::new("dropped-import");
    let before = {
        let store = open(dir.0.clone()).await;
        store
            .upsert_items(vec![item("kept")])
            .await
            .expect("upsert");
        let mut import = store.begin_import().await.expect("begin import");
        import
            .add_items(vec![item("lost")])
            .await
            .expect("add items");
        import
            .add_events(vec![event("lost-user", "lost")])
            .await
            .expect("add events");
        drop(import);
        snapshot(&store).await
    };
    let store = open(dir.0.clone()).await;
    assert_eq!(snapshot(&store).await, before);
    assert_eq!(store.get_item("lost").await.expect("get"), None);
    assert_eq!(
        store
            .upsert_items(vec![item("next")])
            .await
            .expect("upsert"),
        [1]
    );
}
