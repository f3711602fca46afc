//! Model check: a store must give the answers of the obvious implementation.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tephra_core::{Event, IdMap, Item, ItemPatch, User};

use super::support::*;
use crate::{SharedStore, StoreCounts, StoreError, StoredEvent};

/// One step of a model check.
#[derive(Debug, Clone)]
pub enum ModelOp {
    /// Upsert items `(id, title)` in one batch (refused if an id repeats).
    UpsertItems(Vec<(String, String)>),
    /// Delete an item.
    DeleteItem(String),
    /// Upsert users `(id, attribute value)` in one batch (refused if an id repeats).
    UpsertUsers(Vec<(String, i64)>),
    /// Delete a user.
    DeleteUser(String),
    /// Patch an item's title.
    PatchItem(String, String),
    /// Append events `(user, item)`.
    Append(Vec<(String, String)>),
}

/// The obvious implementation of the contract, to compare a store against.
#[derive(Default)]
struct Model {
    items: BTreeMap<String, Item>,
    users: BTreeMap<String, User>,
    item_ids: IdMap,
    user_ids: IdMap,
    events: Vec<StoredEvent>,
}

fn model_item(id: &str, title: &str) -> Item {
    let mut it = item(id);
    it.title = title.to_owned();
    it
}

fn model_user(id: &str, value: i64) -> User {
    User {
        id: id.to_owned(),
        attributes: attrs(json!({ "v": value })),
    }
}

fn has_duplicates<'a>(ids: impl Iterator<Item = &'a str>) -> bool {
    let mut seen = BTreeSet::new();
    ids.into_iter().any(|id| !seen.insert(id))
}

/// Applies `ops` to `store` and to a model, comparing every answer, then compares
/// the final contents (records, lists, id maps, counts, log).
pub async fn check_against_model(store: SharedStore, ops: Vec<ModelOp>) {
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            ModelOp::UpsertItems(batch) => {
                let items: Vec<Item> = batch
                    .iter()
                    .map(|(id, title)| model_item(id, title))
                    .collect();
                let result = store.upsert_items(items.clone()).await;
                if has_duplicates(batch.iter().map(|(id, _)| id.as_str())) {
                    assert!(
                        matches!(result, Err(StoreError::Invalid(_))),
                        "step {step}: {result:?}"
                    );
                } else {
                    let expected: Vec<u32> = items
                        .into_iter()
                        .map(|it| {
                            let index = model.item_ids.get_or_insert(&it.id).0;
                            model.items.insert(it.id.clone(), it);
                            index
                        })
                        .collect();
                    assert_eq!(result.expect("upsert"), expected, "step {step}");
                }
            }
            ModelOp::UpsertUsers(batch) => {
                let users: Vec<User> = batch.iter().map(|(id, v)| model_user(id, *v)).collect();
                let result = store.upsert_users(users.clone()).await;
                if has_duplicates(batch.iter().map(|(id, _)| id.as_str())) {
                    assert!(
                        matches!(result, Err(StoreError::Invalid(_))),
                        "step {step}: {result:?}"
                    );
                } else {
                    let expected: Vec<u32> = users
                        .into_iter()
                        .map(|u| {
                            let index = model.user_ids.get_or_insert(&u.id).0;
                            model.users.insert(u.id.clone(), u);
                            index
                        })
                        .collect();
                    assert_eq!(result.expect("upsert"), expected, "step {step}");
                }
            }
            ModelOp::DeleteItem(id) => {
                let expected = model.items.remove(&id).is_some();
                assert_eq!(
                    store.delete_item(&id).await.expect("delete"),
                    expected,
                    "step {step}"
                );
            }
            ModelOp::DeleteUser(id) => {
                let expected = model.users.remove(&id).is_some();
                assert_eq!(
                    store.delete_user(&id).await.expect("delete"),
                    expected,
                    "step {step}"
                );
            }
            ModelOp::PatchItem(id, title) => {
                let expected = model.items.get_mut(&id).map(|it| {
                    it.title.clone_from(&title);
                    it.clone()
                });
                let patch = ItemPatch {
                    title: Some(title),
                    ..ItemPatch::default()
                };
                assert_eq!(
                    store.patch_item(&id, patch).await.expect("patch"),
                    expected,
                    "step {step}"
                );
            }
            ModelOp::Append(pairs) => {
                let events: Vec<Event> = pairs.iter().map(|(u, i)| event(u, i)).collect();
                let mut expected = Vec::new();
                for (u, i) in &pairs {
                    let (user, new_user) = model.user_ids.get_or_insert(u);
                    if new_user {
                        model.users.insert(u.clone(), User::placeholder(u.as_str()));
                    }
                    let (item, new_item) = model.item_ids.get_or_insert(i);
                    if new_item {
                        model
                            .items
                            .insert(i.clone(), Item::placeholder(i.as_str(), T0));
                    }
                    let seq = model.events.len() as u64;
                    let stored = StoredEvent {
                        seq,
                        user,
                        item,
                        ..expected_click()
                    };
                    model.events.push(stored.clone());
                    expected.push(stored);
                }
                assert_eq!(
                    store.append_events(events).await.expect("append"),
                    expected,
                    "step {step}"
                );
            }
        }
        let counts = store.counts().await.expect("counts");
        let expected = StoreCounts {
            items: model.items.len() as u64,
            users: model.users.len() as u64,
            events: model.events.len() as u64,
        };
        assert_eq!(counts, expected, "counts after step {step}");
    }

    assert_eq!(
        all_items(&store).await,
        model.items.values().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        all_users(&store).await,
        model.users.values().cloned().collect::<Vec<_>>()
    );
    for id in model.item_ids.iter().map(|(_, id)| id) {
        assert_eq!(
            store.get_item(id).await.expect("get"),
            model.items.get(id).cloned(),
            "item `{id}`"
        );
    }
    for id in model.user_ids.iter().map(|(_, id)| id) {
        assert_eq!(
            store.get_user(id).await.expect("get"),
            model.users.get(id).cloned(),
            "user `{id}`"
        );
    }
    let maps = store.id_maps().await.expect("id maps");
    assert_eq!(pairs(&maps.items), pairs(&model.item_ids));
    assert_eq!(pairs(&maps.users), pairs(&model.user_ids));
    assert_eq!(all_events(&store).await, model.events);
}

/// A deterministic pseudo-random sequence of [`ModelOp`]s over a few ids, so
/// that the same case can run in every backend's suite without a test-only
/// dependency (property tests feed [`check_against_model`] their own sequences).
pub fn pseudo_random_ops(seed: u64, len: usize) -> Vec<ModelOp> {
    const IDS: [&str; 6] = ["a", "b", "c", "é", "日本", "z9"];
    let mut rng = XorShift(seed | 1);
    (0..len)
        .map(|step| match rng.below(6) {
            0 => ModelOp::UpsertItems(
                (0..1 + rng.below(3))
                    .map(|_| (rng.pick(&IDS), format!("t{step}")))
                    .collect(),
            ),
            1 => ModelOp::DeleteItem(rng.pick(&IDS)),
            2 => ModelOp::UpsertUsers(
                (0..1 + rng.below(3))
                    .map(|_| (rng.pick(&IDS), step as i64))
                    .collect(),
            ),
            3 => ModelOp::DeleteUser(rng.pick(&IDS)),
            4 => ModelOp::PatchItem(rng.pick(&IDS), format!("p{step}")),
            _ => ModelOp::Append(
                (0..1 + rng.below(3))
                    .map(|_| (rng.pick(&IDS), rng.pick(&IDS)))
                    .collect(),
            ),
        })
        .collect()
}

/// xorshift64*: small, fast and good enough to mix operations.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }

    fn pick(&mut self, ids: &[&str]) -> String {
        ids[self.below(ids.len())].to_owned()
    }
}

/// [`check_against_model`] on a fixed pseudo-random sequence.
pub async fn matches_model_on_a_fixed_sequence(store: SharedStore) {
    check_against_model(store, pseudo_random_ops(0x7e9e_5a11, 120)).await;
}
