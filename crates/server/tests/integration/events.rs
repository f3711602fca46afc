//! `POST /v1/events` and `GET /v1/users/{id}/events`.

use serde_json::json;

use crate::harness::{event, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_newest_first_with_filters() {
    let s = TestServer::start().await;
    s.post("/v1/items", &json!([{"id": "a"}, {"id": "b"}, {"id": "c"}]))
        .await
        .ok();
    let single = json!({"user_id": "u1", "item_id": "a", "type": "click", "timestamp": "2025-03-01T10:00:00Z",
                        "request_id": "req-1", "scene": "home"});
    assert_eq!(
        s.post("/v1/events", &single).await.ok(),
        &json!({"accepted": 1})
    );
    let batch = json!([
        {"user_id": "u1", "item_id": "b", "type": "like", "value": 2.5, "timestamp": "2025-03-01T11:00:00Z"},
        {"user_id": "u1", "item_id": "c", "type": "click", "timestamp": 1740830400},
        {"user_id": "u2", "item_id": "a", "type": "click"},
    ]);
    assert_eq!(
        s.post("/v1/events", &batch).await.ok(),
        &json!({"accepted": 3})
    );

    let all = s.get("/v1/users/u1/events").await;
    let events = all.ok()["events"].as_array().unwrap().clone();
    let items: Vec<&str> = events
        .iter()
        .map(|e| e["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["c", "b", "a"], "newest first");
    assert_eq!(
        events[1],
        json!({"user_id": "u1", "item_id": "b", "type": "like", "value": 2.5,
                                 "timestamp": "2025-03-01T11:00:00.000Z"})
    );
    assert_eq!(events[2]["request_id"], "req-1");
    assert_eq!(events[2]["scene"], "home");
    assert_eq!(events[2]["value"], 1.0, "value defaults to 1");

    let clicks = s.get("/v1/users/u1/events?type=click").await;
    let items: Vec<&str> = clicks.ok()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["c", "a"]);
    let one = s.get("/v1/users/u1/events?limit=1").await;
    assert_eq!(one.ok()["events"].as_array().unwrap().len(), 1);
    assert_eq!(one.ok()["events"][0]["item_id"], "c");

    s.get("/v1/users/nobody/events")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unseen_users_and_items_are_created_by_events() {
    let s = TestServer::start().await;
    s.post("/v1/events", &event("new-user", "new-item", "click"))
        .await
        .ok();
    assert_eq!(s.get("/v1/users/new-user").await.ok()["id"], "new-user");
    let item = s.get("/v1/items/new-item").await;
    assert_eq!(item.ok()["id"], "new-item");
    assert_eq!(item.ok()["categories"], json!([]));
    // A placeholder is recommendable at once.
    assert!(s
        .get("/v1/popular")
        .await
        .ids()
        .contains(&"new-item".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_items_are_refused_when_not_created() {
    let s = TestServer::start_with(|c| c.server.create_unknown_items = false).await;
    s.post("/v1/items", &json!({"id": "known"})).await.ok();
    s.post("/v1/events", &event("u", "known", "click"))
        .await
        .ok();
    let reply = s
        .post(
            "/v1/events",
            &json!([event("u", "known", "like"), event("u", "ghost", "click")]),
        )
        .await;
    reply
        .assert_error(404, "not_found")
        .assert_field("[1].item_id");
    assert!(reply.text.contains("ghost"), "names the id: {}", reply.text);
    let single = s.post("/v1/events", &event("u", "ghost", "click")).await;
    single
        .assert_error(404, "not_found")
        .assert_field("item_id");
    // Nothing of the refused batch was stored.
    let events = s.get("/v1/users/u/events").await;
    assert_eq!(events.ok()["events"].as_array().unwrap().len(), 1);
    s.get("/v1/items/ghost")
        .await
        .assert_error(404, "not_found");

    // A deleted item is unknown too.
    assert_eq!(s.delete("/v1/items/known").await.status, 204);
    s.post("/v1/events", &event("u", "known", "click"))
        .await
        .assert_error(404, "not_found");
}
