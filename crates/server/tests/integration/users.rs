//! `/v1/users`: create, read, update, delete, list.

use serde_json::json;

use crate::harness::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_lifecycle() {
    let s = TestServer::start().await;
    let reply = s
        .post(
            "/v1/users",
            &json!({"id": "u1", "attributes": {"plan": "pro", "region": "eu"}}),
        )
        .await;
    assert_eq!(reply.ok(), &json!({"accepted": 1}));
    assert_eq!(
        s.get("/v1/users/u1").await.ok(),
        &json!({"id": "u1", "attributes": {"plan": "pro", "region": "eu"}})
    );

    let patched = s
        .patch(
            "/v1/users/u1",
            &json!({"attributes": {"plan": null, "age": 30}}),
        )
        .await;
    assert_eq!(
        patched.ok()["attributes"],
        json!({"region": "eu", "age": 30})
    );
    assert_eq!(
        s.get("/v1/users/u1").await.ok()["attributes"],
        json!({"region": "eu", "age": 30})
    );

    assert_eq!(s.delete("/v1/users/u1").await.status, 204);
    s.get("/v1/users/u1").await.assert_error(404, "not_found");
    s.delete("/v1/users/u1")
        .await
        .assert_error(404, "not_found");
    s.patch("/v1/users/u1", &json!({"attributes": {}}))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_users_pages_in_id_order() {
    let s = TestServer::start().await;
    let users: Vec<_> = (0..7)
        .rev()
        .map(|i| json!({"id": format!("user-{i}")}))
        .collect();
    assert_eq!(s.post("/v1/users", &json!(users)).await.ok()["accepted"], 7);

    let first = s.get("/v1/users?limit=4").await;
    let ids: Vec<&str> = first.ok()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["user-0", "user-1", "user-2", "user-3"]);
    let cursor = first.ok()["next_cursor"].as_str().unwrap().to_owned();
    let second = s.get(&format!("/v1/users?limit=4&cursor={cursor}")).await;
    let ids: Vec<&str> = second.ok()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["user-4", "user-5", "user-6"]);
    assert!(second.ok()["next_cursor"].is_null());
}
