//! `/v1/items`: create, read, update, delete, list.

use serde_json::json;

use crate::harness::{items, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_lifecycle() {
    let s = TestServer::start().await;
    let item = json!({
        "id": "book-1", "categories": ["books", "sf"], "tags": ["space"], "title": "Dune",
        "text": "Desert planet", "published_at": "2025-01-02T03:04:05Z", "attributes": {"price": 12.5}
    });
    assert_eq!(
        s.post("/v1/items", &item).await.ok(),
        &json!({"accepted": 1})
    );

    let got = s.get("/v1/items/book-1").await;
    let got = got.ok();
    assert_eq!(got["title"], "Dune");
    assert_eq!(got["categories"], json!(["books", "sf"]));
    assert_eq!(got["published_at"], "2025-01-02T03:04:05.000Z");
    assert_eq!(got["attributes"], json!({"price": 12.5}));
    assert_eq!(got["hidden"], false);

    let patched = s.patch("/v1/items/book-1", &json!({"title": "Dune Messiah", "hidden": true, "attributes": {"price": null, "pages": 256}})).await;
    let patched = patched.ok();
    assert_eq!(patched["title"], "Dune Messiah");
    assert_eq!(patched["hidden"], true);
    assert_eq!(patched["attributes"], json!({"pages": 256}));
    assert_eq!(
        patched["categories"],
        json!(["books", "sf"]),
        "absent fields stay"
    );
    assert_eq!(
        s.get("/v1/items/book-1").await.ok()["title"],
        "Dune Messiah"
    );

    let deleted = s.delete("/v1/items/book-1").await;
    assert_eq!(deleted.status, 204);
    assert!(deleted.text.is_empty());
    s.get("/v1/items/book-1")
        .await
        .assert_error(404, "not_found");
    s.delete("/v1/items/book-1")
        .await
        .assert_error(404, "not_found");
    s.patch("/v1/items/book-1", &json!({"title": "x"}))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_replaces_the_whole_item() {
    let s = TestServer::start().await;
    s.post(
        "/v1/items",
        &json!({"id": "a", "title": "old", "tags": ["t"]}),
    )
    .await
    .ok();
    s.post("/v1/items", &json!([{"id": "a", "title": "new"}]))
        .await
        .ok();
    let got = s.get("/v1/items/a").await;
    assert_eq!(got.ok()["title"], "new");
    assert_eq!(got.ok()["tags"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_every_item_in_id_order() {
    let s = TestServer::start().await;
    assert_eq!(
        s.post("/v1/items", &items("it", 25)).await.ok()["accepted"],
        25
    );
    assert_eq!(s.post("/v1/items", &json!([])).await.ok()["accepted"], 0);

    let mut seen = Vec::new();
    let mut path = "/v1/items?limit=10".to_owned();
    let mut pages = 0;
    loop {
        let page = s.get(&path).await;
        let body = page.ok();
        seen.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/items?limit=10&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("it{i:03}")).collect();
    assert_eq!(seen, expected);

    // Exactly one full page: no cursor pointing at an empty page.
    let all = s.get("/v1/items?limit=25").await;
    assert_eq!(all.ok()["items"].as_array().unwrap().len(), 25);
    assert!(all.ok()["next_cursor"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_slashes_and_unicode_round_trip_in_paths() {
    let s = TestServer::start().await;
    s.post("/v1/items", &json!({"id": "shelf/東京 1"}))
        .await
        .ok();
    let got = s.get("/v1/items/shelf%2F%E6%9D%B1%E4%BA%AC%201").await;
    assert_eq!(got.ok()["id"], "shelf/東京 1");
}
