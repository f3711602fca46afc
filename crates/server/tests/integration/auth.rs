//! The API key on `/v1` routes.

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestServer, KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_routes_need_the_key_and_operations_do_not() {
    let s = TestServer::start_with(|c| c.server.api_key = Some(KEY.to_owned())).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", s.base);

    // The harness sends the right key.
    s.post("/v1/items", &json!({"id": "a"})).await.ok();
    assert_eq!(s.get("/v1/items/a").await.ok()["id"], "a");
    assert_eq!(s.get("/v1/recommend/u").await.ids(), ["a"]);

    let cases: [(Method, &str); 6] = [
        (Method::GET, "/v1/items/a"),
        (Method::GET, "/v1/items"),
        (Method::POST, "/v1/events"),
        (Method::GET, "/v1/popular"),
        (Method::GET, "/v1/recommend/u"),
        (Method::DELETE, "/v1/items/a"),
    ];
    for (method, path) in cases {
        let no_key = s.send(client.request(method.clone(), url(path))).await;
        no_key.assert_error(401, "unauthorized");
        assert_eq!(no_key.headers["www-authenticate"], "Bearer");
        let wrong = s
            .send(
                client
                    .request(method.clone(), url(path))
                    .bearer_auth("test-key-0123456780"),
            )
            .await;
        wrong.assert_error(401, "unauthorized");
        let basic = s
            .send(
                client
                    .request(method, url(path))
                    .basic_auth("user", Some(KEY)),
            )
            .await;
        basic.assert_error(401, "unauthorized");
    }
    // The refused DELETE did not delete.
    assert_eq!(s.get("/v1/items/a").await.ok()["id"], "a");

    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/assets/swagger-ui.css",
    ] {
        let reply = s.send(client.get(url(path))).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_key_everything_is_open() {
    let s = TestServer::start().await;
    let reply = s
        .send(reqwest::Client::new().get(format!("{}/v1/popular", s.base)))
        .await;
    assert_eq!(reply.status, 200);
}
