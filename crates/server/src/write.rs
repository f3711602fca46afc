//! Writes that go to the store and then to the live state, in that order.
//!
//! Three rules keep the live state equal to what a restart would rebuild:
//! 1. the live state changes only after the store acknowledged (made durable) the
//!    write, and before the HTTP answer, so the next request reflects it;
//! 2. a write runs to completion in its own task, even when the client disconnects
//!    or the request times out: a durable write whose live update was dropped
//!    halfway would make memory and disk disagree until the next restart;
//! 3. writes that change the live catalogue (item and user upserts, item patches
//!    and deletes) exclude all other writes for their duration, while event writes
//!    run concurrently with each other (so the store can group their commits).
//!    Without it, an upsert and a delete of the same item, or an event creating an
//!    item and a patch of it, could reach the live state in a different order than
//!    they reached the store.

use std::future::Future;

use tephra_core::{Event, Item, ItemPatch, User, UserPatch};

use crate::cluster::{Change, ReplicatedEvent};

use crate::error::ApiError;
use crate::extract::Batch;
use crate::state::AppState;

/// How a write takes the write gate (rule 3).
#[derive(Clone, Copy)]
pub(crate) enum Gate {
    /// Beside other shared writes: events, and user record changes that the live
    /// state does not see.
    Shared,
    /// Alone: writes that change the live catalogue or id maps.
    Exclusive,
}

impl AppState {
    /// Runs `work` in its own task, holding the write gate, and waits for it; see
    /// rules 2 and 3 above.
    ///
    /// The gate is taken before the task starts, so that once [`crate::serve`]
    /// holds the gate exclusively, no write is running or about to run.
    pub(crate) async fn run_write<T, F>(
        &self,
        gate: Gate,
        work: impl FnOnce(AppState) -> F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let lock = self.write_gate_arc();
        let guard: Box<dyn Send> = match gate {
            Gate::Shared => Box::new(lock.read_owned().await),
            Gate::Exclusive => Box::new(lock.write_owned().await),
        };
        let work = work(self.clone());
        let task = tokio::spawn(async move {
            let result = work.await;
            drop(guard);
            result
        });
        task.await.unwrap_or_else(|err| {
            tracing::error!(error = %err, "a write task failed");
            Err(ApiError::Internal)
        })
    }
}

impl AppState {
    /// Stores items (all or nothing) and puts them in the live catalogue.
    pub(crate) async fn upsert_items(&self, items: Vec<Item>) -> Result<(), ApiError> {
        self.run_write(Gate::Exclusive, |state| async move {
            let indices = state.store().upsert_items(items.clone()).await?;
            {
                let mut live = state.live().write();
                for (item, index) in items.iter().zip(&indices) {
                    live.upsert_item(*index, item);
                }
            }
            state
                .publish(|| Change::Items {
                    items: indices.into_iter().zip(items).collect(),
                })
                .await;
            Ok(())
        })
        .await
    }

    /// Applies a partial update; `None` if the item does not exist.
    pub(crate) async fn patch_item(
        &self,
        id: String,
        patch: ItemPatch,
    ) -> Result<Option<Item>, ApiError> {
        self.run_write(Gate::Exclusive, |state| async move {
            let Some(item) = state.store().patch_item(&id, patch).await? else {
                return Ok(None);
            };
            let index = {
                let mut live = state.live().write();
                let index = live.item_index(&item.id);
                match index {
                    Some(index) => live.upsert_item(index, &item),
                    None => {
                        tracing::warn!(id = %item.id.escape_debug(), "patched item has no live index")
                    }
                }
                index
            };
            if let Some(index) = index {
                let items = vec![(index, item.clone())];
                state.publish(|| Change::Items { items }).await;
            }
            Ok(Some(item))
        })
        .await
    }

    /// Deletes an item; `false` if it did not exist.
    pub(crate) async fn delete_item(&self, id: String) -> Result<bool, ApiError> {
        self.run_write(Gate::Exclusive, |state| async move {
            if !state.store().delete_item(&id).await? {
                return Ok(false);
            }
            let index = {
                let mut live = state.live().write();
                let index = live.item_index(&id);
                if let Some(index) = index {
                    live.delete_item(index);
                }
                index
            };
            if let Some(index) = index {
                state.publish(|| Change::ItemDeleted { index }).await;
            }
            Ok(true)
        })
        .await
    }

    /// Stores users (all or nothing) and registers their indices.
    pub(crate) async fn upsert_users(&self, users: Vec<User>) -> Result<(), ApiError> {
        self.run_write(Gate::Exclusive, |state| async move {
            let indices = state.store().upsert_users(users.clone()).await?;
            {
                let mut live = state.live().write();
                for (user, index) in users.iter().zip(&indices) {
                    live.register_user(&user.id, *index);
                }
            }
            state
                .publish(|| Change::Users {
                    users: indices
                        .into_iter()
                        .zip(users.into_iter().map(|u| u.id))
                        .collect(),
                })
                .await;
            Ok(())
        })
        .await
    }

    /// Applies a partial update; `None` if the user does not exist.
    pub(crate) async fn patch_user(
        &self,
        id: String,
        patch: UserPatch,
    ) -> Result<Option<User>, ApiError> {
        self.run_write(Gate::Shared, |state| async move {
            Ok(state.store().patch_user(&id, patch).await?)
        })
        .await
    }

    /// Deletes a user record (its index and events stay); `false` if absent.
    pub(crate) async fn delete_user(&self, id: String) -> Result<bool, ApiError> {
        self.run_write(Gate::Shared, |state| async move {
            Ok(state.store().delete_user(&id).await?)
        })
        .await
    }

    /// Joins each event that names a remembered response (`request_id`) to
    /// it: the scene (when the event has none), the item's position (when the
    /// event has none) and the attribution (always the server's; a client's
    /// own is dropped).
    fn attribute(&self, events: &mut [Event]) {
        let live = self.live().read();
        for e in events {
            e.attribution = None;
            let Some(request_id) = &e.request_id else {
                continue;
            };
            let item = live.item_index(&e.item_id);
            if let Some((scene, attribution, position)) =
                self.requests().attribute(request_id, &e.user_id, item)
            {
                e.scene.get_or_insert(scene);
                if e.position.is_none() {
                    e.position = position;
                }
                e.attribution = (!attribution.is_empty()).then_some(attribution);
            }
        }
    }

    /// Appends validated events (all or nothing) and applies them to the live
    /// state. When unknown items may not be created, an event naming an item
    /// outside the catalogue fails the batch with 404 and its index.
    pub(crate) async fn append_events(&self, batch: Batch<Event>) -> Result<usize, ApiError> {
        self.run_write(Gate::Shared, |state| async move {
            if !state.config().server.create_unknown_items {
                let live = state.live().read();
                let unknown = batch
                    .items
                    .iter()
                    .position(|e| !live.item_index(&e.item_id).is_some_and(|index| live.has_item(index)));
                if let Some(index) = unknown {
                    return Err(ApiError::NotFound {
                        field: Some(batch.field_path(index, "item_id")),
                        message: format!(
                            "no item has the id `{}`; add it to the catalogue first (server.create_unknown_items is off)",
                            batch.items[index].item_id.escape_debug()
                        ),
                    });
                }
            }
            let mut events = batch.items;
            state.attribute(&mut events);
            let ids: Vec<(String, String)> =
                events.iter().map(|e| (e.user_id.clone(), e.item_id.clone())).collect();
            let stored = state.store().append_events(events).await?;
            let replicated: Vec<ReplicatedEvent> = ids
                .iter()
                .zip(&stored)
                .map(|((user_id, item_id), event)| ReplicatedEvent::new(user_id, item_id, event))
                .collect();
            state.apply_events(&replicated);
            state
                .publish(|| Change::Events { events: replicated })
                .await;
            Ok(stored.len())
        })
        .await
    }
}
