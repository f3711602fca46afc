//! `/v1/popular`, `/v1/trending`, `/v1/latest`: order, filters, paging.

use serde_json::{json, Value};

use crate::harness::{event, TestServer};

/// a, b, c, d published a month apart; c has 3 clicks, b 2, a 1, d none; e is
/// hidden and f expired, both with many clicks.
async fn catalogue() -> TestServer {
    let s = TestServer::start().await;
    let items = json!([
        {"id": "a", "categories": ["x"], "published_at": "2025-01-01T00:00:00Z"},
        {"id": "b", "categories": ["x", "y"], "published_at": "2025-02-01T00:00:00Z"},
        {"id": "c", "categories": ["y"], "published_at": "2025-03-01T00:00:00Z"},
        {"id": "d", "categories": ["y", "x"], "published_at": "2025-04-01T00:00:00Z"},
        {"id": "e", "categories": ["x", "y"], "hidden": true, "published_at": "2025-05-01T00:00:00Z"},
        {"id": "f", "categories": ["x", "y"], "expires_at": "2001-01-01T00:00:00Z", "published_at": "2025-06-01T00:00:00Z"},
    ]);
    s.post("/v1/items", &items).await.ok();
    let mut events = Vec::new();
    for (item, clicks) in [("c", 3), ("b", 2), ("a", 1), ("e", 9), ("f", 9)] {
        for u in 0..clicks {
            events.push(event(&format!("fan-{u}"), item, "click"));
        }
    }
    s.post("/v1/events", &Value::Array(events)).await.ok();
    s
}

fn scores(reply: &crate::harness::Reply) -> Vec<f64> {
    reply.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["score"].as_f64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn popular_and_trending_rank_by_positive_events() {
    let s = catalogue().await;
    for route in ["/v1/popular", "/v1/trending"] {
        let reply = s.get(route).await;
        let ids = reply.ids();
        assert_eq!(&ids[..3], ["c", "b", "a"], "{route}");
        assert!(
            !ids.contains(&"e".to_owned()) && !ids.contains(&"f".to_owned()),
            "{route}: hidden or expired"
        );
        let s = scores(&reply);
        assert!(s[0] > s[1] && s[1] > s[2] && s[2] > 0.0, "{route}: {s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_ranks_by_publish_time() {
    let s = catalogue().await;
    let reply = s.get("/v1/latest").await;
    assert_eq!(reply.ids(), ["d", "c", "b", "a"]);
    assert_eq!(
        scores(&reply),
        [1743465600.0, 1740787200.0, 1738368000.0, 1735689600.0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_and_offset_page_through_the_ranking() {
    let s = catalogue().await;
    assert_eq!(s.get("/v1/latest?n=2").await.ids(), ["d", "c"]);
    assert_eq!(s.get("/v1/latest?n=2&offset=1").await.ids(), ["c", "b"]);
    assert_eq!(s.get("/v1/latest?offset=3").await.ids(), ["a"]);
    assert_eq!(s.get("/v1/popular?n=1&offset=1").await.ids(), ["b"]);
    assert!(s.get("/v1/latest?offset=10").await.ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_requested_category_must_match() {
    let s = catalogue().await;
    assert_eq!(s.get("/v1/latest?category=x").await.ids(), ["d", "b", "a"]);
    assert_eq!(
        s.get("/v1/latest?category=x&category=y").await.ids(),
        ["d", "b"]
    );
    let both = s.get("/v1/popular?category=y&category=x").await.ids();
    assert_eq!(both[0], "b");
    assert!(both.iter().all(|id| id == "b" || id == "d"), "{both:?}");
    assert_eq!(
        s.get("/v1/trending?category=y").await.ids()[..2],
        ["c", "b"]
    );
    assert!(s.get("/v1/latest?category=nope").await.ids().is_empty());
}
