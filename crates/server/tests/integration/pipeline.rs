//! The scene pipeline over HTTP: real-time personalization, pagination
//! sessions, `POST /v1/recommend`, `explain`, new-item fold-in, bad input.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::harness::{event, TestServer};

/// 40 users: `a*` read category `x`, `b*` read category `y`; 30 items each.
async fn two_tribes(s: &TestServer) {
    let mut items = Vec::new();
    for (prefix, category) in [("x", "x"), ("y", "y")] {
        for i in 0..30 {
            items.push(json!({"id": format!("{prefix}{i}"), "categories": [category]}));
        }
    }
    s.post("/v1/items", &Value::Array(items)).await.ok();
    let mut events = Vec::new();
    for u in 0..20 {
        for k in 0..8 {
            events.push(event(
                &format!("a{u}"),
                &format!("x{}", (u * 3 + k) % 30),
                "click",
            ));
            events.push(event(
                &format!("b{u}"),
                &format!("y{}", (u * 7 + k) % 30),
                "click",
            ));
        }
    }
    s.post("/v1/events", &Value::Array(events)).await.ok();
}

fn share(ids: &[String], prefix: char) -> f64 {
    ids.iter().filter(|i| i.starts_with(prefix)).count() as f64 / ids.len().max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_clicks_in_a_category_raise_its_share_in_the_next_feed() {
    let s = TestServer::start_with(|c| c.training.enabled = false).await;
    two_tribes(&s).await;
    s.post("/v1/admin/train", &json!({})).await.ok();
    let before = s.get("/v1/recommend/b3?n=10").await.ids();
    let x_before = share(&before, 'x');
    // b3 now reads x stories; no retraining happens in between.
    let clicks: Vec<Value> = (0..4)
        .map(|i| event("b3", &format!("x{}", i * 5), "click"))
        .collect();
    s.post("/v1/events", &Value::Array(clicks)).await.ok();
    let after = s.get("/v1/recommend/b3?n=10").await.ids();
    let x_after = share(&after, 'x');
    assert!(
        x_after > x_before,
        "share of x: {x_before} before, {x_after} after ({before:?} → {after:?})"
    );
    // A brand-new reader is personalized by the same route from the first click.
    s.post(
        "/v1/events",
        &json!([
            event("newbie", "y4", "click"),
            event("newbie", "y9", "click")
        ]),
    )
    .await
    .ok();
    let fresh = s.get("/v1/recommend/newbie?n=10").await.ids();
    assert!(share(&fresh, 'y') >= 0.8, "{fresh:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_one_request_id_never_repeat_an_item() {
    let s = TestServer::start_with(|c| c.training.enabled = false).await;
    two_tribes(&s).await;
    s.post("/v1/admin/train", &json!({})).await.ok();
    let first = s.get("/v1/recommend/a1?n=7").await;
    let request_id = first.ok()["request_id"].as_str().unwrap().to_owned();
    let mut seen: HashSet<String> = first.ids().into_iter().collect();
    assert_eq!(seen.len(), 7);
    for page in 0..6 {
        // Between pages the user clicks, which changes the ranking.
        if page == 2 {
            s.post("/v1/events", &json!(event("a1", "y3", "click")))
                .await
                .ok();
        }
        let reply = s
            .get(&format!("/v1/recommend/a1?n=7&request_id={request_id}"))
            .await;
        assert_eq!(reply.ok()["request_id"], request_id.as_str());
        for id in reply.ids() {
            assert!(seen.insert(id.clone()), "{id} repeats on page {page}");
        }
    }
    // POST continues the same kind of session.
    let post = s
        .post("/v1/recommend", &json!({"user_id": "a1", "n": 5}))
        .await;
    let rid = post.ok()["request_id"].as_str().unwrap().to_owned();
    let next = s
        .post(
            "/v1/recommend",
            &json!({"user_id": "a1", "n": 5, "request_id": rid}),
        )
        .await;
    let first: HashSet<String> = post.ids().into_iter().collect();
    assert!(
        next.ids().iter().all(|i| !first.contains(i)),
        "{}",
        next.text
    );

    // Misuse is refused with the parameter named.
    s.get(&format!("/v1/recommend/a2?request_id={request_id}"))
        .await
        .assert_error(400, "invalid_query")
        .assert_field("request_id");
    s.get(&format!(
        "/v1/recommend/a1?offset=3&request_id={request_id}"
    ))
    .await
    .assert_error(400, "invalid_query")
    .assert_field("offset");
    s.get("/v1/recommend/a1?request_id=never-issued")
        .await
        .assert_error(404, "not_found")
        .assert_field("request_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_sources_and_score_parts() {
    let s = TestServer::start_with(|c| c.training.enabled = false).await;
    two_tribes(&s).await;
    s.post("/v1/admin/train", &json!({})).await.ok();
    let reply = s.get("/v1/recommend/a2?n=5&explain=true").await;
    let body = reply.ok();
    assert_eq!(body["scene"], "home");
    assert_eq!(body["explain"]["ranker"], "blend");
    assert_eq!(body["explain"]["model"], "seq_ease");
    let first = &body["items"][0];
    let explain = &first["explain"];
    assert_eq!(explain["placement"], "ranked", "{}", reply.text);
    let sources = explain["sources"].as_array().unwrap();
    assert!(sources.contains(&json!("collaborative")), "{}", reply.text);
    let total: f64 = explain["contributions"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!(
        (total - first["score"].as_f64().unwrap()).abs() < 1e-6,
        "{}",
        reply.text
    );
    // Without explain, none of it.
    let plain = s.get("/v1/recommend/a2?n=5").await;
    assert!(plain.ok().get("explain").is_none());
    assert!(plain.ok()["items"][0].get("explain").is_none());
    // Similar items explain too.
    let similar = s.get("/v1/items/x1/similar?n=3&explain=1").await;
    assert_eq!(similar.ok()["scene"], "item_page");
    assert!(similar.ok()["items"][0]["explain"]["sources"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_session_candidates_and_filters_in_a_post() {
    let s = TestServer::start_with(|c| c.training.enabled = false).await;
    two_tribes(&s).await;
    s.post("/v1/admin/train", &json!({})).await.ok();
    let reply = s
        .post(
            "/v1/recommend",
            &json!({"events": [{"item_id": "y1"}, {"item_id": "y2", "event_type": "click"}], "n": 10}),
        )
        .await;
    let ids = reply.ids();
    assert!(!ids.contains(&"y1".to_owned()) && !ids.contains(&"y2".to_owned()));
    assert!(share(&ids, 'y') >= 0.8, "{}", reply.text);
    // Candidates only, with a category filter and an exclusion.
    let scene_reply = s
        .post(
            "/v1/recommend",
            &json!({
                "user_id": "a1", "n": 10,
                "candidates": ["x5", "y5", "x6", "nope"],
                "exclude": ["x6"],
                "filters": {"categories": ["x"]},
                "context": {"item_id": "x0"}
            }),
        )
        .await;
    let ids = scene_reply.ids();
    assert!(
        ids.iter()
            .all(|i| i.starts_with('x') && i != "x6" && i != "x0"),
        "{ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pipeline_requests_name_what_to_fix() {
    let s = TestServer::start_with(|c| c.training.enabled = false).await;
    two_tribes(&s).await;
    s.get("/v1/recommend/a1?scene=nope")
        .await
        .assert_error(404, "not_found")
        .assert_field("scene");
    s.get("/v1/recommend/a1?explain=maybe")
        .await
        .assert_error(400, "invalid_query")
        .assert_field("explain");
    let cases = [
        (json!({"n": 0}), 422, "n"),
        (json!({"n": 5000}), 422, "n"),
        (json!({"n": "ten"}), 422, "n"),
        (json!({"colour": 1}), 422, ""),
        (json!({"candidates": [""]}), 422, "candidates[0]"),
        (
            json!({"events": [{"item_id": "x1", "event_type": "teleport"}]}),
            422,
            "events[0].event_type",
        ),
        (
            json!({"events": [{"item_id": ""}]}),
            422,
            "events[0].item_id",
        ),
        (
            json!({"context": {"item_id": "missing"}}),
            404,
            "context.item_id",
        ),
        (json!({"scene": "nope"}), 404, "scene"),
        (json!({"request_id": "gone"}), 404, "request_id"),
    ];
    for (body, status, field) in cases {
        let reply = s.post("/v1/recommend", &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        if !field.is_empty() {
            assert_eq!(reply.field(), Some(field), "{body}: {}", reply.text);
        }
    }
    let reply = s.post_raw("/v1/recommend", "{\"n\": 3").await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    let reply = s.post_raw("/v1/recommend", vec![0xff, 0xfe]).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_item_gets_a_collaborative_vector_from_its_first_readers() {
    let s = TestServer::start_with(|c| {
        c.training.enabled = false;
        c.training.model = "ials:factors=16,iterations=10".to_owned();
    })
    .await;
    two_tribes(&s).await;
    s.post("/v1/admin/train", &json!({})).await.ok();
    s.post("/v1/items", &json!({"id": "scoop", "categories": ["x"]}))
        .await
        .ok();
    let has_scoop = |reply: &crate::harness::Reply| {
        reply.ok()["items"].as_array().unwrap().iter().any(|i| {
            i["id"] == "scoop"
                && i["explain"]["sources"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("collaborative"))
        })
    };
    let before = s.get("/v1/recommend/a9?n=40&explain=true").await;
    assert!(!has_scoop(&before), "{}", before.text);
    // Three x readers the model knows read it: it folds in as an x item.
    let reads: Vec<Value> = ["a1", "a2", "a3"]
        .iter()
        .map(|u| event(u, "scoop", "click"))
        .collect();
    s.post("/v1/events", &Value::Array(reads)).await.ok();
    let after = s.get("/v1/recommend/a9?n=40&explain=true").await;
    assert!(has_scoop(&after), "{}", after.text);
    let model = s.get("/v1/model").await;
    assert_eq!(
        model.ok()["recipe"]["spec"]["kind"],
        "ials",
        "{}",
        model.text
    );
    assert_eq!(model.ok()["retrieval"], "exact", "{}", model.text);
    assert_eq!(model.ok()["folded_in_items"], 1, "{}", model.text);
}

#[tokio::test]
async fn items_shown_again_and_again_without_a_click_give_way() {
    let s = TestServer::start_with(|c| {
        for scene in c.scenes.values_mut() {
            scene.impression_decay = 0.7;
        }
    })
    .await;
    two_tribes(&s).await;
    s.post("/v1/admin/train", &json!({})).await.ok();
    let first = s
        .get("/v1/recommend/a1?n=3&explain=true")
        .await
        .ok()
        .clone();
    let top = first["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(first["items"][0]["explain"]["shown"], 0, "{first}");
    // The user skips the top item three times.
    let impressions: Vec<Value> = (0..3)
        .map(|_| json!({"user_id": "a1", "item_id": top, "type": "impression"}))
        .collect();
    s.post("/v1/events", &Value::Array(impressions)).await.ok();
    let next = s
        .get("/v1/recommend/a1?n=10&explain=true")
        .await
        .ok()
        .clone();
    let items = next["items"].as_array().unwrap();
    let position = items.iter().position(|i| i["id"] == top.as_str());
    assert_ne!(position, Some(0), "{next}");
    if let Some(p) = position {
        assert_eq!(items[p]["explain"]["shown"], 3, "{next}");
    }
    // Fatigue is off by default.
    let s2 = TestServer::start().await;
    two_tribes(&s2).await;
    s2.post("/v1/admin/train", &json!({})).await.ok();
    let before = s2.get("/v1/recommend/a1?n=1").await.ok().clone();
    let top2 = before["items"][0]["id"].as_str().unwrap().to_owned();
    s2.post(
        "/v1/events",
        &json!([{"user_id": "a1", "item_id": top2, "type": "impression"}]),
    )
    .await
    .ok();
    assert_eq!(
        s2.get("/v1/recommend/a1?n=1").await.ok()["items"][0]["id"],
        top2.as_str()
    );
}
