//! The event log: sequence numbers, indices, placeholders, scans, id maps, counts.

use tephra_core::{Event, Item, Timestamp, User};

use super::support::*;
use crate::{SharedStore, StoreCounts, StoredEvent};

/// Appends get consecutive `seq` from 0 and dense indices on first sight, and are
/// returned as stored, in input order.
pub async fn events_get_increasing_seq_and_dense_indices(store: SharedStore) {
    let mut rich = event("u2", "i1");
    rich.event_type = "purchase".into();
    rich.value = 19.5;
    rich.timestamp = Timestamp(T0.millis() + 7);
    rich.request_id = Some("req-1".into());
    rich.scene = Some("home".into());
    rich.position = Some(2);
    rich.attribution = Some(tephra_core::Attribution {
        source: Some("collaborative".into()),
        experiment: Some("feed".into()),
        variant: Some("b".into()),
    });

    let first = store
        .append_events(vec![event("u1", "i1"), rich.clone(), event("u1", "i2")])
        .await
        .expect("append");
    let expected = vec![
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
        },
        StoredEvent {
            seq: 1,
            user: 1,
            item: 0,
            event_type: "purchase".into(),
            value: 19.5,
            timestamp: rich.timestamp,
            request_id: Some("req-1".into()),
            scene: Some("home".into()),
            position: Some(2),
            attribution: Some(tephra_core::Attribution {
                source: Some("collaborative".into()),
                experiment: Some("feed".into()),
                variant: Some("b".into()),
            }),
        },
        StoredEvent {
            seq: 2,
            user: 0,
            item: 1,
            ..expected_click()
        },
    ];
    assert_eq!(first, expected);
    let second = store
        .append_events(vec![event("u3", "i2")])
        .await
        .expect("append");
    assert_eq!(
        second,
        vec![StoredEvent {
            seq: 3,
            user: 2,
            item: 1,
            ..expected_click()
        }]
    );
    let mut all = expected;
    all.extend(second);
    assert_eq!(
        all_events(&store).await,
        all,
        "the log holds exactly what was returned"
    );
}

/// An event naming unseen ids creates placeholder records; existing records are
/// left untouched.
pub async fn events_create_placeholders_for_unseen_ids_only(store: SharedStore) {
    store
        .upsert_items(vec![item("known")])
        .await
        .expect("upsert");
    store
        .upsert_users(vec![user("known-user")])
        .await
        .expect("upsert");
    let stored = store
        .append_events(vec![
            event("known-user", "known"),
            event("new-user", "new-item"),
            event("new-user", "known"),
        ])
        .await
        .expect("append");
    assert_eq!(
        stored.iter().map(|e| (e.user, e.item)).collect::<Vec<_>>(),
        [(0, 0), (1, 1), (1, 0)],
        "new ids get the next indices"
    );
    assert_eq!(
        store.get_item("known").await.expect("get"),
        Some(item("known")),
        "records are not overwritten"
    );
    assert_eq!(
        store.get_user("known-user").await.expect("get"),
        Some(user("known-user"))
    );
    let placeholder = store
        .get_item("new-item")
        .await
        .expect("get")
        .expect("placeholder item");
    assert_eq!(
        placeholder,
        Item::placeholder("new-item", T0),
        "published_at is the first event's time"
    );
    assert_eq!(
        store.get_user("new-user").await.expect("get"),
        Some(User::placeholder("new-user"))
    );
    assert_eq!(
        store.counts().await.expect("counts"),
        StoreCounts {
            items: 2,
            users: 2,
            events: 3
        }
    );
}

/// An event naming a deleted item or user keeps the old index and does not bring
/// the record back.
pub async fn events_do_not_resurrect_deleted_records(store: SharedStore) {
    store
        .upsert_items(vec![item("gone"), item("stays")])
        .await
        .expect("upsert");
    store
        .upsert_users(vec![user("left")])
        .await
        .expect("upsert");
    assert!(store.delete_item("gone").await.expect("delete"));
    assert!(store.delete_user("left").await.expect("delete"));
    let stored = store
        .append_events(vec![event("left", "gone")])
        .await
        .expect("append");
    assert_eq!(
        (stored[0].user, stored[0].item),
        (0, 0),
        "deleted ids keep their indices"
    );
    assert_eq!(
        store.get_item("gone").await.expect("get"),
        None,
        "no placeholder for a deleted item"
    );
    assert_eq!(
        store.get_user("left").await.expect("get"),
        None,
        "no placeholder for a deleted user"
    );
    assert_eq!(
        store.counts().await.expect("counts"),
        StoreCounts {
            items: 1,
            users: 0,
            events: 1
        }
    );
}

/// `scan_events` pages through the log by `seq`; `events_by_seq` returns the
/// asked positions in the asked order and skips unknown ones.
pub async fn scan_events_pages_and_events_by_seq(store: SharedStore) {
    let events: Vec<Event> = (0..25)
        .map(|i| event(&format!("u{}", i % 4), &format!("i{}", i % 7)))
        .collect();
    store
        .append_events(events[..10].to_vec())
        .await
        .expect("append");
    store
        .append_events(events[10..].to_vec())
        .await
        .expect("append");

    let mut seqs = Vec::new();
    let mut from = 0;
    loop {
        let page = store.scan_events(from, 10).await.expect("scan");
        assert!(page.len() <= 10);
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        seqs.extend(page.iter().map(|e| e.seq));
    }
    assert_eq!(seqs, (0..25).collect::<Vec<u64>>());
    assert_eq!(store.scan_events(20, 100).await.expect("scan").len(), 5);
    assert!(store.scan_events(25, 10).await.expect("scan").is_empty());
    assert!(store
        .scan_events(u64::MAX, 10)
        .await
        .expect("scan")
        .is_empty());
    assert!(store.scan_events(0, 0).await.expect("scan").is_empty());

    let picked = store
        .events_by_seq(&[3, 99, 0, 24, 3])
        .await
        .expect("by seq");
    assert_eq!(
        picked.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 0, 24, 3]
    );
    let all = all_events(&store).await;
    assert_eq!(picked[0], all[3]);
    assert_eq!(picked[2], all[24]);
}

/// `id_maps` agrees with every index the store returned.
pub async fn id_maps_match_returned_indices(store: SharedStore) {
    let item_indices = store
        .upsert_items(vec![item("a"), item("b")])
        .await
        .expect("upsert");
    let user_indices = store.upsert_users(vec![user("x")]).await.expect("upsert");
    let stored = store
        .append_events(vec![event("y", "c"), event("x", "a")])
        .await
        .expect("append");
    let maps = store.id_maps().await.expect("id maps");
    for (id, index) in [
        ("a", item_indices[0]),
        ("b", item_indices[1]),
        ("c", stored[0].item),
        ("a", stored[1].item),
    ] {
        assert_eq!(maps.items.get(id), Some(index), "item `{id}`");
        assert_eq!(maps.items.id(index), Some(id));
    }
    for (id, index) in [
        ("x", user_indices[0]),
        ("y", stored[0].user),
        ("x", stored[1].user),
    ] {
        assert_eq!(maps.users.get(id), Some(index), "user `{id}`");
        assert_eq!(maps.users.id(index), Some(id));
    }
    assert_eq!((maps.items.len(), maps.users.len()), (3, 2));
}

/// Counts follow upserts, deletes, placeholders and appends.
pub async fn counts_follow_writes(store: SharedStore) {
    assert_eq!(
        store.counts().await.expect("counts"),
        StoreCounts::default()
    );
    store
        .upsert_items(vec![item("a"), item("b")])
        .await
        .expect("upsert");
    store.upsert_items(vec![item("a")]).await.expect("upsert");
    store.upsert_users(vec![user("u")]).await.expect("upsert");
    assert_eq!(
        store.counts().await.expect("counts"),
        StoreCounts {
            items: 2,
            users: 1,
            events: 0
        }
    );
    store.delete_item("b").await.expect("delete");
    store
        .append_events(vec![event("u", "c"), event("v", "a")])
        .await
        .expect("append");
    assert_eq!(
        store.counts().await.expect("counts"),
        StoreCounts {
            items: 2,
            users: 2,
            events: 2
        }
    );
}
