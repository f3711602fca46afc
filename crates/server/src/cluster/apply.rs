//! Applying other nodes' changes to this node's live state, catching up from
//! the store's log, and exchanging promoted models.

use std::sync::Arc;
use std::time::Duration;

use tephra_core::EventKind;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Change, ClusterLink, ReplicatedEvent, CATCH_UP_EVERY};
use crate::state::AppState;
use crate::write::Gate;

/// Most events read from the log per catch-up step.
const CATCH_UP_PAGE: usize = 10_000;

impl AppState {
    /// Applies stored events to the live state, analytics and folded-in
    /// vectors, each at most once (see [`super::AppliedSeqs`]); returns how
    /// many were new. Every path that brings events to the live state (this
    /// node's writes, other nodes' changes, catching up) goes through here.
    pub(crate) fn apply_events(&self, events: &[ReplicatedEvent]) -> usize {
        let mut applied = self.applied().lock();
        let fresh: Vec<&ReplicatedEvent> = events
            .iter()
            .filter(|e| applied.insert(e.event.seq))
            .collect();
        if fresh.is_empty() {
            return 0;
        }
        let stored: Vec<_> = fresh.iter().map(|e| e.event.clone()).collect();
        {
            let mut live = self.live().write();
            for (event, stored) in fresh.iter().zip(&stored) {
                live.apply_event(&event.user_id, &event.item_id, stored);
            }
        }
        {
            let mut analytics = self.analytics().lock();
            for event in &stored {
                analytics.apply(event);
            }
        }
        drop(applied);
        // Items created since the model was trained get a vector once a few
        // users the model knows interacted with them.
        if let Some(promoted) = self.models().current() {
            let types = &self.config().events;
            for event in &stored {
                if promoted.folds_in(event.item)
                    && types.classify(&event.event_type) == Some(EventKind::Positive)
                {
                    promoted.observe_new_item(event.item, event.user);
                }
            }
        }
        stored.len()
    }

    /// Tells the other nodes about a change, when in a cluster.
    pub(crate) async fn publish(&self, change: impl FnOnce() -> Change) {
        if let Some(link) = self.cluster() {
            link.publish(self.tenant(), change()).await;
        }
    }

    /// Applies a change another node made.
    async fn apply_change(&self, change: Change) {
        let applied = match change {
            Change::Events { events } => {
                self.apply_events(&events);
                Ok(())
            }
            Change::Items { items } => {
                self.run_write(Gate::Exclusive, |state| async move {
                    let mut live = state.live().write();
                    for (index, item) in &items {
                        live.upsert_item(*index, item);
                    }
                    Ok(())
                })
                .await
            }
            Change::ItemDeleted { index } => {
                self.run_write(Gate::Exclusive, |state| async move {
                    state.live().write().delete_item(index);
                    Ok(())
                })
                .await
            }
            Change::Users { users } => {
                self.run_write(Gate::Exclusive, |state| async move {
                    let mut live = state.live().write();
                    for (index, id) in &users {
                        live.register_user(id, *index);
                    }
                    Ok(())
                })
                .await
            }
            Change::Experiments => self.reload_experiments().await.map_err(|e| {
                tracing::warn!(error = %e, tenant = self.tenant(), "cannot reload the experiments");
                crate::error::ApiError::Internal
            }),
        };
        if applied.is_err() {
            tracing::warn!(
                tenant = self.tenant(),
                "a change from another node was not applied"
            );
        }
    }
}

/// Applies the events of the store's log this node has not seen (changes it
/// missed); returns how many.
pub(crate) async fn catch_up(state: &AppState) -> Result<usize, crate::error::ApiError> {
    let mut total = 0;
    let mut previous = None;
    loop {
        let (from, end) = {
            let applied = state.applied().lock();
            (applied.watermark(), applied.end())
        };
        // An event that cannot be applied (an index without an id) keeps the
        // watermark in place: stop rather than read the same page forever.
        if previous == Some(from) {
            return Ok(total);
        }
        previous = Some(from);
        let next = state.store().counts().await?.events;
        if from >= next {
            return Ok(total);
        }
        let page = state.store().scan_events(from, CATCH_UP_PAGE).await?;
        if page.is_empty() {
            return Ok(total);
        }
        let mut missing: Vec<_> = {
            let applied = state.applied().lock();
            page.iter()
                .filter(|e| !applied.contains(e.seq))
                .cloned()
                .collect()
        };
        let mut events = Vec::with_capacity(missing.len());
        let mut maps = None;
        for event in missing.drain(..) {
            let known = {
                let live = state.live().read();
                (
                    live.user_id(event.user).map(str::to_owned),
                    live.item_id(event.item).map(str::to_owned),
                )
            };
            let (user_id, item_id) = match known {
                (Some(u), Some(i)) => (u, i),
                _ => {
                    if maps.is_none() {
                        maps = Some(state.store().id_maps().await?);
                    }
                    let ids = maps.as_ref().expect("loaded above");
                    match (ids.users.id(event.user), ids.items.id(event.item)) {
                        (Some(u), Some(i)) => (u.to_owned(), i.to_owned()),
                        _ => {
                            tracing::error!(
                                seq = event.seq,
                                "an event of the log names an index without an id"
                            );
                            continue;
                        }
                    }
                }
            };
            events.push(ReplicatedEvent::new(&user_id, &item_id, &event));
        }
        total += state.apply_events(&events);
        let last = page.last().map_or(from, |e| e.seq + 1);
        if last >= end && page.len() < CATCH_UP_PAGE {
            return Ok(total);
        }
    }
}

/// Starts a tenant's cluster tasks: following the other nodes' changes from
/// stream entry `from`, and catching up from the store's log every
/// [`CATCH_UP_EVERY`].
pub(crate) fn start_tasks(
    link: &Arc<ClusterLink>,
    state: &AppState,
    from: String,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let follower = {
        let state = state.clone();
        let link = Arc::clone(link);
        let tenant = state.tenant().to_owned();
        tokio::spawn(link.follow(tenant, from, stop.clone(), move |change| {
            let state = state.clone();
            async move { state.apply_change(change).await }
        }))
    };
    let catching_up = {
        let state = state.clone();
        let mut stop = stop;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(CATCH_UP_EVERY) => {}
                }
                match catch_up(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        tenant = state.tenant(),
                        events = n,
                        "caught up with events missed from the change stream"
                    ),
                    Err(error) => {
                        tracing::warn!(%error, tenant = state.tenant(), "catching up from the store failed")
                    }
                }
            }
        })
    };
    vec![follower, catching_up]
}

/// After this node promoted a model of `state`'s tenant: saves its snapshot
/// where every node can load it and announces it.
pub(crate) async fn announce_promoted(state: &AppState) {
    let Some(link) = state.cluster() else { return };
    let Some(current) = state.models().current() else {
        return;
    };
    let version = current.info.trained_at.millis().to_string();
    let Some(path) = state.models().snapshot_path().map(ToOwned::to_owned) else {
        return;
    };
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%error, "cannot read the new model's snapshot to share it");
            return;
        }
    };
    if let Err(error) = link.models().put(state.tenant(), &version, bytes).await {
        tracing::warn!(%error, tenant = state.tenant(), "cannot share the new model");
        return;
    }
    link.announce_model(state.tenant(), &version).await;
    tracing::info!(tenant = state.tenant(), %version, "new model shared with the other nodes");
}

/// Loads the model another node promoted for `state`'s tenant, unless this
/// node already serves it.
pub(crate) async fn load_shared_model(state: &AppState) -> Result<bool, String> {
    let Some(link) = state.cluster() else {
        return Ok(false);
    };
    let served = state
        .models()
        .current()
        .map(|c| c.info.trained_at.millis().to_string());
    let latest = link.models().version(state.tenant()).await?;
    if latest.is_none() || latest == served {
        return Ok(false);
    }
    let Some((version, bytes)) = link.models().get(state.tenant()).await? else {
        return Ok(false);
    };
    let Some(path) = state.models().snapshot_path().map(ToOwned::to_owned) else {
        return Ok(false);
    };
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let partial = path.with_extension("incoming");
    tokio::fs::write(&partial, &bytes)
        .await
        .map_err(|e| format!("writing {}: {e}", partial.display()))?;
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(|e| format!("renaming {}: {e}", partial.display()))?;
    let state2 = state.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let live = state2.live().read();
        state2.models().load_snapshot(&live)
    })
    .await
    .map_err(|e| format!("the loading thread failed: {e}"))?
    .map_err(|e| e.to_string())?;
    if loaded {
        tracing::info!(tenant = state.tenant(), %version, "loaded the model another node promoted");
    }
    Ok(loaded)
}

/// Waits `delay` unless `stop` turns true first; `false` when stopping.
pub(crate) async fn pause(stop: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::select! {
        _ = stop.changed() => false,
        () = tokio::time::sleep(delay) => !*stop.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tephra_store::{MemoryStore, Store};

    fn click(user: &str, item: &str) -> tephra_core::Event {
        serde_json::from_value(
            serde_json::json!({"user_id": user, "item_id": item, "type": "click"}),
        )
        .expect("an event")
    }

    #[tokio::test]
    async fn catch_up_applies_what_another_node_stored_once() {
        let store = Arc::new(MemoryStore::new());
        let mut config = crate::Config::default();
        config.training.enabled = false;
        let state = AppState::open(config, store.clone()).await.unwrap();
        // Another node wrote these; this node never heard of them.
        let stored = store
            .append_events(vec![click("u", "a"), click("u", "b"), click("v", "a")])
            .await
            .unwrap();
        assert_eq!(catch_up(&state).await.unwrap(), 3);
        assert_eq!(catch_up(&state).await.unwrap(), 0, "nothing twice");
        {
            let live = state.live().read();
            assert_eq!(live.user_id(stored[2].user), Some("v"));
            assert_eq!(live.item_id(stored[1].item), Some("b"));
        }
        // The same events arriving from the change stream change nothing.
        let replicated: Vec<_> = stored
            .iter()
            .zip([("u", "a"), ("u", "b"), ("v", "a")])
            .map(|(e, (u, i))| ReplicatedEvent::new(u, i, e))
            .collect();
        assert_eq!(state.apply_events(&replicated), 0);
        assert_eq!(state.positive_event_count(), 3);
    }
}
