//! What every request handler shares: configuration, the store, the live state.
//!
//! The store is the system of record; the live state is a rebuilt-at-startup
//! in-memory view that recommendations are answered from. [`AppState::open`]
//! replays the store into a fresh live state, and every write path (see
//! `write.rs`) updates the live state only after the store acknowledged the write.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use tephra_store::{IdMaps, SharedStore};

use crate::analytics::{Analytics, RequestLog, Roles};
use crate::config::Config;
use crate::error::ServerError;
use crate::experiments::{self, Experiment, Experiments, Loaded, Status};
use crate::live::LiveState;
use crate::model_manager::{Holdout, ModelManager, ModelRecipe};
use crate::pipeline::session::Sessions;

/// Page size when reading the catalogue at startup.
const LOAD_ITEMS_PAGE: usize = 1000;
/// Page size when replaying the event log at startup.
const LOAD_EVENTS_PAGE: usize = 10_000;

/// Where the promoted model of `tenant` is saved:
/// `<data_dir>/tenants/<tenant>/models/current.tephra`, beside its store, so
/// that deleting a tenant's directory deletes its models too.
pub fn snapshot_path(config: &Config, tenant: &str) -> PathBuf {
    config
        .data_dir
        .join("tenants")
        .join(tenant)
        .join("models")
        .join("current.tephra")
}

/// Shared state of one running API: cheap to clone (every field is shared).
#[derive(Clone)]
pub struct AppState {
    tenant: Arc<str>,
    config: Arc<Config>,
    store: SharedStore,
    live: Arc<RwLock<LiveState>>,
    /// Orders catalogue writes against event writes; see `write.rs`.
    write_gate: Arc<tokio::sync::RwLock<()>>,
    ready: Arc<AtomicBool>,
    models: Arc<ModelManager>,
    sessions: Arc<Sessions>,
    analytics: Arc<parking_lot::Mutex<Analytics>>,
    requests: Arc<RequestLog>,
    experiments: Arc<Experiments>,
    /// Events applied to the live state (each exactly once).
    applied: Arc<parking_lot::Mutex<crate::cluster::AppliedSeqs>>,
    /// The other nodes, when this one is part of a cluster.
    cluster: Option<Arc<crate::cluster::ClusterLink>>,
}

impl AppState {
    /// Validates the configuration and rebuilds the live state from `store`: id
    /// maps, the whole catalogue, then the whole event log in order.
    ///
    /// The returned state is ready to serve; this may take a while on a large log,
    /// which is logged with counts and duration.
    pub async fn open(config: Config, store: SharedStore) -> Result<AppState, ServerError> {
        Self::open_tenant(config, store, tephra_store::DEFAULT_TENANT).await
    }

    /// [`AppState::open`] for the tenant named `tenant` (whose model snapshot
    /// lives in its own directory).
    pub async fn open_tenant(
        config: Config,
        store: SharedStore,
        tenant: &str,
    ) -> Result<AppState, ServerError> {
        config.validate().map_err(ServerError::Config)?;
        let started = Instant::now();
        let maps = store.id_maps().await?;
        let mut live = LiveState::new(
            config.events.clone(),
            config.recommend.trending_half_life_hours,
        );
        // A copy for resolving ids while `live` is mutably borrowed.
        let ids: IdMaps = maps.clone();
        live.set_id_maps(maps);

        let mut items = 0u64;
        let mut after: Option<String> = None;
        loop {
            let page = store.list_items(after.as_deref(), LOAD_ITEMS_PAGE).await?;
            for item in &page {
                let index = ids.items.get(&item.id).ok_or_else(|| {
                    ServerError::Inconsistent(format!(
                        "item `{}` has no index in the id map",
                        item.id.escape_debug()
                    ))
                })?;
                live.upsert_item(index, item);
            }
            items += page.len() as u64;
            match page.last() {
                Some(last) if page.len() == LOAD_ITEMS_PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }

        let mut analytics = Analytics::new(
            Roles::from_settings(config.events.clone(), &config.analytics)
                .with_scenes(config.scenes.keys()),
        );
        let mut events = 0u64;
        let mut next_seq = 0;
        loop {
            let page = store.scan_events(next_seq, LOAD_EVENTS_PAGE).await?;
            for event in &page {
                let (Some(user_id), Some(item_id)) =
                    (ids.users.id(event.user), ids.items.id(event.item))
                else {
                    return Err(ServerError::Inconsistent(format!(
                        "event {} names user index {} or item index {} that has no id",
                        event.seq, event.user, event.item
                    )));
                };
                live.apply_event(user_id, item_id, event);
                analytics.apply(event);
            }
            events += page.len() as u64;
            match page.last() {
                Some(last) => next_seq = last.seq + 1,
                None => break,
            }
            if page.len() < LOAD_EVENTS_PAGE {
                break;
            }
        }

        tracing::info!(
            tenant,
            items,
            users = ids.users.len(),
            events,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "live state loaded from the store"
        );
        let models = ModelManager::with_snapshot(snapshot_path(&config, tenant))
            .with_retrieval(config.retrieval);
        models.load_history();
        match models.load_snapshot(&live) {
            Ok(true) => tracing::info!("model loaded from its snapshot"),
            Ok(false) => {}
            Err(error) => tracing::warn!(
                %error,
                "the saved model is not served; recommendations use the fallback chain \
                 until the next training run"
            ),
        }
        let experiments = Experiments::default();
        for (name, doc) in store.experiments().await? {
            experiments.insert(load_experiment(&config, &name, doc)?);
        }
        let requests = RequestLog::new(
            config.analytics.max_tracked_requests,
            std::time::Duration::from_secs_f64(config.analytics.attribution_window_hours * 3600.0),
        );
        Ok(AppState {
            tenant: Arc::from(tenant),
            analytics: Arc::new(parking_lot::Mutex::new(analytics)),
            requests: Arc::new(requests),
            experiments: Arc::new(experiments),
            config: Arc::new(config),
            store,
            live: Arc::new(RwLock::new(live)),
            write_gate: Arc::new(tokio::sync::RwLock::new(())),
            ready: Arc::new(AtomicBool::new(true)),
            models: Arc::new(models),
            sessions: Arc::new(Sessions::default()),
            applied: Arc::new(parking_lot::Mutex::new(crate::cluster::AppliedSeqs::up_to(
                next_seq,
            ))),
            cluster: None,
        })
    }

    /// This state as a node of a cluster: its writes are told to the other
    /// nodes, and theirs applied here (see [`crate::cluster`]).
    pub fn with_cluster(mut self, link: Arc<crate::cluster::ClusterLink>) -> Self {
        self.cluster = Some(link);
        self
    }

    /// The cluster this node is part of, if any.
    pub(crate) fn cluster(&self) -> Option<&Arc<crate::cluster::ClusterLink>> {
        self.cluster.as_ref()
    }

    /// The events applied to the live state.
    pub(crate) fn applied(&self) -> &parking_lot::Mutex<crate::cluster::AppliedSeqs> {
        &self.applied
    }

    /// Reads the experiments from the store again (another node changed them).
    pub(crate) async fn reload_experiments(&self) -> Result<(), ServerError> {
        let mut loaded = Vec::new();
        for (name, doc) in self.store.experiments().await? {
            loaded.push(load_experiment(&self.config, &name, doc)?);
        }
        self.experiments.replace_all(loaded);
        Ok(())
    }

    /// The tenant whose data this state serves.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store behind this API.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Whether the state is loaded and the server is not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks the server as shutting down, so that `/readyz` turns load balancers away.
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Release);
    }

    pub(crate) fn live(&self) -> &RwLock<LiveState> {
        &self.live
    }

    /// Open pagination sessions.
    pub(crate) fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The promoted model and its training.
    pub fn models(&self) -> &ModelManager {
        &self.models
    }

    /// Runs one training run (see [`ModelManager::train`]) with the configured
    /// recipe on a blocking thread, off the async runtime.
    pub async fn train_now(
        &self,
    ) -> Result<crate::model_manager::TrainOutcome, crate::model_manager::TrainError> {
        let state = self.clone();
        let settings = self.config.training.clone();
        let n_items = self.live.read().n_items();
        let recipe = ModelRecipe::from_settings(&settings, n_items)?;
        tokio::task::spawn_blocking(move || {
            state
                .models
                .train(&state.live, recipe, Holdout::from_settings(&settings))
        })
        .await
        .map_err(|e| crate::model_manager::TrainError(format!("the training thread failed: {e}")))?
    }

    /// The analytics aggregates.
    pub(crate) fn analytics(&self) -> &parking_lot::Mutex<Analytics> {
        &self.analytics
    }

    /// Recommendation responses remembered for attribution.
    pub(crate) fn requests(&self) -> &RequestLog {
        &self.requests
    }

    /// The experiments.
    pub(crate) fn experiments(&self) -> &Experiments {
        &self.experiments
    }

    /// Positive events applied to the live state so far.
    pub(crate) fn positive_event_count(&self) -> u64 {
        self.live.read().positive_event_count()
    }

    pub(crate) fn write_gate_arc(&self) -> Arc<tokio::sync::RwLock<()>> {
        Arc::clone(&self.write_gate)
    }

    /// Waits until no write is running; writes started later are not waited for.
    pub(crate) async fn writes_finished(&self) {
        drop(self.write_gate.write().await);
    }
}

/// An experiment read back from the store, with its variants' scenes resolved
/// against the current configuration. One whose scene or overrides no longer
/// fit the configuration is kept (its results stay readable) but stopped, with
/// a warning, rather than failing the start.
fn load_experiment(
    config: &Config,
    name: &str,
    doc: serde_json::Value,
) -> Result<Loaded, ServerError> {
    let mut experiment: Experiment = serde_json::from_value(doc).map_err(|e| {
        ServerError::Inconsistent(format!(
            "experiment `{}` cannot be read: {e}",
            name.escape_debug()
        ))
    })?;
    let scenes = config
        .scenes
        .get(&experiment.scene)
        .map(|base| experiments::variant_scenes(base, &experiment.variants));
    let scenes = match scenes {
        Some(Ok(scenes)) => scenes,
        other => {
            let why = match other {
                Some(Err(e)) => format!("{}: {}", e.field, e.message),
                _ => format!("scene `{}` is not configured", experiment.scene),
            };
            if experiment.status == Status::Running {
                tracing::warn!(experiment = %name, %why, "experiment stopped: it no longer fits the configuration");
                experiment.status = Status::Stopped;
            }
            Vec::new()
        }
    };
    Ok(Loaded { experiment, scenes })
}
