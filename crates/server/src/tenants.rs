//! Every tenant of one process, and who may reach which.
//!
//! A tenant is a whole [`AppState`] (store, live state, models, analytics,
//! experiments) with its own routes and background loops; nothing is shared
//! between two tenants but the process. [`Tenants`] holds them all, keeps the
//! [`Registry`](tephra_store::Registry) of tenants and keys in memory for a
//! lookup-free key check, and creates and deletes tenants at run time.
//!
//! A request reaches a tenant only through [`Tenants::authenticate`]: the key
//! decides the tenant, so a key of tenant A cannot even name tenant B's data;
//! B's ids simply do not exist in A's store.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::Router;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tephra_core::{Timestamp, ValidationError};
use tephra_store::registry::validate_tenant_name;
use tephra_store::{
    KeyRecord, RateLimit, Registry, SharedRegistry, StoreCounts, TenantRecord, TenantStores,
    DEFAULT_TENANT,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::cluster::ClusterLink;
use crate::config::Config;
use crate::error::{ApiError, ServerError};
use crate::keys::{self, Scope};
use crate::limits::{Admission, RateLimiter};
use crate::state::AppState;

/// How often a cluster node re-reads the registry, in case it missed an
/// announcement of a change.
const REGISTRY_CHECK: Duration = Duration::from_secs(5);

/// Header naming the tenant a request with the admin key is meant for.
pub const TENANT_HEADER: &str = "x-tephra-tenant";

/// One open tenant.
pub(crate) struct Tenant {
    record: TenantRecord,
    state: AppState,
    routes: Router,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Tenant {
    /// Its `/v1` routes.
    pub(crate) fn routes(&self) -> Router {
        self.routes.clone()
    }

    /// Stops its background loops and waits for them and for its writes.
    async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
        self.state.writes_finished().await;
    }
}

/// Who a request is, once its key is checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Access {
    /// The tenant the request reaches.
    pub tenant: String,
    /// What it may do there.
    pub scopes: Vec<Scope>,
    /// Its rate-limit bucket and limit, if limited.
    pub bucket: Option<(String, RateLimit)>,
}

/// A tenant as the admin API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantInfo {
    /// Its name.
    pub name: String,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Its own settings, merged over the server's.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Items in its catalogue.
    pub items: u64,
    /// Its users.
    pub users: u64,
    /// Events in its log.
    pub events: u64,
}

/// A key as the admin API shows it: never with its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyInfo {
    /// Public identifier (also the part after `tph_` in the key).
    pub id: String,
    /// The tenant it reaches.
    pub tenant: String,
    /// A label for people.
    pub label: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When its secret was last replaced.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub rotated_at: Option<Timestamp>,
    /// When it was revoked; revoked keys authorize nothing.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    /// Its own rate limit (`null`: the server's default).
    pub rate_limit: Option<KeyRateLimit>,
}

/// A key's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRateLimit {
    /// Sustained requests per second (0: unlimited).
    pub per_second: f64,
    /// Requests allowed at once after a quiet period (at least 1).
    pub burst: u32,
}

impl From<&KeyRecord> for KeyInfo {
    fn from(key: &KeyRecord) -> Self {
        KeyInfo {
            id: key.id.clone(),
            tenant: key.tenant.clone(),
            label: key.label.clone(),
            scopes: key.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            created_at: key.created_at,
            rotated_at: key.rotated_at,
            revoked_at: key.revoked_at,
            rate_limit: key.rate_limit.map(|r| KeyRateLimit {
                per_second: r.per_second,
                burst: r.burst,
            }),
        }
    }
}

/// What a new or rotated key is: its record and, this once, the key itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedKey {
    /// The key to send as `Authorization: Bearer <key>`. Shown only now: the
    /// server keeps a hash of it.
    pub key: String,
    /// The key's record.
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// Every tenant of the process; cheap to clone.
#[derive(Clone)]
pub struct Tenants {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    registry: SharedRegistry,
    stores: Arc<dyn TenantStores>,
    open: RwLock<BTreeMap<String, Arc<Tenant>>>,
    keys: RwLock<HashMap<String, KeyRecord>>,
    limiter: RateLimiter,
    admission: Admission,
    ready: AtomicBool,
    /// Serializes changes of tenants and keys, so that the registry and the
    /// in-memory copies change in the same order.
    changes: tokio::sync::Mutex<()>,
    /// The other nodes, in cluster mode.
    cluster: Option<Arc<ClusterLink>>,
    /// Stops the process-wide background tasks.
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Tenants {
    /// Registers the `default` tenant if needed, then opens every registered
    /// tenant (its settings merged over `config`) and starts its background
    /// loops.
    pub async fn open(
        config: Config,
        registry: SharedRegistry,
        stores: Arc<dyn TenantStores>,
    ) -> Result<Tenants, ServerError> {
        Self::open_with(config, registry, stores, None).await
    }

    /// [`Tenants::open`] as a node of a cluster: every tenant's writes are
    /// told to the other nodes through `cluster`, and theirs applied here.
    pub async fn open_with(
        config: Config,
        registry: SharedRegistry,
        stores: Arc<dyn TenantStores>,
        cluster: Option<Arc<ClusterLink>>,
    ) -> Result<Tenants, ServerError> {
        config.validate().map_err(ServerError::Config)?;
        // Install the metrics recorder before the first request is counted.
        crate::metrics::prometheus_handle();
        registry
            .create_tenant(TenantRecord {
                name: DEFAULT_TENANT.to_owned(),
                created_at: Timestamp::now(),
                settings: serde_json::Value::Null,
            })
            .await?;
        let admission = Admission::new(
            config.server.max_concurrent_heavy,
            Duration::from_millis(config.server.admission_wait_ms),
        );
        let tenants = Tenants {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                registry: Arc::clone(&registry),
                stores,
                open: RwLock::new(BTreeMap::new()),
                keys: RwLock::new(HashMap::new()),
                limiter: RateLimiter::default(),
                admission,
                ready: AtomicBool::new(true),
                changes: tokio::sync::Mutex::new(()),
                cluster,
                stop: watch::channel(false).0,
                tasks: Mutex::new(Vec::new()),
            }),
        };
        for record in registry.tenants().await? {
            let config = tenants
                .inner
                .config
                .for_tenant(&record.settings)
                .map_err(ServerError::Config)?;
            let opened = tenants.open_state(&record.name, config).await?;
            tenants.insert(record, opened);
        }
        tenants.follow_models();
        *tenants.inner.keys.write() = registry
            .keys()
            .await?
            .into_iter()
            .map(|k| (k.id.clone(), k))
            .collect();
        Ok(tenants)
    }

    /// The embedded setup: the registry and every tenant's store in
    /// `config.data_dir`.
    pub async fn open_embedded(config: Config) -> Result<Tenants, ServerError> {
        let registry = tephra_store::registry::EmbeddedRegistry::open(&config.data_dir)?;
        let stores = tephra_store::registry::EmbeddedTenantStores::new(
            &config.data_dir,
            config.storage.store_options(),
        );
        Self::open(config, Arc::new(registry), Arc::new(stores)).await
    }

    /// One already-open state as the `default` tenant, with an in-memory
    /// registry: for tools that build their own state (tenants created at run
    /// time live in memory).
    pub async fn single(state: AppState) -> Result<Tenants, ServerError> {
        let stores = tephra_store::registry::MemoryTenantStores::default();
        let registry = Arc::new(tephra_store::registry::MemoryRegistry::new());
        let config = state.config().clone();
        let tenants = Tenants::open(config, registry.clone(), Arc::new(stores)).await?;
        // Replace the empty default tenant `open` made with the given state.
        let record = registry
            .tenants()
            .await?
            .into_iter()
            .find(|t| t.name == DEFAULT_TENANT)
            .ok_or_else(|| ServerError::Inconsistent("no default tenant".into()))?;
        let empty = tenants.inner.open.write().remove(DEFAULT_TENANT);
        if let Some(empty) = empty {
            empty.stop().await;
        }
        tenants.insert(record, (state, None));
        Ok(tenants)
    }

    /// Opens tenant `name`'s store and state; in a cluster, also the position
    /// in its change stream to follow from (read before loading, so that no
    /// change made meanwhile is missed) and the newest shared model.
    async fn open_state(
        &self,
        name: &str,
        config: Config,
    ) -> Result<(AppState, Option<String>), ServerError> {
        let tip = match &self.inner.cluster {
            Some(link) => Some(
                link.stream_tip(name)
                    .await
                    .map_err(|e| ServerError::Inconsistent(format!("the cache: {e}")))?,
            ),
            None => None,
        };
        let store = self.inner.stores.open(name).await?;
        let mut state = AppState::open_tenant(config, store, name).await?;
        if let Some(link) = &self.inner.cluster {
            state = state.with_cluster(Arc::clone(link));
            if let Err(error) = crate::cluster::load_shared_model(&state).await {
                tracing::warn!(%error, tenant = name, "cannot load the shared model");
            }
        }
        Ok((state, tip))
    }

    /// In a cluster: loads every model another node announces, and follows
    /// changes of tenants and keys made on other nodes (announced, and checked
    /// every few seconds in case an announcement was missed).
    fn follow_models(&self) {
        let Some(link) = &self.inner.cluster else {
            return;
        };
        let tenants = self.clone();
        let task = tokio::spawn(Arc::clone(link).follow_announcements(
            self.inner.stop.subscribe(),
            move |heard| {
                let tenants = tenants.clone();
                async move {
                    match heard {
                        crate::cluster::Heard::Model { tenant, version } => {
                            let Some(state) = tenants.state(&tenant) else { return };
                            if let Err(error) = crate::cluster::load_shared_model(&state).await {
                                tracing::warn!(%error, tenant, version, "cannot load an announced model");
                            }
                        }
                        crate::cluster::Heard::Registry => tenants.sync_registry().await,
                    }
                }
            },
        ));
        let tenants = self.clone();
        let mut stop = self.inner.stop.subscribe();
        let polling = tokio::spawn(async move {
            while crate::cluster::pause(&mut stop, REGISTRY_CHECK).await {
                tenants.sync_registry().await;
            }
        });
        self.inner.tasks.lock().extend([task, polling]);
    }

    /// Brings tenants and keys in line with the registry (another node
    /// changed them): opens new tenants, closes deleted ones, reloads keys.
    pub(crate) async fn sync_registry(&self) {
        let _changing = self.inner.changes.lock().await;
        let (records, keys) = match (
            self.inner.registry.tenants().await,
            self.inner.registry.keys().await,
        ) {
            (Ok(records), Ok(keys)) => (records, keys),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot read the registry of tenants");
                return;
            }
        };
        *self.inner.keys.write() = keys.into_iter().map(|k| (k.id.clone(), k)).collect();
        let open: Vec<String> = self.inner.open.read().keys().cloned().collect();
        for name in &open {
            if records.iter().all(|r| &r.name != name) {
                let gone = self.inner.open.write().remove(name);
                if let Some(tenant) = gone {
                    tenant.state.set_not_ready();
                    tenant.stop().await;
                    tracing::info!(tenant = name, "tenant deleted on another node");
                }
            }
        }
        for record in records {
            if open.contains(&record.name) {
                continue;
            }
            let opened = match self.inner.config.for_tenant(&record.settings) {
                Ok(config) => self.open_state(&record.name, config).await,
                Err(e) => Err(ServerError::Config(e)),
            };
            match opened {
                Ok(opened) => {
                    tracing::info!(tenant = record.name, "tenant created on another node");
                    self.insert(record, opened);
                }
                Err(error) => {
                    tracing::warn!(%error, tenant = record.name, "cannot open a tenant created on another node")
                }
            }
        }
    }

    /// Tells the other nodes that tenants or keys changed.
    async fn announce_registry(&self) {
        if let Some(link) = &self.inner.cluster {
            link.announce_registry().await;
        }
    }

    /// The cluster this node is part of, if any.
    pub(crate) fn cluster(&self) -> Option<&Arc<ClusterLink>> {
        self.inner.cluster.as_ref()
    }

    /// Adds an opened tenant and starts its background loops (and, in a
    /// cluster, following the other nodes' changes from `from`).
    fn insert(&self, record: TenantRecord, (state, from): (AppState, Option<String>)) {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = crate::serve::start_background(&state, stopped.clone());
        if let (Some(link), Some(from)) = (&self.inner.cluster, from) {
            tasks.extend(crate::cluster::start_tasks(link, &state, from, stopped));
        }
        let tenant = Tenant {
            routes: crate::router::tenant_routes(state.clone()),
            record: record.clone(),
            state,
            stop,
            tasks: Mutex::new(tasks),
        };
        self.inner
            .open
            .write()
            .insert(record.name, Arc::new(tenant));
    }

    /// The process-wide configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The open tenant named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Tenant>> {
        self.inner.open.read().get(name).cloned()
    }

    /// The state of the `default` tenant (the one-tenant setup's only one).
    pub fn default_state(&self) -> AppState {
        self.state(DEFAULT_TENANT)
            .expect("the default tenant is always open")
    }

    /// The state of tenant `name`, if open.
    pub fn state(&self, name: &str) -> Option<AppState> {
        self.get(name).map(|t| t.state.clone())
    }

    /// Every open tenant's state, in name order.
    pub fn states(&self) -> Vec<AppState> {
        self.inner
            .open
            .read()
            .values()
            .map(|t| t.state.clone())
            .collect()
    }

    /// Limits and admission control.
    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// Admission control of heavy routes.
    pub(crate) fn admission(&self) -> &Admission {
        &self.inner.admission
    }

    /// Whether the process serves (not shutting down).
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Marks the process and every tenant as shutting down.
    pub fn set_not_ready(&self) {
        self.inner.ready.store(false, Ordering::Release);
        for state in self.states() {
            state.set_not_ready();
        }
    }

    /// Stops every tenant's background loops and waits for their writes.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let tasks = std::mem::take(&mut *self.inner.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
        let open: Vec<Arc<Tenant>> = self.inner.open.read().values().cloned().collect();
        for tenant in open {
            tenant.stop().await;
        }
    }

    /// Whether requests need a key: when any key is configured.
    fn keys_required(&self) -> bool {
        let server = &self.inner.config.server;
        server.api_key.is_some() || server.admin_key.is_some()
    }

    /// The server's default rate limit.
    fn default_limit(&self) -> RateLimit {
        RateLimit {
            per_second: self.inner.config.server.rate_limit_per_sec,
            burst: self.inner.config.server.rate_limit_burst,
        }
    }

    /// Checks the key of a `/v1` request and says which tenant it reaches with
    /// which scopes.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Access, ApiError> {
        let server = &self.inner.config.server;
        let named = tenant_header(headers)?;
        let everything = Scope::ALL.to_vec();
        let Some(token) = bearer(headers) else {
            if self.keys_required() {
                return Err(ApiError::Unauthorized);
            }
            return Ok(Access {
                tenant: named.unwrap_or(DEFAULT_TENANT).to_owned(),
                scopes: everything,
                bucket: None,
            });
        };
        let only = |tenant: &str| {
            match named {
            Some(other) if other != tenant => Err(ApiError::Forbidden(format!(
                "this key belongs to another tenant than `{}`; drop the {TENANT_HEADER} header or use that tenant's key",
                other.escape_debug()
            ))),
            _ => Ok(()),
        }
        };
        if server
            .admin_key
            .as_deref()
            .is_some_and(|k| keys::secrets_equal(token, k))
        {
            return Ok(Access {
                tenant: named.unwrap_or(DEFAULT_TENANT).to_owned(),
                scopes: everything,
                bucket: None,
            });
        }
        if server
            .api_key
            .as_deref()
            .is_some_and(|k| keys::secrets_equal(token, k))
        {
            only(DEFAULT_TENANT)?;
            return Ok(Access {
                tenant: DEFAULT_TENANT.to_owned(),
                scopes: everything,
                bucket: Some(("server.api_key".to_owned(), self.default_limit())),
            });
        }
        let record = keys::key_id(token).and_then(|id| self.inner.keys.read().get(id).cloned());
        match record {
            Some(key) if keys::key_matches(token, &key.secret_hash) => {
                if key.revoked_at.is_some() {
                    return Err(ApiError::InvalidKey(
                        "this API key was revoked; ask the operator for a new one".into(),
                    ));
                }
                only(&key.tenant)?;
                let limit = key.rate_limit.unwrap_or_else(|| self.default_limit());
                Ok(Access {
                    scopes: key.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                    tenant: key.tenant,
                    bucket: Some((key.id, limit)),
                })
            }
            _ => Err(ApiError::InvalidKey(
                "the API key is not valid (mistyped, rotated or deleted)".into(),
            )),
        }
    }

    /// Checks that a request to `/admin` carries the admin key.
    pub(crate) fn authenticate_operator(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(admin) = self.inner.config.server.admin_key.as_deref() else {
            return Err(ApiError::Forbidden(
                "the admin API is disabled; set server.admin_key (TEPHRA_SERVER__ADMIN_KEY) to use it"
                    .into(),
            ));
        };
        match bearer(headers) {
            None => Err(ApiError::Unauthorized),
            Some(token) if keys::secrets_equal(token, admin) => Ok(()),
            Some(_) if self.authenticate(headers).is_ok() => Err(ApiError::Forbidden(
                "this route needs the admin key (server.admin_key); tenant keys cannot manage tenants"
                    .into(),
            )),
            Some(_) => Err(ApiError::InvalidKey(
                "the admin key is not valid".into(),
            )),
        }
    }

    /// Every tenant with its sizes.
    pub async fn list(&self) -> Result<Vec<TenantInfo>, ApiError> {
        let open: Vec<Arc<Tenant>> = self.inner.open.read().values().cloned().collect();
        let mut out = Vec::with_capacity(open.len());
        for tenant in open {
            out.push(info(&tenant).await?);
        }
        Ok(out)
    }

    /// Tenant `name` with its sizes.
    pub async fn describe(&self, name: &str) -> Result<TenantInfo, ApiError> {
        let tenant = self.get(name).ok_or_else(|| tenant_not_found(name))?;
        info(&tenant).await
    }

    /// Creates tenant `name` with its own `settings`, empty and ready to serve.
    pub async fn create(
        &self,
        name: &str,
        settings: serde_json::Value,
    ) -> Result<TenantInfo, ApiError> {
        validate_tenant_name(name).map_err(|mut e| {
            e.field = Some("name".into());
            e
        })?;
        let config = self.inner.config.for_tenant(&settings)?;
        let _changing = self.inner.changes.lock().await;
        if self.get(name).is_some() {
            return Err(ApiError::Conflict {
                field: Some("name".into()),
                message: format!("tenant `{name}` already exists"),
            });
        }
        // Leftovers of a deletion interrupted by a crash must not reappear.
        self.inner.stores.destroy(name).await?;
        let record = TenantRecord {
            name: name.to_owned(),
            created_at: Timestamp::now(),
            settings,
        };
        if !self.inner.registry.create_tenant(record.clone()).await? {
            return Err(ApiError::Conflict {
                field: Some("name".into()),
                message: format!("tenant `{name}` already exists"),
            });
        }
        let opened = self.open_state(name, config).await.map_err(|e| {
            tracing::error!(tenant = name, error = %e, "a new tenant did not open");
            ApiError::Internal
        });
        let state = match opened {
            Ok(state) => state,
            Err(e) => {
                let _ = self.inner.registry.delete_tenant(name).await;
                return Err(e);
            }
        };
        self.insert(record, state);
        self.announce_registry().await;
        tracing::info!(tenant = name, "tenant created");
        self.describe(name).await
    }

    /// Deletes tenant `name` with all its data and keys. The `default` tenant
    /// stays: the one-tenant setup relies on it.
    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        if name == DEFAULT_TENANT {
            return Err(ApiError::Conflict {
                field: None,
                message: "the default tenant cannot be deleted".into(),
            });
        }
        let _changing = self.inner.changes.lock().await;
        let tenant = self.get(name).ok_or_else(|| tenant_not_found(name))?;
        self.inner.registry.delete_tenant(name).await?;
        self.inner.open.write().remove(name);
        self.inner.keys.write().retain(|_, k| k.tenant != name);
        tenant.state.set_not_ready();
        tenant.stop().await;
        drop(tenant);
        self.inner.stores.destroy(name).await?;
        self.announce_registry().await;
        tracing::info!(tenant = name, "tenant deleted");
        Ok(())
    }

    /// Issues a key for tenant `tenant`.
    pub async fn create_key(
        &self,
        tenant: &str,
        label: String,
        scopes: Vec<Scope>,
        rate_limit: Option<KeyRateLimit>,
    ) -> Result<IssuedKey, ApiError> {
        if self.get(tenant).is_none() {
            return Err(tenant_not_found(tenant));
        }
        if scopes.is_empty() {
            return Err(ValidationError::field(
                "invalid_value",
                "scopes",
                "give at least one scope: read, write or admin",
            )
            .into());
        }
        let rate_limit = rate_limit.map(check_rate_limit).transpose()?;
        let _changing = self.inner.changes.lock().await;
        let id = keys::new_key_id().map_err(internal)?;
        let issued = keys::new_key(&id).map_err(internal)?;
        let mut scopes = scopes;
        scopes.sort();
        scopes.dedup();
        let record = KeyRecord {
            id,
            tenant: tenant.to_owned(),
            label,
            scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            secret_hash: issued.hash,
            created_at: Timestamp::now(),
            rotated_at: None,
            revoked_at: None,
            rate_limit,
        };
        self.inner.registry.put_key(record.clone()).await?;
        let info = KeyInfo::from(&record);
        self.inner.keys.write().insert(record.id.clone(), record);
        self.announce_registry().await;
        Ok(IssuedKey {
            key: issued.key,
            info,
        })
    }

    /// Tenant `tenant`'s keys, revoked ones included, without secrets.
    pub fn keys(&self, tenant: &str) -> Result<Vec<KeyInfo>, ApiError> {
        if self.get(tenant).is_none() {
            return Err(tenant_not_found(tenant));
        }
        let keys = self.inner.keys.read();
        let mut out: Vec<KeyInfo> = keys
            .values()
            .filter(|k| k.tenant == tenant)
            .map(KeyInfo::from)
            .collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Replaces the secret of key `id` of `tenant`: the old secret stops
    /// working at once, scopes and limits stay.
    pub async fn rotate_key(&self, tenant: &str, id: &str) -> Result<IssuedKey, ApiError> {
        let _changing = self.inner.changes.lock().await;
        let mut record = self.key_of(tenant, id)?;
        if record.revoked_at.is_some() {
            return Err(ApiError::Conflict {
                field: None,
                message: format!("key `{id}` is revoked; create a new key instead"),
            });
        }
        let issued = keys::new_key(id).map_err(internal)?;
        record.secret_hash = issued.hash;
        record.rotated_at = Some(Timestamp::now());
        self.inner.registry.put_key(record.clone()).await?;
        let info = KeyInfo::from(&record);
        self.inner.keys.write().insert(record.id.clone(), record);
        self.inner.limiter.forget(id);
        self.announce_registry().await;
        Ok(IssuedKey {
            key: issued.key,
            info,
        })
    }

    /// Revokes key `id` of `tenant` for good (it stays listed, as revoked).
    pub async fn revoke_key(&self, tenant: &str, id: &str) -> Result<KeyInfo, ApiError> {
        let _changing = self.inner.changes.lock().await;
        let mut record = self.key_of(tenant, id)?;
        if record.revoked_at.is_none() {
            record.revoked_at = Some(Timestamp::now());
            self.inner.registry.put_key(record.clone()).await?;
            self.inner
                .keys
                .write()
                .insert(record.id.clone(), record.clone());
            self.inner.limiter.forget(id);
        }
        Ok(KeyInfo::from(&record))
    }

    fn key_of(&self, tenant: &str, id: &str) -> Result<KeyRecord, ApiError> {
        if self.get(tenant).is_none() {
            return Err(tenant_not_found(tenant));
        }
        self.inner
            .keys
            .read()
            .get(id)
            .filter(|k| k.tenant == tenant)
            .cloned()
            .ok_or_else(|| ApiError::NotFound {
                field: None,
                message: format!("tenant `{tenant}` has no key `{}`", id.escape_debug()),
            })
    }

    /// The summed sizes of every tenant's store.
    pub async fn total_counts(&self) -> Result<StoreCounts, ApiError> {
        let mut total = StoreCounts::default();
        for state in self.states() {
            let c = state.store().counts().await?;
            total.items += c.items;
            total.users += c.users;
            total.events += c.events;
        }
        Ok(total)
    }
}

async fn info(tenant: &Tenant) -> Result<TenantInfo, ApiError> {
    let counts = tenant.state.store().counts().await?;
    Ok(TenantInfo {
        name: tenant.record.name.clone(),
        created_at: tenant.record.created_at,
        settings: match &tenant.record.settings {
            serde_json::Value::Null => serde_json::json!({}),
            other => other.clone(),
        },
        items: counts.items,
        users: counts.users,
        events: counts.events,
    })
}

fn check_rate_limit(limit: KeyRateLimit) -> Result<RateLimit, ApiError> {
    if !limit.per_second.is_finite() || limit.per_second < 0.0 {
        return Err(ValidationError::field(
            "invalid_value",
            "rate_limit.per_second",
            "must be 0 (unlimited) or a positive number of requests per second",
        )
        .into());
    }
    if limit.burst == 0 {
        return Err(ValidationError::field(
            "invalid_value",
            "rate_limit.burst",
            "must be at least 1",
        )
        .into());
    }
    Ok(RateLimit {
        per_second: limit.per_second,
        burst: limit.burst,
    })
}

fn internal(message: String) -> ApiError {
    tracing::error!(%message, "issuing a key failed");
    ApiError::Internal
}

/// The 404 of an unknown tenant.
pub(crate) fn tenant_not_found(name: &str) -> ApiError {
    ApiError::NotFound {
        field: None,
        message: format!("no tenant is named `{}`", name.escape_debug()),
    }
}

/// The bearer token of a request, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The tenant named by [`TENANT_HEADER`], if any.
fn tenant_header(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match headers.get(TENANT_HEADER) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::InvalidField {
                field: Some(TENANT_HEADER.into()),
                message: format!("the {TENANT_HEADER} header must be a tenant name"),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: Option<&str>, tenant: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(
                axum::http::header::AUTHORIZATION,
                HeaderValue::from_str(a).unwrap(),
            );
        }
        if let Some(t) = tenant {
            h.insert(TENANT_HEADER, HeaderValue::from_str(t).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(&headers(Some("Bearer abc"), None)), Some("abc"));
        assert_eq!(bearer(&headers(Some("bearer  abc "), None)), Some("abc"));
        for bad in [None, Some("Bearer"), Some("Bearer "), Some("Basic abc")] {
            assert_eq!(bearer(&headers(bad, None)), None, "{bad:?}");
        }
    }
}
