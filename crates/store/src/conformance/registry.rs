//! Cases every [`Registry`](crate::Registry) backend must pass; see
//! [`registry_conformance_tests!`](crate::registry_conformance_tests).

use std::future::Future;
use std::path::PathBuf;

use tephra_core::Timestamp;

use crate::{KeyRecord, RateLimit, SharedRegistry, StoreError, TenantRecord};

/// A tenant record named `name`.
pub fn tenant(name: &str) -> TenantRecord {
    TenantRecord {
        name: name.to_owned(),
        created_at: Timestamp::from_secs(1_700_000_000),
        settings: serde_json::json!({"recommend": {"default_n": 5}}),
    }
}

/// A key record `id` of `tenant`.
pub fn key(id: &str, tenant: &str) -> KeyRecord {
    KeyRecord {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        label: format!("key {id}"),
        scopes: vec!["read".to_owned(), "write".to_owned()],
        secret_hash: "ab".repeat(32),
        created_at: Timestamp::from_secs(1_700_000_100),
        rotated_at: None,
        revoked_at: None,
        rate_limit: Some(RateLimit {
            per_second: 2.5,
            burst: 10,
        }),
    }
}

/// Tenants are created once, listed in name order and deleted.
pub async fn registry_tenants_create_list_delete(registry: SharedRegistry) {
    assert!(registry.tenants().await.expect("list").is_empty());
    for name in ["shop-b", "shop_a", "Shop"] {
        assert!(registry.create_tenant(tenant(name)).await.expect("create"));
    }
    let mut changed = tenant("shop_a");
    changed.settings = serde_json::json!({});
    assert!(
        !registry.create_tenant(changed).await.expect("create again"),
        "a taken name is refused"
    );
    let tenants = registry.tenants().await.expect("list");
    let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Shop", "shop-b", "shop_a"], "byte order");
    assert_eq!(tenants[2], tenant("shop_a"), "the first record stays");
    assert!(registry.delete_tenant("shop-b").await.expect("delete"));
    assert!(!registry
        .delete_tenant("shop-b")
        .await
        .expect("delete again"));
    assert_eq!(registry.tenants().await.expect("list").len(), 2);
}

/// Bad tenant names are refused before anything is stored.
pub async fn registry_refuses_bad_tenant_names(registry: SharedRegistry) {
    for bad in ["", "a/b", "..", "with space", "ünïcode"] {
        match registry.create_tenant(tenant(bad)).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.code, "invalid_tenant", "{bad:?}"),
            other => panic!("{bad:?}: expected invalid_tenant, got {other:?}"),
        }
    }
    assert!(registry.tenants().await.expect("list").is_empty());
}

/// Keys are saved, replaced by id and listed in id order; a key of an
/// unregistered tenant is refused.
pub async fn registry_keys_put_replace_list(registry: SharedRegistry) {
    registry.create_tenant(tenant("a")).await.expect("create");
    match registry.put_key(key("k1", "nobody")).await {
        Err(StoreError::Invalid(e)) => assert_eq!(e.code, "unknown_tenant"),
        other => panic!("expected unknown_tenant, got {other:?}"),
    }
    registry.put_key(key("k2", "a")).await.expect("put");
    registry.put_key(key("k1", "a")).await.expect("put");
    let mut revoked = key("k2", "a");
    revoked.revoked_at = Some(Timestamp::from_secs(1_700_000_200));
    revoked.rate_limit = None;
    registry.put_key(revoked.clone()).await.expect("replace");
    let keys = registry.keys().await.expect("keys");
    assert_eq!(keys, vec![key("k1", "a"), revoked]);
}

/// Deleting a tenant deletes its keys and no other.
pub async fn registry_delete_tenant_deletes_its_keys(registry: SharedRegistry) {
    for name in ["a", "b"] {
        registry.create_tenant(tenant(name)).await.expect("create");
    }
    registry.put_key(key("ka", "a")).await.expect("put");
    registry.put_key(key("kb", "b")).await.expect("put");
    assert!(registry.delete_tenant("a").await.expect("delete"));
    let ids: Vec<String> = registry
        .keys()
        .await
        .expect("keys")
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["kb"]);
}

/// Everything written is there after the registry is reopened.
pub async fn registry_reopen_restores_everything<F, Fut>(open: F)
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = SharedRegistry>,
{
    let dir = tempfile_dir();
    {
        let registry = open(dir.path().to_owned()).await;
        registry.create_tenant(tenant("a")).await.expect("create");
        registry.create_tenant(tenant("b")).await.expect("create");
        registry.put_key(key("k", "a")).await.expect("put");
        registry.delete_tenant("b").await.expect("delete");
    }
    let registry = open(dir.path().to_owned()).await;
    assert_eq!(registry.tenants().await.expect("list"), vec![tenant("a")]);
    assert_eq!(registry.keys().await.expect("keys"), vec![key("k", "a")]);
}

/// A temporary directory for persistence cases.
fn tempfile_dir() -> TempDir {
    TempDir::new()
}

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "tephra-registry-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("temporary directory");
        Self(path)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Expands to one `#[tokio::test]` per registry case, each with a fresh
/// registry from `$make` (a closure returning a future of a
/// [`SharedRegistry`] or `(SharedRegistry, guard)`), plus, with
/// `reopen = $open`, the persistence case (`$open` takes a directory).
#[macro_export]
macro_rules! registry_conformance_tests {
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture: $crate::conformance::RegistryFixture = ($make)().await.into();
                $crate::conformance::$case(fixture.registry.clone()).await;
            }
        )*
    };
    ($make:expr) => {
        $crate::__registry_cases!(registry_conformance_tests!(@cases $make));
    };
    ($make:expr, reopen = $open:expr) => {
        $crate::registry_conformance_tests!($make);
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn registry_reopen_restores_everything() {
            $crate::conformance::registry_reopen_restores_everything($open).await;
        }
    };
}

/// Like [`registry_conformance_tests!`](crate::registry_conformance_tests), for
/// a backend that needs an outside service: `$make` returns a future of an
/// `Option` of what `registry_conformance_tests!` takes, and `None` skips the
/// case; with `reopen = $setup`, `$setup` returns a future of
/// `Option<(open, guard)>` as in
/// [`persistence_tests_or_skip!`](crate::persistence_tests_or_skip).
#[macro_export]
macro_rules! registry_conformance_tests_or_skip {
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fixture) = ($make)().await else {
                    return;
                };
                let fixture: $crate::conformance::RegistryFixture = fixture.into();
                $crate::conformance::$case(fixture.registry.clone()).await;
            }
        )*
    };
    ($make:expr) => {
        $crate::__registry_cases!(registry_conformance_tests_or_skip!(@cases $make));
    };
    ($make:expr, reopen = $setup:expr) => {
        $crate::registry_conformance_tests_or_skip!($make);
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn registry_reopen_restores_everything() {
            let Some((open, _guard)) = ($setup)().await else {
                return;
            };
            $crate::conformance::registry_reopen_restores_everything(open).await;
        }
    };
}

/// Calls `$mac!($args; <every registry case>)`: the one list of the registry
/// cases, shared by the registry macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __registry_cases {
    ($mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            registry_tenants_create_list_delete,
            registry_refuses_bad_tenant_names,
            registry_keys_put_replace_list,
            registry_delete_tenant_deletes_its_keys,
        );
    };
}

/// A registry under test, plus whatever must outlive it.
pub struct RegistryFixture {
    /// The registry the cases run against.
    pub registry: SharedRegistry,
    _guard: Option<Box<dyn std::any::Any + Send>>,
}

impl From<SharedRegistry> for RegistryFixture {
    fn from(registry: SharedRegistry) -> Self {
        Self {
            registry,
            _guard: None,
        }
    }
}

impl<G: Send + 'static> From<(SharedRegistry, G)> for RegistryFixture {
    fn from((registry, guard): (SharedRegistry, G)) -> Self {
        Self {
            registry,
            _guard: Some(Box::new(guard)),
        }
    }
}
