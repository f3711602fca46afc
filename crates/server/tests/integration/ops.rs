//! Health, readiness, metrics, the OpenAPI description and the docs page.

use serde_json::json;

use crate::harness::{event, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let s = TestServer::start().await;
    assert_eq!(s.get("/healthz").await.ok(), &json!({"status": "ok"}));
    s.post("/v1/items", &json!([{"id": "a"}, {"id": "b"}]))
        .await
        .ok();
    s.post("/v1/events", &event("u", "a", "click")).await.ok();
    let ready = s.get("/readyz").await;
    assert_eq!(
        ready.ok(),
        &json!({"status": "ready", "items": 2, "users": 1, "events": 1})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_per_route() {
    let s = TestServer::start().await;
    s.get("/v1/items/missing").await;
    s.post("/v1/events", &event("u", "a", "click")).await.ok();
    let reply = s.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = &reply.text;
    let has = |needle: &str| {
        text.lines()
            .any(|l| l.starts_with("tephra_http_requests_total") && l.contains(needle))
    };
    assert!(
        has(r#"route="/v1/items/{id}""#) && has(r#"status="404""#),
        "{text}"
    );
    assert!(has(r#"route="/v1/events""#), "{text}");
    assert!(
        text.contains("tephra_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("tephra_events_ingested_total"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("tephra_items ")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("tephra_users ")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let s = TestServer::start().await;
    let reply = s.get("/openapi.json").await;
    let spec = reply.ok();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    let expected: [(&str, &[&str]); 13] = [
        ("/v1/items", &["get", "post"]),
        ("/v1/items/{id}", &["get", "patch", "delete"]),
        ("/v1/users", &["get", "post"]),
        ("/v1/users/{id}", &["get", "patch", "delete"]),
        ("/v1/users/{id}/events", &["get"]),
        ("/v1/events", &["post"]),
        ("/v1/popular", &["get"]),
        ("/v1/trending", &["get"]),
        ("/v1/latest", &["get"]),
        ("/v1/recommend/{user_id}", &["get"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
    ];
    for (path, methods) in expected {
        for method in methods {
            assert!(paths[path][*method].is_object(), "{method} {path} missing");
        }
    }
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for schema in ["Item", "User", "Event", "ErrorBody", "Recommendations"] {
        assert!(schemas.contains_key(schema), "{schema}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_and_its_assets_load() {
    let s = TestServer::start().await;
    let page = s.get("/docs").await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text.contains("/openapi.json"));
    for (asset, content_type) in [
        ("swagger-ui-bundle.js", "application/javascript"),
        ("swagger-ui.css", "text/css"),
        ("LICENSE", "text/plain"),
        ("NOTICE", "text/plain"),
    ] {
        assert!(page.text.contains(asset) || content_type == "text/plain");
        let reply = s.get(&format!("/docs/assets/{asset}")).await;
        assert_eq!(reply.status, 200, "{asset}");
        assert!(
            reply.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{asset}"
        );
        assert!(reply.text.len() > 50, "{asset}");
    }
    s.get("/docs/assets/secret.txt")
        .await
        .assert_error(404, "not_found");
}
