//! Bad input: every mistake gets a 4xx in the error format, never a 500, and a
//! refused batch stores nothing.

use serde_json::{json, Value};

use crate::harness::{event, items, TestServer};

const BODY_LIMIT: usize = 64 * 1024;
const BATCH_LIMIT: usize = 50;

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.server.max_body_bytes = BODY_LIMIT;
        c.server.max_batch = BATCH_LIMIT;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_with_its_position() {
    let s = server().await;
    for (path, body) in [
        ("/v1/items", "{\"id\": \"a\""),
        ("/v1/items", "[{\"id\": \"a\"},\n {\"id\": }]"),
        ("/v1/users", "not json"),
        ("/v1/events", ""),
        ("/v1/events", "{\"user_id\": \"u\"} trailing"),
    ] {
        let reply = s.post_raw(path, body.to_owned()).await;
        reply.assert_error(400, "malformed_json");
        assert!(reply.text.contains("line"), "{}", reply.text);
    }
    let reply = s
        .send(s.req(reqwest::Method::PATCH, "/v1/items/a").body("{"))
        .await;
    reply.assert_error(400, "malformed_json");
    // Nesting deeper than the parser allows is refused, not a stack overflow.
    let deep = format!(
        "{{\"id\":\"a\",\"attributes\":{{\"x\":{}{}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    s.post_raw("/v1/items", deep.clone())
        .await
        .assert_error(400, "malformed_json");
    s.post_raw("/v1/items", format!("[{deep}]"))
        .await
        .assert_error(400, "malformed_json");
    s.get("/v1/items/a").await.assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_types_missing_and_unknown_fields_are_422_naming_the_field() {
    let s = server().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/v1/items", json!({"id": "a", "hidden": "yes"}), "hidden"),
        ("/v1/items", json!({"id": 5}), "id"),
        ("/v1/items", json!({"title": "no id"}), "id"),
        (
            "/v1/items",
            json!({"id": "a", "categoires": ["typo"]}),
            "categoires",
        ),
        (
            "/v1/items",
            json!({"id": "a", "published_at": "yesterday"}),
            "published_at",
        ),
        (
            "/v1/items",
            json!([{"id": "a"}, {"id": "b", "tags": [1]}]),
            "[1].tags[0]",
        ),
        (
            "/v1/users",
            json!({"id": "u", "attributes": [1, 2]}),
            "attributes",
        ),
        (
            "/v1/events",
            json!({"user_id": "u", "type": "click"}),
            "item_id",
        ),
        (
            "/v1/events",
            json!({"user_id": "u", "item_id": "i", "type": "click", "value": "1"}),
            "value",
        ),
        (
            "/v1/events",
            json!([event("u", "i", "click"), {"user_id": "u", "item_id": "i"}]),
            "[1].type",
        ),
        (
            "/v1/events",
            json!([event("u", "i", "click"), event("u", "i", "click"), {"user_id": "u", "item_id": "i", "type": "click", "extra": 1}]),
            "[2].extra",
        ),
    ];
    for (path, body, field) in cases {
        s.post(path, &body)
            .await
            .assert_error(422, "invalid_field")
            .assert_field(field);
    }
    s.patch("/v1/items/x", &json!({"hidden": 1}))
        .await
        .assert_error(422, "invalid_field")
        .assert_field("hidden");
    s.patch("/v1/users/x", &json!({"id": "y"}))
        .await
        .assert_error(422, "invalid_field")
        .assert_field("id");
    s.post("/v1/items", &json!("a string"))
        .await
        .assert_error(422, "invalid_field");
    // Nothing was stored by any of them.
    s.get("/v1/items/a").await.assert_error(404, "not_found");
    s.get("/v1/users/u/events")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_are_422() {
    let s = server().await;
    let long = "x".repeat(257);
    s.post("/v1/items", &json!({"id": long}))
        .await
        .assert_error(422, "invalid_id")
        .assert_field("id");
    s.post("/v1/items", &json!({"id": "x".repeat(256)}))
        .await
        .ok();
    s.post("/v1/items", &json!({"id": ""}))
        .await
        .assert_error(422, "invalid_id");
    s.post("/v1/items", &json!({"id": "bell\u{7}"}))
        .await
        .assert_error(422, "invalid_id")
        .assert_field("id");
    s.post("/v1/users", &json!([{"id": "ok"}, {"id": "new\nline"}]))
        .await
        .assert_error(422, "invalid_id")
        .assert_field("[1].id");
    s.post("/v1/events", &event("u", &long, "click"))
        .await
        .assert_error(422, "invalid_id")
        .assert_field("item_id");
    s.post("/v1/events", &event("tab\tbed", "i", "click"))
        .await
        .assert_error(422, "invalid_id")
        .assert_field("user_id");
    s.post("/v1/items", &json!({"id": "a", "categories": ["ok", ""]}))
        .await
        .assert_error(422, "invalid_label")
        .assert_field("categories[1]");
    s.get("/v1/users/ok").await.assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_and_negative_numbers_are_422() {
    let s = server().await;
    let huge = r#"[{"user_id":"u","item_id":"i","type":"click"},{"user_id":"u","item_id":"i","type":"click","value":1e400}]"#;
    s.post_raw("/v1/events", huge)
        .await
        .assert_error(422, "invalid_field")
        .assert_field("[1].value");
    let single = r#"{"user_id":"u","item_id":"i","type":"click","value":-1e400}"#;
    s.post_raw("/v1/events", single)
        .await
        .assert_error(422, "invalid_field")
        .assert_field("value");
    s.post(
        "/v1/events",
        &json!({"user_id": "u", "item_id": "i", "type": "click", "value": -1}),
    )
    .await
    .assert_error(422, "invalid_value")
    .assert_field("value");
    s.post(
        "/v1/events",
        &json!({"user_id": "u", "item_id": "i", "type": "click", "value": 1e300}),
    )
    .await
    .assert_error(422, "invalid_value");
    s.post(
        "/v1/events",
        &json!({"user_id": "u", "item_id": "i", "type": "click", "timestamp": -5}),
    )
    .await
    .assert_error(422, "invalid_field")
    .assert_field("timestamp");
    s.post(
        "/v1/events",
        &json!({"user_id": "u", "item_id": "i", "type": "click",
                "timestamp": "2999-01-01T00:00:00Z"}),
    )
    .await
    .assert_error(422, "invalid_value")
    .assert_field("timestamp");
    s.post(
        "/v1/events",
        &json!({"user_id": "u", "item_id": "i", "type": "teleport"}),
    )
    .await
    .assert_error(422, "unknown_event_type")
    .assert_field("type");
    s.post_raw("/v1/items", r#"{"id":"a","attributes":{"x":[1,2,1e999]}}"#)
        .await
        .assert_error(422, "invalid_field")
        .assert_field("attributes.x[2]");
    s.get("/v1/users/u/events")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_element_refuses_the_whole_batch() {
    let s = server().await;
    let mut batch: Vec<Value> = (0..5).map(|i| json!({"id": format!("ok{i}")})).collect();
    batch[3] = json!({"id": "ok3", "title": "t".repeat(5000)});
    s.post("/v1/items", &Value::Array(batch))
        .await
        .assert_error(422, "too_large")
        .assert_field("[3].title");
    for i in 0..5 {
        s.get(&format!("/v1/items/ok{i}"))
            .await
            .assert_error(404, "not_found");
    }

    let events = json!([event("u1", "i1", "click"), event("u2", "i2", "click"), {"user_id": "u3", "item_id": "i3", "type": "click", "value": -2}]);
    let reply = s.post("/v1/events", &events).await;
    reply
        .assert_error(422, "invalid_value")
        .assert_field("[2].value");
    assert!(reply.text.contains("element 2"), "{}", reply.text);
    for path in [
        "/v1/users/u1",
        "/v1/users/u1/events",
        "/v1/items/i1",
        "/v1/items/i2",
    ] {
        s.get(path).await.assert_error(404, "not_found");
    }
    assert!(s.get("/v1/popular").await.ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_ids_in_a_batch_are_409() {
    let s = server().await;
    let reply = s
        .post("/v1/items", &json!([{"id": "a"}, {"id": "b"}, {"id": "a"}]))
        .await;
    reply.assert_error(409, "duplicate_id");
    s.get("/v1/items/a").await.assert_error(404, "not_found");
    s.get("/v1/items/b").await.assert_error(404, "not_found");
    s.post("/v1/users", &json!([{"id": "u"}, {"id": "u"}]))
        .await
        .assert_error(409, "duplicate_id");
    s.get("/v1/users/u").await.assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_batches_are_413() {
    let s = server().await;
    let big = json!({"id": "a", "text": "x".repeat(BODY_LIMIT)});
    s.post("/v1/items", &big)
        .await
        .assert_error(413, "body_too_large");
    s.get("/v1/items/a").await.assert_error(404, "not_found");

    // Without Content-Length (chunked), the limit is found while reading.
    let chunk = format!("{{\"id\":\"a\",\"text\":\"{}\"}}", "y".repeat(BODY_LIMIT));
    let request = format!(
        "POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, body) = s.raw_http(request.as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(body["error"]["code"], "body_too_large");

    let reply = s.post("/v1/items", &items("b", BATCH_LIMIT + 1)).await;
    reply.assert_error(413, "batch_too_large");
    s.get("/v1/items/b000").await.assert_error(404, "not_found");
    let events: Vec<Value> = (0..=BATCH_LIMIT)
        .map(|i| event("u", &format!("i{i}"), "click"))
        .collect();
    s.post("/v1/events", &Value::Array(events))
        .await
        .assert_error(413, "batch_too_large");
    assert_eq!(
        s.post("/v1/items", &items("b", BATCH_LIMIT)).await.ok()["accepted"],
        BATCH_LIMIT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_400() {
    let s = server().await;
    s.post_raw("/v1/items", b"{\"id\":\"caf\xe9\"}".to_vec())
        .await
        .assert_error(400, "invalid_utf8");
    s.post_raw("/v1/events", b"\xff\xfe".to_vec())
        .await
        .assert_error(400, "invalid_utf8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_are_404() {
    let s = server().await;
    for path in ["/v1/items/nope", "/v1/users/nope", "/v1/users/nope/events"] {
        s.get(path).await.assert_error(404, "not_found");
    }
    s.patch("/v1/items/nope", &json!({}))
        .await
        .assert_error(404, "not_found");
    s.patch("/v1/users/nope", &json!({}))
        .await
        .assert_error(404, "not_found");
    s.delete("/v1/items/nope")
        .await
        .assert_error(404, "not_found");
    s.delete("/v1/users/nope")
        .await
        .assert_error(404, "not_found");
    s.get(&format!("/v1/items/{}", "z".repeat(300)))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_are_400_naming_the_parameter() {
    let s = server().await;
    let cases = [
        ("/v1/popular?n=0", "n"),
        ("/v1/popular?n=1001", "n"),
        ("/v1/trending?n=abc", "n"),
        ("/v1/latest?n=-3", "n"),
        ("/v1/latest?offset=1000", "offset"),
        ("/v1/latest?n=5&n=6", "n"),
        ("/v1/latest?category=", "category"),
        ("/v1/latest?sort=asc", "sort"),
        ("/v1/popular?exclude=a", "exclude"),
        ("/v1/recommend/u?n=0", "n"),
        ("/v1/recommend/u?exclude=", "exclude"),
        ("/v1/recommend/u?user=u", "user"),
        ("/v1/items?limit=0", "limit"),
        ("/v1/items?limit=1001", "limit"),
        ("/v1/items?cursor=%%%", "cursor"),
        ("/v1/users?cursor=bm90LXZhbGlk!", "cursor"),
        ("/v1/users?page=2", "page"),
        ("/v1/users/u/events?type=teleport", "type"),
        ("/v1/users/u/events?limit=x", "limit"),
    ];
    for (path, param) in cases {
        s.get(path)
            .await
            .assert_error(400, "invalid_query")
            .assert_field(param);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_in_the_error_format() {
    let s = server().await;
    s.get("/v1/nothing-here")
        .await
        .assert_error(404, "not_found");
    s.get("/v2/items").await.assert_error(404, "not_found");
    s.get("/").await.assert_error(404, "not_found");
    let put = s.send(s.req(reqwest::Method::PUT, "/v1/items")).await;
    put.assert_error(405, "method_not_allowed");
    let allow = put.headers["allow"].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    s.send(s.req(reqwest::Method::POST, "/v1/popular"))
        .await
        .assert_error(405, "method_not_allowed");
    s.send(s.req(reqwest::Method::DELETE, "/healthz"))
        .await
        .assert_error(405, "method_not_allowed");
    s.get("/v1/items/a%FFb")
        .await
        .assert_error(400, "invalid_path");
}
