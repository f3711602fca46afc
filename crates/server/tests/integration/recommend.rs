//! `/v1/recommend/{user_id}`: the fallback chain and what it must never return.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::harness::{event, TestServer};

fn id_set(ids: Vec<String>) -> BTreeSet<String> {
    ids.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_returns_interacted_hidden_expired_or_excluded_items() {
    let s = TestServer::start().await;
    let mut items: Vec<Value> = (1..=8)
        .map(|i| json!({"id": format!("i{i}"), "categories": ["all"]}))
        .collect();
    items.push(json!({"id": "hidden", "hidden": true}));
    items.push(json!({"id": "expired", "expires_at": "2000-01-01T00:00:00Z"}));
    s.post("/v1/items", &Value::Array(items)).await.ok();
    // Everything is popular, so every strategy would return everything.
    let mut events = Vec::new();
    for item in ["i1", "i2", "i3", "i4", "i5", "hidden", "expired"] {
        for fan in 0..3 {
            events.push(event(&format!("fan{fan}"), item, "click"));
        }
    }
    events.push(event("u", "i1", "click"));
    events.push(event("u", "i2", "dislike"));
    s.post("/v1/events", &Value::Array(events)).await.ok();

    let reply = s
        .get("/v1/recommend/u?n=50&exclude=i4&exclude=i5&exclude=not-an-item")
        .await;
    let expected: BTreeSet<String> = ["i3", "i6", "i7", "i8"].map(String::from).into();
    assert_eq!(id_set(reply.ids()), expected, "{}", reply.text);
    assert_eq!(reply.ids().len(), 4, "no item twice");
    for item in reply.ok()["items"].as_array().unwrap() {
        let source = item["source"].as_str().unwrap();
        assert!(
            ["trending", "popular", "latest", "content"].contains(&source),
            "{source}"
        );
        assert!(item["score"].is_number());
    }
    let request_id = reply.ok()["request_id"].as_str().unwrap();
    assert_eq!(request_id.len(), 36);
    assert_eq!(request_id.as_bytes()[14], b'7', "a UUID v7: {request_id}");
    let again = s.get("/v1/recommend/u?n=50").await;
    assert_ne!(
        again.ok()["request_id"],
        reply.ok()["request_id"],
        "one id per response"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_get_the_non_personalized_chain() {
    let s = TestServer::start().await;
    s.post("/v1/items", &json!([{"id": "a"}, {"id": "b"}]))
        .await
        .ok();
    s.post(
        "/v1/events",
        &json!([event("x", "b", "click"), event("y", "b", "click")]),
    )
    .await
    .ok();
    let reply = s.get("/v1/recommend/someone-new").await;
    assert_eq!(reply.ids(), ["b", "a"]);
    assert_eq!(reply.ok()["items"][0]["source"], "trending");
    s.get("/v1/users/someone-new")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_request_reflects_an_event() {
    let s = TestServer::start().await;
    s.post("/v1/items", &json!([{"id": "a"}, {"id": "b"}, {"id": "c"}]))
        .await
        .ok();
    s.post(
        "/v1/events",
        &json!([event("f1", "a", "click"), event("f2", "a", "click")]),
    )
    .await
    .ok();
    assert_eq!(s.get("/v1/popular").await.ids()[0], "a");
    assert_eq!(s.get("/v1/recommend/u").await.ids()[0], "a");

    let burst: Vec<Value> = (0..3)
        .map(|i| event(&format!("g{i}"), "c", "purchase"))
        .collect();
    s.post("/v1/events", &Value::Array(burst)).await.ok();
    assert_eq!(s.get("/v1/popular").await.ids()[0], "c");
    assert_eq!(s.get("/v1/trending").await.ids()[0], "c");
    assert_eq!(s.get("/v1/recommend/u").await.ids()[0], "c");

    s.post("/v1/events", &event("u", "c", "click")).await.ok();
    let ids = s.get("/v1/recommend/u").await.ids();
    assert!(!ids.contains(&"c".to_owned()), "{ids:?}");
    assert_eq!(ids[0], "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn category_filters_and_n_apply() {
    let s = TestServer::start().await;
    let items: Vec<Value> = (0..10)
        .map(|i| json!({"id": format!("m{i}"), "categories": if i % 2 == 0 { json!(["even", "num"]) } else { json!(["odd", "num"]) }}))
        .collect();
    s.post("/v1/items", &Value::Array(items)).await.ok();
    let even = s
        .get("/v1/recommend/u?category=even&category=num&n=20")
        .await
        .ids();
    assert_eq!(
        id_set(even),
        ["m0", "m2", "m4", "m6", "m8"].map(String::from).into()
    );
    assert!(s
        .get("/v1/recommend/u?category=even&category=odd")
        .await
        .ids()
        .is_empty());
    assert_eq!(s.get("/v1/recommend/u?n=3").await.ids().len(), 3);
    assert_eq!(s.get("/v1/recommend/u").await.ids().len(), 10, "default n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_user_id_is_refused() {
    let s = TestServer::start().await;
    s.get("/v1/recommend/a%0Ab")
        .await
        .assert_error(422, "invalid_id")
        .assert_field("user_id");
    let long = "u".repeat(257);
    s.get(&format!("/v1/recommend/{long}"))
        .await
        .assert_error(422, "invalid_id");
}
