//! Restart and reload: a new server over the same data directory answers
//! exactly as the old one did.

use serde_json::{json, Value};

use crate::harness::{event, TestServer};

/// Every read answer worth comparing, with request ids removed.
async fn snapshot(s: &TestServer) -> Vec<(String, Value)> {
    let paths = [
        "/v1/items?limit=1000",
        "/v1/users?limit=1000",
        "/v1/popular?n=50",
        "/v1/trending?n=50",
        "/v1/latest?n=50",
        "/v1/latest?n=50&category=news",
        "/v1/recommend/alice?n=50",
        "/v1/recommend/bob?n=50",
        "/v1/recommend/nobody?n=50",
        "/v1/users/alice/events",
        "/v1/users/bob/events?type=click",
        "/v1/users/carol/events",
        "/v1/items/n1",
        "/v1/items/gone",
        "/v1/users/dave",
        "/readyz",
    ];
    let mut out = Vec::new();
    for path in paths {
        let reply = s.get(path).await;
        let mut body = reply.body.clone();
        if let Some(obj) = body.as_object_mut() {
            obj.remove("request_id");
        }
        out.push((format!("{} {path}", reply.status), body));
    }
    out
}

/// Scores may differ in the last bits (trending decays with time); everything
/// else must be identical.
fn assert_same(before: &[(String, Value)], after: &[(String, Value)]) {
    assert_eq!(before.len(), after.len());
    for ((key_a, a), (key_b, b)) in before.iter().zip(after) {
        assert_eq!(key_a, key_b);
        assert_close(a, b, key_a);
    }
}

fn assert_close(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: {a} vs {b}");
            x.iter().zip(y).for_each(|(x, y)| assert_close(x, y, at));
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{at}"
            );
            x.iter()
                .for_each(|(k, v)| assert_close(v, &y[k], &format!("{at}.{k}")));
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_answers_exactly_as_before() {
    // A half-life long enough that the test's own duration decays nothing.
    let s = TestServer::start_with(|c| c.recommend.trending_half_life_hours = 1e6).await;
    let items: Vec<Value> = (1..=12)
        .map(|i| {
            json!({
                "id": format!("n{i}"),
                "categories": if i % 3 == 0 { json!(["news"]) } else { json!(["sport"]) },
                "published_at": format!("2025-01-{i:02}T00:00:00Z"),
                "title": format!("Story {i}"),
            })
        })
        .collect();
    s.post("/v1/items", &Value::Array(items)).await.ok();
    s.post(
        "/v1/items",
        &json!([{"id": "gone"}, {"id": "secret", "hidden": true}]),
    )
    .await
    .ok();
    s.post(
        "/v1/users",
        &json!([{"id": "alice", "attributes": {"plan": "pro"}}, {"id": "dave"}]),
    )
    .await
    .ok();
    let mut events = Vec::new();
    for (i, user) in ["alice", "bob", "carol"].iter().enumerate() {
        for item in 1..=(4 + i * 2) {
            events.push(
                json!({"user_id": user, "item_id": format!("n{item}"), "type": "click",
                               "timestamp": format!("2025-02-01T00:{item:02}:00Z")}),
            );
        }
    }
    events.push(event("alice", "n9", "dislike"));
    events.push(event("bob", "secret", "like"));
    events.push(event("carol", "placeholder-item", "read"));
    s.post("/v1/events", &Value::Array(events)).await.ok();
    s.patch("/v1/items/n1", &json!({"hidden": true})).await.ok();
    s.patch(
        "/v1/items/n2",
        &json!({"expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await
    .ok();
    s.patch("/v1/users/dave", &json!({"attributes": {"region": "eu"}}))
        .await
        .ok();
    s.post(
        "/v1/events",
        &json!([
            event("dave", "gone", "click"),
            event("dave", "gone", "click")
        ]),
    )
    .await
    .ok();
    assert_eq!(s.delete("/v1/items/gone").await.status, 204);
    assert_eq!(s.delete("/v1/users/bob").await.status, 204);

    let before = snapshot(&s).await;
    assert!(before
        .iter()
        .any(|(k, v)| k.contains("/v1/recommend/alice")
            && !v["items"].as_array().unwrap().is_empty()));
    let s = s.restart().await;
    let after = snapshot(&s).await;
    assert_same(&before, &after);

    // And the reloaded server keeps working.
    s.post("/v1/events", &event("alice", "n12", "click"))
        .await
        .ok();
    let ids = s.get("/v1/recommend/alice?n=50").await.ids();
    assert!(!ids.contains(&"n12".to_owned()));
    let s = s.restart().await;
    let ids_again = s.get("/v1/recommend/alice?n=50").await.ids();
    assert_eq!(ids, ids_again);
}
