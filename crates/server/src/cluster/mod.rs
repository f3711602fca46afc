//! Several API nodes over one shared store: what they tell each other.
//!
//! The store (PostgreSQL) is the system of record; every node keeps its own
//! live state in memory, so every node must see every change. Each write a
//! node acknowledges is appended to the tenant's Redis stream
//! (`tephra:{tenant}:changes`) before the answer; every other node reads the
//! stream with a blocking read and applies the change to its live state at
//! once. Events carry their `seq`, so a node applies each exactly once
//! ([`AppliedSeqs`]), and a node that missed some (Redis restarted, the
//! stream trimmed) catches up from the store's log. New models are announced
//! on the `tephra:models` channel; rate-limit buckets live in Redis so that a
//! key's limit holds across nodes. One node per tenant trains, elected by a
//! lock the store provides ([`TrainerElection`]).

pub mod applied;
mod apply;
mod election;
pub mod postgres;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tephra_core::Item;
use tephra_store::{RateLimit, StoredEvent};

pub use applied::AppliedSeqs;
pub use election::{Lease, MemoryElection, TrainerElection};

/// Channel (under the namespace) announcing promoted models:
/// `{"tenant", "version", "node"}`.
pub const MODELS_CHANNEL: &str = "models";
/// Channel (under the namespace) announcing that tenants or keys changed:
/// `{"node"}`.
pub const REGISTRY_CHANNEL: &str = "registry";
/// Entries kept in each tenant's change stream (approximately).
const STREAM_LENGTH: usize = 100_000;
/// How long one blocking stream read waits before checking for shutdown.
const READ_BLOCK: Duration = Duration::from_millis(1000);
/// How often a node compares its applied events with the store's log.
pub(crate) const CATCH_UP_EVERY: Duration = Duration::from_secs(2);

/// Model snapshots every node can load: the trainer saves each promoted model,
/// the others fetch it when it is announced.
#[async_trait]
pub trait ModelExchange: Send + Sync + 'static {
    /// Saves `tenant`'s promoted model under `version`.
    async fn put(&self, tenant: &str, version: &str, bytes: Vec<u8>) -> Result<(), String>;
    /// `tenant`'s latest model: `(version, bytes)`.
    async fn get(&self, tenant: &str) -> Result<Option<(String, Vec<u8>)>, String>;
    /// Only the version of `tenant`'s latest model (cheap).
    async fn version(&self, tenant: &str) -> Result<Option<String>, String>;
}

/// Each tenant's latest model: `(version, bytes)`.
type ModelsByTenant = std::collections::HashMap<String, (String, Vec<u8>)>;

/// Model snapshots held in one process (tests, nodes sharing a process).
#[derive(Debug, Default, Clone)]
pub struct MemoryModels {
    models: Arc<parking_lot::Mutex<ModelsByTenant>>,
}

#[async_trait]
impl ModelExchange for MemoryModels {
    async fn put(&self, tenant: &str, version: &str, bytes: Vec<u8>) -> Result<(), String> {
        self.models
            .lock()
            .insert(tenant.to_owned(), (version.to_owned(), bytes));
        Ok(())
    }

    async fn get(&self, tenant: &str) -> Result<Option<(String, Vec<u8>)>, String> {
        Ok(self.models.lock().get(tenant).cloned())
    }

    async fn version(&self, tenant: &str) -> Result<Option<String>, String> {
        Ok(self.models.lock().get(tenant).map(|(v, _)| v.clone()))
    }
}

/// What other nodes are told about a write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Events as stored.
    Events {
        /// In store order.
        events: Vec<ReplicatedEvent>,
    },
    /// Items as stored (upserts and patches), with their indices.
    Items {
        /// `(index, item)`.
        items: Vec<(u32, Item)>,
    },
    /// An item deleted.
    ItemDeleted {
        /// Its index.
        index: u32,
    },
    /// Users registered, with their indices.
    Users {
        /// `(index, id)`.
        users: Vec<(u32, String)>,
    },
    /// Experiments changed: reload them from the store.
    Experiments,
}

/// A stored event with its ids, as the change stream carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicatedEvent {
    /// Its user's id.
    pub user_id: String,
    /// Its item's id.
    pub item_id: String,
    /// The event as stored.
    #[serde(flatten)]
    pub event: StoredEvent,
}

impl ReplicatedEvent {
    /// `event` with its ids.
    pub fn new(user_id: &str, item_id: &str, event: &StoredEvent) -> Self {
        Self {
            user_id: user_id.to_owned(),
            item_id: item_id.to_owned(),
            event: event.clone(),
        }
    }
}

/// A change and the node that made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    node: String,
    #[serde(flatten)]
    change: Change,
}

/// An announced model.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Announcement {
    tenant: String,
    version: String,
    node: String,
}

/// Token bucket in Redis: `KEYS[1]` the bucket, `ARGV` rate and burst; the
/// clock is Redis's, so nodes with skewed clocks agree. Returns the seconds
/// to wait, `"0"` when a token was taken.
const BUCKET_SCRIPT: &str = r#"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"#;

/// This node's link to the others: Redis, the trainer election and the
/// shared model snapshots.
pub struct ClusterLink {
    node: String,
    namespace: String,
    client: redis::Client,
    conn: ConnectionManager,
    election: Arc<dyn TrainerElection>,
    models: Arc<dyn ModelExchange>,
    bucket: redis::Script,
}

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLink")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl ClusterLink {
    /// Connects to Redis at `redis_url`. Every key and channel starts with
    /// `namespace` (`tephra` by default), so that several clusters can share
    /// one Redis.
    pub async fn connect(
        redis_url: &str,
        namespace: &str,
        election: Arc<dyn TrainerElection>,
        models: Arc<dyn ModelExchange>,
    ) -> Result<Arc<ClusterLink>, String> {
        let shown = redact(redis_url);
        let client = redis::Client::open(redis_url)
            .map_err(|e| format!("the cache URL {shown} is not valid: {e}"))?;
        let conn = tokio::time::timeout(Duration::from_secs(10), client.get_connection_manager())
            .await
            .map_err(|_| format!("Redis at {shown} did not answer within 10 s"))?
            .map_err(|e| format!("cannot connect to Redis at {shown}: {e}"))?;
        let node = format!(
            "{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..8)
                .unwrap_or("node")
        );
        Ok(Arc::new(ClusterLink {
            node,
            namespace: namespace.to_owned(),
            client,
            conn,
            election,
            models,
            bucket: redis::Script::new(BUCKET_SCRIPT),
        }))
    }

    /// This node's name in the cluster (process id and a random suffix).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The trainer election.
    pub fn election(&self) -> &Arc<dyn TrainerElection> {
        &self.election
    }

    /// The shared model snapshots.
    pub(crate) fn models(&self) -> &Arc<dyn ModelExchange> {
        &self.models
    }

    fn stream(&self, tenant: &str) -> String {
        format!("{}:{tenant}:changes", self.namespace)
    }

    fn channel(&self, name: &str) -> String {
        format!("{}:{name}", self.namespace)
    }

    /// The id of the newest entry of `tenant`'s stream (`0` when empty): read
    /// before the state is loaded, so that nothing written meanwhile is missed.
    pub async fn stream_tip(&self, tenant: &str) -> Result<String, String> {
        let mut conn = self.conn.clone();
        let newest: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.stream(tenant))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("reading the change stream: {e}"))?;
        Ok(newest
            .ids
            .first()
            .map_or_else(|| "0".to_owned(), |entry| entry.id.clone()))
    }

    /// Appends `change` of `tenant` to its stream. A failure is logged, not
    /// returned: the write is durable in the store, and other nodes catch up
    /// from the store's log.
    pub async fn publish(&self, tenant: &str, change: Change) {
        let envelope = Envelope {
            node: self.node.clone(),
            change,
        };
        let payload = match serde_json::to_string(&envelope) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "cannot encode a change for the other nodes");
                return;
            }
        };
        let mut conn = self.conn.clone();
        let added: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(self.stream(tenant))
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_LENGTH)
            .arg("*")
            .arg("m")
            .arg(payload)
            .query_async(&mut conn)
            .await;
        if let Err(error) = added {
            tracing::warn!(%error, tenant, "cannot publish a change to the other nodes; they will catch up from the store");
        }
    }

    /// Announces `tenant`'s newly promoted model `version`.
    pub async fn announce_model(&self, tenant: &str, version: &str) {
        let payload = serde_json::json!({"tenant": tenant, "version": version, "node": self.node});
        let mut conn = self.conn.clone();
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(self.channel(MODELS_CHANNEL))
            .arg(payload.to_string())
            .query_async(&mut conn)
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, tenant, "cannot announce the new model; other nodes load it at their next check");
        }
    }

    /// Tells the other nodes that tenants or keys changed.
    pub async fn announce_registry(&self) {
        let payload = serde_json::json!({"node": self.node});
        let mut conn = self.conn.clone();
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(self.channel(REGISTRY_CHANNEL))
            .arg(payload.to_string())
            .query_async(&mut conn)
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, "cannot announce a change of tenants or keys; other nodes see it at their next check");
        }
    }

    /// Takes a token from the shared bucket `key`; `Err(wait)` when empty.
    /// Redis failing lets the request through (with a warning): a limit is
    /// not worth an outage.
    pub async fn check_rate(&self, key: &str, limit: RateLimit) -> Result<(), Duration> {
        if limit.per_second <= 0.0 {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let answer: redis::RedisResult<String> = self
            .bucket
            .key(format!("{}:rate:{key}", self.namespace))
            .arg(limit.per_second)
            .arg(limit.burst.max(1))
            .invoke_async(&mut conn)
            .await;
        match answer.map(|w| w.parse::<f64>()) {
            Ok(Ok(wait)) if wait > 0.0 => Err(Duration::from_secs_f64(wait)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                tracing::warn!(%error, "the rate-limit script answered nonsense; request let through");
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, "Redis did not answer the rate limit; request let through");
                Ok(())
            }
        }
    }

    /// Reads `tenant`'s change stream after `from` until `stop`, handing each
    /// change of another node to `apply`.
    pub(crate) async fn follow<F, Fut>(
        self: Arc<Self>,
        tenant: String,
        mut from: String,
        mut stop: tokio::sync::watch::Receiver<bool>,
        apply: F,
    ) where
        F: Fn(Change) -> Fut + Send,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let stream = self.stream(&tenant);
        let mut conn = None;
        loop {
            if *stop.borrow() {
                return;
            }
            if conn.is_none() {
                match self.client.get_multiplexed_async_connection().await {
                    Ok(c) => conn = Some(c),
                    Err(error) => {
                        tracing::warn!(%error, tenant, "cannot read the change stream; retrying");
                        tokio::select! {
                            _ = stop.changed() => return,
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let mut command = redis::cmd("XREAD");
            command
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("COUNT")
                .arg(500)
                .arg("STREAMS")
                .arg(&stream)
                .arg(&from);
            let read = command.query_async::<Option<redis::streams::StreamReadReply>>(c);
            let reply = tokio::select! {
                _ = stop.changed() => return,
                reply = read => reply,
            };
            match reply {
                Ok(Some(reply)) => {
                    for key in reply.keys {
                        for entry in key.ids {
                            from = entry.id.clone();
                            let Some(payload) = entry.get::<String>("m") else {
                                continue;
                            };
                            match serde_json::from_str::<Envelope>(&payload) {
                                Ok(envelope) if envelope.node == self.node => {}
                                Ok(envelope) => apply(envelope.change).await,
                                Err(error) => {
                                    tracing::warn!(%error, tenant, "a change from another node does not decode; skipped")
                                }
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, tenant, "reading the change stream failed; reconnecting");
                    conn = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Hands every announcement of another node to `heard` (a new model of a
    /// tenant, or a change of tenants or keys), until `stop`.
    pub(crate) async fn follow_announcements<F, Fut>(
        self: Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
        heard: F,
    ) where
        F: Fn(Heard) -> Fut + Send,
        Fut: std::future::Future<Output = ()> + Send,
    {
        use futures::StreamExt;
        loop {
            let mut pubsub = match self.client.get_async_pubsub().await {
                Ok(p) => p,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for new models; retrying");
                    tokio::select! {
                        _ = stop.changed() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            let channels = [self.channel(MODELS_CHANNEL), self.channel(REGISTRY_CHANNEL)];
            if let Err(error) = pubsub.subscribe(&channels).await {
                tracing::warn!(%error, "cannot listen for new models; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let mut messages = pubsub.on_message();
            loop {
                let message = tokio::select! {
                    _ = stop.changed() => return,
                    m = messages.next() => m,
                };
                let Some(message) = message else { break };
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                if message.get_channel_name() == channels[1] {
                    let node = serde_json::from_str::<serde_json::Value>(&payload)
                        .ok()
                        .and_then(|v| v["node"].as_str().map(str::to_owned));
                    if node.as_deref() != Some(self.node.as_str()) {
                        heard(Heard::Registry).await;
                    }
                    continue;
                }
                match serde_json::from_str::<Announcement>(&payload) {
                    Ok(a) if a.node == self.node => {}
                    Ok(a) => {
                        heard(Heard::Model {
                            tenant: a.tenant,
                            version: a.version,
                        })
                        .await
                    }
                    Err(error) => tracing::warn!(%error, "a model announcement does not decode"),
                }
            }
        }
    }
}

/// What another node announced.
#[derive(Debug, Clone)]
pub(crate) enum Heard {
    /// A tenant's new model.
    Model {
        /// The tenant.
        tenant: String,
        /// The model's version.
        version: String,
    },
    /// Tenants or keys changed.
    Registry,
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://…@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

pub(crate) use apply::{announce_promoted, load_shared_model, pause, start_tasks};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_as_json() {
        let change = Change::Users {
            users: vec![(3, "u".into())],
        };
        let envelope = Envelope {
            node: "n".into(),
            change: change.clone(),
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert!(text.contains(r#""kind":"users""#), "{text}");
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.change, change);
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(redact("redis://:pw@host:6379/0"), "redis://…@host:6379/0");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
