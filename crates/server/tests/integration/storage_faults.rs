//! Disk failures under the HTTP API: a full or failing disk refuses writes with
//! a clear error, reads go on, nothing acknowledged is lost, nothing refused
//! appears, and writes resume by themselves once the disk works again.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use tephra_server::{Config, Tenants};
use tephra_store::registry::{EmbeddedRegistry, EmbeddedTenantStores};
use tephra_store::{
    EmbeddedStore, FaultMode, FaultSwitch, SharedStore, StoreOptions, TenantStores,
};

use crate::harness::{event, TestServer};

/// Tenant stores whose disk fails when the switch says so.
struct FailingDisk {
    data_dir: std::path::PathBuf,
    switch: FaultSwitch,
}

#[async_trait]
impl TenantStores for FailingDisk {
    async fn open(&self, tenant: &str) -> tephra_store::Result<SharedStore> {
        let options = StoreOptions {
            faults: Some(self.switch.clone()),
            ..StoreOptions::default()
        };
        Ok(Arc::new(EmbeddedStore::open_with(
            &self.data_dir,
            tenant,
            options,
        )?))
    }

    async fn destroy(&self, tenant: &str) -> tephra_store::Result<()> {
        EmbeddedTenantStores::new(&self.data_dir, StoreOptions::default())
            .destroy(tenant)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_refuses_writes_clearly_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let switch = FaultSwitch::new();
    let config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let registry = EmbeddedRegistry::open(dir.path()).expect("registry");
    let stores = FailingDisk {
        data_dir: dir.path().to_owned(),
        switch: switch.clone(),
    };
    let tenants = Tenants::open(config, Arc::new(registry), Arc::new(stores))
        .await
        .expect("open");
    let s = TestServer::start_tenants(tenants, dir).await;

    s.post("/v1/items", &json!([{"id": "a"}, {"id": "b"}]))
        .await
        .ok();
    s.post("/v1/events", &json!([event("u", "a", "click")]))
        .await
        .ok();

    switch.set(FaultMode::DiskFull);
    let full = s
        .post(
            "/v1/events",
            &json!([event("u", "b", "click"), event("u", "new-item", "click")]),
        )
        .await;
    full.assert_error(507, "storage_full");
    assert!(
        full.text.contains("nothing of this request was stored"),
        "{}",
        full.text
    );
    // Reads go on, and show nothing of the refused batch.
    assert_eq!(s.get("/v1/items/a").await.ok()["id"], "a");
    s.get("/v1/items/new-item")
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        s.get("/v1/users/u/events").await.ok()["events"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Other failures: refused as well (while the store has not recovered from
    // the first, it may still report that one).
    let refused = |reply: &crate::harness::Reply| {
        assert!(
            matches!(
                (reply.status, reply.code()),
                (503, "storage_failed") | (507, "storage_full")
            ),
            "{}",
            reply.text
        );
    };
    switch.set(FaultMode::FailWrites);
    refused(&s.post("/v1/items", &json!({"id": "c"})).await);
    switch.set(FaultMode::FailSync);
    refused(&s.post("/v1/users", &json!({"id": "v"})).await);

    // The disk works again: writes resume without a restart.
    switch.set(FaultMode::Off);
    let mut resumed = None;
    for _ in 0..50 {
        let reply = s
            .post("/v1/events", &json!([event("u", "b", "purchase")]))
            .await;
        if reply.status == 200 {
            resumed = Some(reply);
            break;
        }
        // The store may be switching to a fresh handle on the file.
        refused(&reply);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(resumed.is_some(), "writes did not resume");
    s.post("/v1/items", &json!({"id": "c"})).await.ok();

    // Reopened from disk: exactly the acknowledged writes.
    let s = s.restart().await;
    let events = s.get("/v1/users/u/events").await;
    let types: Vec<&str> = events.ok()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["purchase", "click"],
        "newest first, nothing refused"
    );
    let ids = s.get("/v1/items?limit=100").await.ids();
    assert_eq!(ids, ["a", "b", "c"]);
    s.get("/v1/users/v").await.assert_error(404, "not_found");
}
