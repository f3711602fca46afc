//! Attribution, analytics and A/B experiments over HTTP.

use serde_json::{json, Value};

use crate::harness::{event, items, TestServer};

/// A catalogue of 40 items and a few users with clicks, so that the model and
/// the popular list have something to say.
async fn seeded() -> TestServer {
    let s = TestServer::start().await;
    s.post("/v1/items", &items("i", 40)).await.ok();
    let mut events = Vec::new();
    for u in 0..20 {
        for k in 0..5 {
            events.push(event(
                &format!("u{u}"),
                &format!("i{:03}", (u + k * 3) % 40),
                "click",
            ));
        }
    }
    s.post("/v1/events", &Value::Array(events)).await.ok();
    s
}

/// Shows `n` recommendations to `user` and acknowledges them as impressions;
/// clicks the first `clicks` of them. Returns the response.
async fn show_and_click(s: &TestServer, user: &str, n: usize, clicks: usize) -> Value {
    let answer = s
        .get(&format!("/v1/recommend/{user}?n={n}"))
        .await
        .ok()
        .clone();
    let request_id = answer["request_id"].as_str().unwrap().to_owned();
    let ids: Vec<String> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let mut events: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(position, id)| {
            json!({"user_id": user, "item_id": id, "type": "impression",
                   "request_id": request_id, "position": position})
        })
        .collect();
    // Clicks name the request but not the position: the server fills it in.
    events.extend(ids.iter().take(clicks).map(
        |id| json!({"user_id": user, "item_id": id, "type": "click", "request_id": request_id}),
    ));
    s.post("/v1/events", &Value::Array(events)).await.ok();
    answer
}

#[tokio::test]
async fn events_are_attributed_to_the_response_that_showed_their_item() {
    let s = seeded().await;
    let answer = show_and_click(&s, "u1", 5, 2).await;
    let first = answer["items"][0]["id"].as_str().unwrap();
    let source = answer["items"][0]["source"].as_str().unwrap();

    // The stored click carries the scene, the position and the source.
    let history = s
        .get("/v1/users/u1/events?type=click&limit=2")
        .await
        .ok()
        .clone();
    let click = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["item_id"] == first)
        .expect("the click is stored")
        .clone();
    assert_eq!(click["scene"], "home", "{click}");
    assert_eq!(click["position"], 0, "{click}");
    assert_eq!(click["attribution"]["source"], source, "{click}");

    let ctr = s.get("/v1/analytics/ctr?by=scene").await.ok().clone();
    let home = &ctr["rows"][0];
    assert_eq!(
        (
            home["key"].as_str(),
            home["impressions"].as_u64(),
            home["clicks"].as_u64()
        ),
        (Some("home"), Some(5), Some(2)),
        "{ctr}"
    );
    assert!((home["ctr"].as_f64().unwrap() - 0.4).abs() < 1e-9);
    assert!(home["ci_low"].as_f64().unwrap() < 0.4 && home["ci_high"].as_f64().unwrap() > 0.4);
    let last = ctr["series"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (last["impressions"].as_u64(), last["clicks"].as_u64()),
        (Some(5), Some(2))
    );

    let by_source = s.get("/v1/analytics/ctr?by=source").await.ok().clone();
    let sources: u64 = by_source["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["impressions"].as_u64().unwrap())
        .sum();
    assert_eq!(sources, 5, "{by_source}");

    // A client cannot forge the attribution; an unknown request id attributes nothing.
    s.post(
        "/v1/events",
        &json!([{"user_id": "u2", "item_id": "i001", "type": "click",
        "request_id": "no-such-request", "attribution": {"source": "popular"}}]),
    )
    .await
    .ok();
    let forged = s
        .get("/v1/users/u2/events?type=click&limit=1")
        .await
        .ok()
        .clone();
    assert!(forged["events"][0].get("attribution").is_none(), "{forged}");

    let events = s
        .get("/v1/analytics/events?interval=day")
        .await
        .ok()
        .clone();
    let today = events["buckets"].as_array().unwrap().last().unwrap();
    assert_eq!(today["counts"]["impression"], 5, "{events}");
    assert_eq!(today["counts"]["click"], 100 + 2 + 1, "{events}");
    assert_eq!(events["buckets"].as_array().unwrap().len(), 30);

    let top = s
        .get("/v1/analytics/top-items?type=impression&n=3")
        .await
        .ok()
        .clone();
    assert_eq!(top["items"].as_array().unwrap().len(), 3, "{top}");
    assert_eq!(top["items"][0]["count"], 1);

    let coverage = s.get("/v1/analytics/coverage").await.ok().clone();
    assert_eq!(coverage["catalogue_items"], 40, "{coverage}");
    assert_eq!(coverage["impressed_items"], 5, "{coverage}");
    assert_eq!(coverage["recommended_items"], 5, "{coverage}");

    let users = s.get("/v1/analytics/users").await.ok().clone();
    let today = users["buckets"].as_array().unwrap().last().unwrap();
    assert_eq!(today["new"], 20, "{users}");

    // The aggregates are rebuilt from the log after a restart.
    let s = s.restart().await;
    let again = s.get("/v1/analytics/ctr?by=scene").await.ok().clone();
    assert_eq!(again["rows"], ctr["rows"]);
}

#[tokio::test]
async fn analytics_queries_refuse_bad_parameters() {
    let s = TestServer::start().await;
    for (path, param) in [
        ("/v1/analytics/events?interval=week", "interval"),
        ("/v1/analytics/events?from=yesterday", "from"),
        (
            "/v1/analytics/events?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
        ("/v1/analytics/events?from=1990-01-01T00:00:00Z", "from"),
        ("/v1/analytics/ctr?by=colour", "by"),
        ("/v1/analytics/top-items?type=teleport", "type"),
        ("/v1/analytics/top-items?n=0", "n"),
        ("/v1/analytics/coverage?x=1", "x"),
        ("/v1/analytics/users?interval=hour&interval=day", "interval"),
        ("/v1/analytics/users?interval=hour", "interval"),
    ] {
        s.get(path)
            .await
            .assert_error(400, "invalid_query")
            .assert_field(param);
    }
}

fn experiment(name: &str) -> Value {
    json!({
        "name": name,
        "scene": "home",
        "start": true,
        "variants": [
            {"name": "popularity", "weight": 1, "overrides": {"recall": [{"source": "popular", "quota": 100}]}},
            {"name": "personalized", "weight": 1}
        ]
    })
}

#[tokio::test]
async fn experiments_split_users_and_report_results() {
    let s = seeded().await;
    let created = s.post("/v1/experiments", &experiment("feed")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["status"], "running");
    assert_eq!(created.body["control"], "popularity");

    let mut seen = std::collections::BTreeMap::new();
    for u in 0..20 {
        let user = format!("u{u}");
        let answer = show_and_click(&s, &user, 4, 1 + u % 2).await;
        let variant = answer["experiment"]["variant"].as_str().unwrap().to_owned();
        assert_eq!(answer["experiment"]["name"], "feed");
        // The control answers from the popular list only.
        if variant == "popularity" {
            assert!(
                answer["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|i| i["source"] == "popular"),
                "{answer}"
            );
        }
        // A user keeps their variant.
        let again = s
            .get(&format!("/v1/recommend/{user}?n=1"))
            .await
            .ok()
            .clone();
        assert_eq!(again["experiment"]["variant"], variant.as_str());
        *seen.entry(variant).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both variants get users: {seen:?}");

    let results = s.get("/v1/experiments/feed/results").await.ok().clone();
    let variants = results["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    let users: u64 = variants.iter().map(|v| v["users"].as_u64().unwrap()).sum();
    assert_eq!(users, 20, "{results}");
    for v in variants {
        assert_eq!(
            v["impressions"].as_u64().unwrap(),
            4 * v["users"].as_u64().unwrap()
        );
        let ctr = v["clicks"].as_f64().unwrap() / v["impressions"].as_f64().unwrap();
        assert!(
            (v["ctr"]["value"].as_f64().unwrap() - ctr).abs() < 1e-9,
            "{v}"
        );
        assert!(v["ctr"]["ci_low"].as_f64().unwrap() < ctr, "{v}");
    }
    assert!(variants[0]["vs_control"].is_null());
    assert!(variants[1]["vs_control"]["ctr"].is_object(), "{results}");
    assert!(results["srm"]["p_value"].as_f64().unwrap() > 0.0);
    let by_variant = s.get("/v1/analytics/ctr?by=variant").await.ok().clone();
    assert_eq!(
        by_variant["rows"].as_array().unwrap().len(),
        2,
        "{by_variant}"
    );

    // Only one experiment runs on a scene.
    s.post("/v1/experiments", &experiment("feed-2"))
        .await
        .assert_error(409, "conflict")
        .assert_field("scene");
    s.post("/v1/experiments", &experiment("feed"))
        .await
        .assert_error(409, "conflict")
        .assert_field("name");
    let mut draft = experiment("feed-2");
    draft["start"] = json!(false);
    assert_eq!(
        s.post("/v1/experiments", &draft).await.body["status"],
        "draft"
    );
    s.post("/v1/experiments/feed-2/start", &json!({}))
        .await
        .assert_error(409, "conflict");
    s.delete("/v1/experiments/feed")
        .await
        .assert_error(409, "conflict");

    // Stopped: the scene answers with its own settings again; results stay.
    let stopped = s
        .post("/v1/experiments/feed/stop", &json!({}))
        .await
        .ok()
        .clone();
    assert_eq!(stopped["status"], "stopped");
    assert!(s
        .get("/v1/recommend/u1?n=2")
        .await
        .ok()
        .get("experiment")
        .is_none());
    assert_eq!(
        s.get("/v1/experiments").await.ok()["experiments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Definitions and results survive a restart.
    let s = s.restart().await;
    assert_eq!(
        s.get("/v1/experiments/feed").await.ok()["status"],
        "stopped"
    );
    let after = s.get("/v1/experiments/feed/results").await.ok().clone();
    assert_eq!(after["variants"], results["variants"]);
    let started = s
        .post("/v1/experiments/feed-2/start", &json!({}))
        .await
        .ok()
        .clone();
    assert_eq!(started["status"], "running");
    let answer = s.get("/v1/recommend/u1?n=2").await.ok().clone();
    assert_eq!(answer["experiment"]["name"], "feed-2");
    s.post("/v1/experiments/feed-2/stop", &json!({})).await.ok();
    assert_eq!(s.delete("/v1/experiments/feed-2").await.status, 204);
    s.get("/v1/experiments/feed-2")
        .await
        .assert_error(404, "not_found");
    // A deleted experiment's name is not reused while its events are stored.
    assert_eq!(s.delete("/v1/experiments/feed").await.status, 204);
    s.post("/v1/experiments", &experiment("feed"))
        .await
        .assert_error(409, "conflict")
        .assert_field("name");
    // Requests without a user are answered by the scene itself.
    s.post("/v1/experiments", &experiment("feed-3")).await.ok();
    let anonymous = s
        .post(
            "/v1/recommend",
            &json!({"events": [{"item_id": "i001"}], "n": 3}),
        )
        .await
        .ok()
        .clone();
    assert!(anonymous.get("experiment").is_none(), "{anonymous}");
    let similar = s
        .get("/v1/items/i001/similar?n=3&scene=home")
        .await
        .ok()
        .clone();
    assert!(similar.get("experiment").is_none(), "{similar}");
    s.get("/v1/experiments/nope/results")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn bad_experiment_definitions_name_the_field() {
    let s = TestServer::start().await;
    let cases = [
        (
            json!({"name": "x", "scene": "nowhere", "variants": [{"name": "a"}, {"name": "b"}]}),
            "scene",
        ),
        (
            json!({"name": "x", "scene": "home", "variants": [{"name": "a"}]}),
            "variants",
        ),
        (
            json!({"name": "bad name", "scene": "home", "variants": [{"name": "a"}, {"name": "b"}]}),
            "name",
        ),
        (
            json!({"name": "x", "scene": "home", "variants": [{"name": "a"}, {"name": "b", "weight": -1}]}),
            "variants[1].weight",
        ),
        (
            json!({"name": "x", "scene": "home", "variants": [{"name": "a"}, {"name": "b",
            "overrides": {"recall": [{"source": "telepathy"}]}}]}),
            "variants[1].overrides.recall[0].source",
        ),
        (
            json!({"name": "x", "scene": "home", "colour": "red", "variants": []}),
            "colour",
        ),
        (
            json!({"name": "x", "scene": "home", "variants": [{"name": "a", "weight": "heavy"}, {"name": "b"}]}),
            "variants[0].weight",
        ),
    ];
    for (body, field) in cases {
        let reply = s.post("/v1/experiments", &body).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text);
        assert!(
            reply.field().unwrap_or("").starts_with(field),
            "{body}: {}",
            reply.text
        );
    }
    s.post_raw("/v1/experiments", "{\"name\": ")
        .await
        .assert_error(400, "malformed_json");
    assert!(s.get("/v1/experiments").await.ok()["experiments"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn training_runs_are_listed_in_the_history() {
    let s = seeded().await;
    assert!(s.get("/v1/model/history").await.ok()["runs"]
        .as_array()
        .unwrap()
        .is_empty());
    s.post("/v1/admin/train", &json!({})).await.ok();
    let history = s.get("/v1/model/history").await.ok().clone();
    let run = &history["runs"][0];
    assert_eq!(run["promoted"], true, "{history}");
    assert!(
        run["candidate_holdout"]["ndcg_at_10"].is_number(),
        "{history}"
    );
    assert!(run["finished_at"].is_string(), "{history}");
    // The history is kept with the data directory.
    let s = s.restart().await;
    let again = s.get("/v1/model/history").await.ok().clone();
    assert_eq!(again["runs"], history["runs"]);
}

#[tokio::test]
async fn bad_positions_are_refused_and_lose_nothing() {
    let s = TestServer::start().await;
    s.post("/v1/items", &items("i", 3)).await.ok();
    let good = json!({"user_id": "u", "item_id": "i000", "type": "impression", "position": 0});
    for (bad, code) in [
        (json!(-1), "invalid_field"),
        (json!("first"), "invalid_field"),
        (json!(1.5), "invalid_field"),
        (json!(1_000_000_000), "invalid_value"),
    ] {
        let mut event = good.clone();
        event["position"] = bad.clone();
        let reply = s.post("/v1/events", &json!([good, event])).await;
        assert_eq!(reply.status, 422, "{bad}: {}", reply.text);
        assert_eq!(reply.code(), code, "{bad}: {}", reply.text);
        assert_eq!(reply.field(), Some("[1].position"), "{bad}: {}", reply.text);
    }
    // Nothing of the refused batches was stored or counted.
    s.get("/v1/users/u/events")
        .await
        .assert_error(404, "not_found");
    let events = s
        .get("/v1/analytics/events?interval=day")
        .await
        .ok()
        .clone();
    let today = events["buckets"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(today["counts"]["impression"], 0, "{events}");
}
