//! Concurrency, unicode ids and values at the size limits.

use std::collections::BTreeSet;

use serde_json::json;
use tephra_core::{ItemPatch, Timestamp, User};

use super::support::*;
use crate::{SharedStore, StoreCounts};

/// Many tasks appending at once lose nothing and never share a `seq`.
pub async fn concurrent_appends_lose_nothing(store: SharedStore) {
    const TASKS: usize = 16;
    const BATCHES: usize = 50;
    const PER_BATCH: usize = 3;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for b in 0..BATCHES {
                let batch = (0..PER_BATCH)
                    .map(|k| event(&format!("user{t}"), &format!("item{}", (b + k) % 20)))
                    .collect();
                let stored = store.append_events(batch).await.expect("append");
                assert!(
                    stored.windows(2).all(|w| w[1].seq == w[0].seq + 1),
                    "a batch gets consecutive seqs"
                );
                seqs.extend(stored.iter().map(|e| e.seq));
            }
            seqs
        }));
    }
    let mut all = BTreeSet::new();
    for handle in handles {
        for seq in handle.await.expect("task") {
            assert!(all.insert(seq), "seq {seq} was given twice");
        }
    }
    let total = (TASKS * BATCHES * PER_BATCH) as u64;
    assert_eq!(all, (0..total).collect::<BTreeSet<u64>>());
    assert_eq!(
        store.counts().await.expect("counts"),
        StoreCounts {
            items: 20,
            users: TASKS as u64,
            events: total
        }
    );
    let maps = store.id_maps().await.expect("id maps");
    let log = all_events(&store).await;
    assert_eq!(log.len() as u64, total);
    for e in &log {
        let user = maps.users.id(e.user).expect("known user index");
        assert!(
            user.starts_with("user"),
            "event {e:?} points at user {user}"
        );
    }
}

/// Refused writes running at the same time as good ones (and so, in a
/// group-committing backend, possibly in the same commit) fail alone.
pub async fn bad_writes_do_not_fail_concurrent_good_ones(store: SharedStore) {
    store
        .upsert_items(vec![item("target")])
        .await
        .expect("upsert");
    let mut handles = Vec::new();
    for t in 0..24 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            match t % 3 {
                0 => {
                    let bad = ItemPatch {
                        tags: Some(vec!["bad\u{1}".into()]),
                        ..ItemPatch::default()
                    };
                    expect_invalid(
                        store.patch_item("target", bad).await,
                        "invalid_label",
                        "tags[0]",
                    );
                }
                1 => {
                    let mut bad = item("x");
                    bad.id = String::new();
                    expect_invalid(
                        store.upsert_items(vec![item(&format!("ok{t}")), bad]).await,
                        "invalid_id",
                        "[1].id",
                    );
                }
                _ => {
                    store
                        .upsert_items(vec![item(&format!("good{t}"))])
                        .await
                        .expect("a good upsert succeeds");
                    store
                        .append_events(vec![event("u", &format!("good{t}"))])
                        .await
                        .expect("a good append succeeds");
                }
            }
        }));
    }
    for handle in handles {
        handle.await.expect("task");
    }
    assert_eq!(
        store.counts().await.expect("counts"),
        StoreCounts {
            items: 9,
            users: 1,
            events: 8
        }
    );
    assert_eq!(
        store.get_item("target").await.expect("get"),
        Some(item("target"))
    );
}

/// Ids are arbitrary UTF-8: multi-byte characters and 256-byte ids work everywhere.
pub async fn unicode_ids(store: SharedStore) {
    let longest = "é".repeat(128);
    let ids = [
        "東京/ü",
        "🎉 party",
        "Ωmega",
        "tab-free but spaced out",
        longest.as_str(),
    ];
    let indices = store
        .upsert_items(ids.iter().map(|id| item(id)).collect())
        .await
        .expect("upsert");
    assert_eq!(indices, [0, 1, 2, 3, 4]);
    store
        .upsert_users(vec![user("ユーザー")])
        .await
        .expect("upsert");
    for id in ids {
        assert_eq!(store.get_item(id).await.expect("get"), Some(item(id)));
    }
    let stored = store
        .append_events(vec![
            event("ユーザー", "🎉 party"),
            event("ü", longest.as_str()),
        ])
        .await
        .expect("append");
    assert_eq!((stored[0].user, stored[0].item), (0, 1));
    assert_eq!((stored[1].user, stored[1].item), (1, 4));
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    let listed: Vec<String> = all_items(&store)
        .await
        .into_iter()
        .map(|it| it.id)
        .collect();
    assert_eq!(listed, sorted);
    let maps = store.id_maps().await.expect("id maps");
    assert_eq!(maps.users.get("ü"), Some(1));
}

/// Values at the size limits round-trip unchanged; one byte over is refused.
pub async fn large_values_round_trip(store: SharedStore) {
    let mut big = item("big");
    big.title = "t".repeat(tephra_core::item::MAX_TITLE_BYTES);
    big.text = "ü".repeat(tephra_core::item::MAX_TEXT_BYTES / 2);
    big.categories = (0..tephra_core::item::MAX_LABELS)
        .map(|i| format!("cat-{i}"))
        .collect();
    big.attributes =
        attrs(json!({"blob": "b".repeat(60 * 1024), "list": (0..100).collect::<Vec<i32>>()}));
    store.upsert_items(vec![big.clone()]).await.expect("upsert");
    assert_eq!(store.get_item("big").await.expect("get"), Some(big.clone()));
    let listed = store.list_items(None, 1).await.expect("list");
    assert_eq!(listed, vec![big.clone()]);

    let mut too_big = big;
    too_big.id = "bigger".into();
    too_big.text.push('x');
    expect_invalid(
        store.upsert_items(vec![too_big]).await,
        "too_large",
        "[0].text",
    );

    let big_user = User {
        id: "bu".into(),
        attributes: attrs(json!({"blob": "u".repeat(60 * 1024)})),
    };
    store
        .upsert_users(vec![big_user.clone()])
        .await
        .expect("upsert");
    assert_eq!(store.get_user("bu").await.expect("get"), Some(big_user));

    let mut big_event = event("bu", "big");
    big_event.value = tephra_core::event::MAX_EVENT_VALUE;
    big_event.request_id = Some("r".repeat(256));
    big_event.timestamp = Timestamp(253_402_300_799_999);
    let stored = store
        .append_events(vec![big_event.clone()])
        .await
        .expect("append");
    let read = store.events_by_seq(&[stored[0].seq]).await.expect("by seq");
    assert_eq!(read, stored);
    assert_eq!(read[0].request_id, big_event.request_id);
}
