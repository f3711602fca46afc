//! The trained model: training on demand, serving its ranking, similar items and
//! a hot swap under load.

use std::collections::HashMap;

use serde_json::{json, Value};
use tephra_core::Timestamp;
use tephra_models::registry::{fit, TrainingData};
use tephra_models::{weighted_history, Recommender};
use tephra_server::model_manager::ModelRecipe;
use tephra_server::pipeline::scene::{RecallSpec, SourceKind};
use tephra_server::Config;

use crate::harness::TestServer;

/// Users per group and items per group.
const USERS: usize = 12;
const ITEMS: usize = 10;
/// Events per user.
const PER_USER: usize = 5;

/// Two groups with disjoint items: user `a{u}` clicks items `x{(u + 3j + u/3) % 10}`
/// and user `b{u}` items `y{...}`, at increasing times. Returned in log order
/// as `(user, item, timestamp ms)`.
fn grouped_log() -> Vec<(String, String, i64)> {
    let mut log = Vec::new();
    let mut t = 1_700_000_000_000i64;
    for u in 0..USERS {
        for j in 0..PER_USER {
            for (user, item) in [("a", "x"), ("b", "y")] {
                t += 1000;
                log.push((
                    format!("{user}{u}"),
                    format!("{item}{}", (u + 3 * j + u / 3) % ITEMS),
                    t,
                ));
            }
        }
    }
    log
}

fn as_events(log: &[(String, String, i64)]) -> Value {
    Value::Array(
        log.iter()
            .map(|(u, i, t)| {
                json!({"user_id": u, "item_id": i, "type": "click",
                       "timestamp": Timestamp::from_millis(*t)})
            })
            .collect(),
    )
}

/// No background training, so every run in these tests is the one they ask for.
fn manual_training(config: &mut Config) {
    config.training.enabled = false;
    // The model's own ranking, so tests can compare it with a refit: the
    // default feed also blends in neighbour and trending sources.
    config.scenes.get_mut("home").unwrap().recall = vec![RecallSpec {
        source: SourceKind::Collaborative,
        quota: 200,
        weight: 1.0,
        recent: 1,
    }];
}

async fn trained_server() -> (TestServer, Vec<(String, String, i64)>) {
    let s = TestServer::start_with(manual_training).await;
    let log = grouped_log();
    s.post("/v1/events", &as_events(&log)).await.ok();
    let outcome = s.post("/v1/admin/train", &json!({})).await;
    assert_eq!(outcome.ok()["promoted"], true, "{}", outcome.text);
    (s, log)
}

/// What the model must answer for `user`: the configured model fitted by the
/// test on `log` through the registry (items numbered on first sight, as the
/// server numbers them), scoring the user's weighted history in `current` (the
/// log the server has now), positive scores only, seen items excluded.
fn expected_ranking(
    log: &[(String, String, i64)],
    current: &[(String, String, i64)],
    user: &str,
    config: &Config,
) -> Vec<String> {
    let mut users: HashMap<&str, u32> = HashMap::new();
    let mut items: HashMap<&str, u32> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut sequences: Vec<Vec<(u32, i64)>> = Vec::new();
    for (u, i, t) in log {
        let n_users = users.len() as u32;
        let u = *users.entry(u).or_insert(n_users);
        if u as usize == sequences.len() {
            sequences.push(Vec::new());
        }
        let n_items = items.len() as u32;
        let i = *items.entry(i).or_insert_with(|| {
            names.push(i);
            n_items
        });
        sequences[u as usize].push((i, *t));
    }
    let recipe = ModelRecipe::from_settings(&config.training, items.len()).unwrap();
    let data = TrainingData::from_sequences(items.len(), sequences).unwrap();
    let model = fit(&recipe.spec, &data).unwrap();
    let timeline: Vec<u32> = current
        .iter()
        .filter(|(u, _, _)| u == user)
        .map(|(_, i, _)| items[i.as_str()])
        .collect();
    let history = weighted_history(timeline, recipe.weighting);
    let mut scores = vec![0.0; model.n_items()];
    model.score(&history, &mut scores);
    let mut ranked: Vec<(u32, f32)> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u32, s))
        .filter(|&(i, s)| s > 0.0 && !history.iter().any(|h| h.0 == i))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .map(|(i, _)| names[i as usize].to_owned())
        .collect()
}

fn sources(reply: &crate::harness::Reply) -> Vec<String> {
    reply.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["source"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommend_serves_the_models_ranking_then_the_fallback() {
    let (s, log) = trained_server().await;
    let config = Config::default();
    for user in ["a0", "a5", "b3"] {
        let expected = expected_ranking(&log, &log, user, &config);
        assert!(!expected.is_empty());
        let reply = s.get(&format!("/v1/recommend/{user}?n=10")).await;
        let ids = reply.ids();
        let sources = sources(&reply);
        let model_ids: Vec<String> = ids
            .iter()
            .zip(&sources)
            .filter(|(_, s)| *s == "collaborative")
            .map(|(i, _)| i.clone())
            .collect();
        assert_eq!(model_ids, expected, "{user}: {}", reply.text);
        assert_eq!(&ids[..model_ids.len()], &model_ids[..], "model items first");
        let group = if user.starts_with('a') { 'x' } else { 'y' };
        assert!(model_ids.iter().all(|i| i.starts_with(group)), "{ids:?}");
        assert!(sources[model_ids.len()..]
            .iter()
            .all(|s| s != "collaborative"));
    }
    // Unknown users get the fallback chain only.
    let reply = s.get("/v1/recommend/stranger?n=5").await;
    assert!(
        sources(&reply).iter().all(|s| s != "collaborative"),
        "{}",
        reply.text
    );

    let model = s.get("/v1/model").await;
    assert_eq!(model.ok()["n_items"], 2 * ITEMS, "{}", model.text);
    assert_eq!(model.ok()["n_events"], log.len(), "{}", model.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_event_changes_the_next_recommendation() {
    let (s, mut log) = trained_server().await;
    let before = s.get("/v1/recommend/a0?n=3").await.ids();
    let clicked = before[0].clone();
    let t = log.last().map_or(0, |e| e.2) + 1000;
    log.push(("a0".to_owned(), clicked.clone(), t));
    s.post("/v1/events", &as_events(&log[log.len() - 1..]))
        .await
        .ok();
    let after = s.get("/v1/recommend/a0?n=10").await;
    assert!(!after.ids().contains(&clicked), "{}", after.text);
    // The model is not retrained, but the history it scores now has the click.
    let expected = expected_ranking(&log[..log.len() - 1], &log, "a0", &Config::default());
    let model_ids: Vec<String> = after
        .ids()
        .into_iter()
        .zip(sources(&after))
        .filter(|(_, s)| s == "collaborative")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(model_ids, expected, "{}", after.text);
    assert!(model_ids.iter().all(|i| i.starts_with('x')));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_items_come_from_the_items_group() {
    let s = TestServer::start_with(manual_training).await;
    s.post("/v1/events", &as_events(&grouped_log())).await.ok();
    // Before training: popular items (no categories, so any item).
    let before = s.get("/v1/items/x1/similar?n=5").await;
    assert!(
        sources(&before).iter().all(|s| s == "popular"),
        "{}",
        before.text
    );
    assert!(!before.ids().contains(&"x1".to_owned()));
    s.post("/v1/admin/train", &json!({})).await.ok();

    let reply = s.get("/v1/items/x1/similar?n=20").await;
    let ids = reply.ids();
    let sources = sources(&reply);
    assert_eq!(sources[0], "item_to_item", "{}", reply.text);
    for (id, source) in ids.iter().zip(&sources) {
        assert_ne!(id, "x1");
        if source == "item_to_item" {
            assert!(id.starts_with('x'), "{}", reply.text);
        }
    }
    s.get("/v1/items/nope/similar")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraining_under_load_drops_no_request() {
    let (s, log) = trained_server().await;
    let s = std::sync::Arc::new(s);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..4 {
        let (s, stop) = (s.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || ok == 0 {
                let reply = s.get(&format!("/v1/recommend/a{r}?n=5")).await;
                if reply.status == 200 && reply.ids().len() == 5 {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        }));
    }
    for _ in 0..3 {
        s.post("/v1/events", &as_events(&log[..4])).await.ok();
        let outcome = s.post("/v1/admin/train", &json!({})).await;
        assert_eq!(outcome.ok()["promoted"], true, "{}", outcome.text);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        let (ok, failed) = reader.await.unwrap();
        assert!(ok > 0);
        assert_eq!(failed, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_training_starts_after_enough_events_and_on_restart() {
    let s = TestServer::start_with(|c| c.training.min_new_events = 10).await;
    s.get("/v1/model").await.assert_error(404, "not_found");
    s.post("/v1/events", &as_events(&grouped_log())).await.ok();
    let model = wait_for_model(&s).await;
    assert_eq!(model["n_events"], 2 * USERS * PER_USER);
    let s = s.restart().await;
    wait_for_model(&s).await;
    let reply = s.get("/v1/recommend/a1?n=3").await;
    assert_eq!(sources(&reply)[0], "collaborative", "{}", reply.text);
}

/// Polls `/v1/model` until a model is promoted (the loop checks every 2 s).
async fn wait_for_model(s: &TestServer) -> Value {
    for _ in 0..300 {
        let reply = s.get("/v1/model").await;
        if reply.status == 200 {
            return reply.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no model was trained in the background");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_promoted_model_is_saved_and_served_again_after_a_restart() {
    let (s, log) = trained_server().await;
    let before = s.get("/v1/recommend/a2?n=10").await;
    let trained = s.get("/v1/model").await;
    assert_eq!(trained.ok()["origin"], "trained", "{}", trained.text);
    assert_eq!(trained.ok()["recipe"]["spec"]["kind"], "seq_ease");
    let s = s.restart().await;
    let model = s.get("/v1/model").await;
    assert_eq!(model.ok()["origin"], "snapshot", "{}", model.text);
    assert_eq!(model.ok()["n_events"], log.len());
    assert_eq!(model.ok()["holdout"], trained.ok()["holdout"]);
    let after = s.get("/v1/recommend/a2?n=10").await;
    assert_eq!(after.ids(), before.ids(), "{}", after.text);
    assert_eq!(sources(&after)[0], "collaborative");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_is_not_served_and_the_next_run_replaces_it() {
    let (s, _) = trained_server().await;
    let path = tephra_server::snapshot_path(s.config(), "default");
    let mut bytes = std::fs::read(&path).expect("the snapshot was written");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let s = s.restart().await;
    s.get("/v1/model").await.assert_error(404, "not_found");
    let reply = s.get("/v1/recommend/a2?n=5").await;
    assert!(
        sources(&reply).iter().all(|s| s != "collaborative"),
        "{}",
        reply.text
    );
    let outcome = s.post("/v1/admin/train", &json!({})).await;
    assert_eq!(outcome.ok()["promoted"], true, "{}", outcome.text);
    let s = s.restart().await;
    assert_eq!(s.get("/v1/model").await.ok()["origin"], "snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_other_items_is_not_served() {
    let (s, _) = trained_server().await;
    let path = tephra_server::snapshot_path(s.config(), "default");
    let saved = std::fs::read(&path).unwrap();
    let (dir, data_dir, config) = s.stop().await;
    // A fresh data directory whose items have other ids, with the old snapshot.
    let other = tempfile::tempdir().unwrap();
    let mut config = config;
    config.data_dir = other.path().to_owned();
    {
        let s = TestServer::start_in(other.path(), config.clone()).await;
        let events: Vec<(String, String, i64)> = grouped_log()
            .into_iter()
            .map(|(u, i, t)| (u, format!("other-{i}"), t))
            .collect();
        s.post("/v1/events", &as_events(&events)).await.ok();
        s.stop().await;
    }
    let copy = tephra_server::snapshot_path(&config, "default");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::write(&copy, saved).unwrap();
    let s = TestServer::start_in(other.path(), config).await;
    s.get("/v1/model").await.assert_error(404, "not_found");
    drop((dir, data_dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_item_is_similar_by_content_at_once() {
    let s = TestServer::start_with(manual_training).await;
    let items = json!([
        {"id": "ev-1", "title": "Electric car battery prices fall", "categories": ["cars"]},
        {"id": "chip-1", "title": "Chip makers race to 2nm", "categories": ["chips"]},
        {"id": "robot-1", "title": "Robots learn to fold laundry", "categories": ["robots"]},
    ]);
    s.post("/v1/items", &items).await.ok();
    let before = s.get("/v1/items/chip-1/similar?n=5").await;
    assert!(
        sources(&before).iter().all(|s| s != "content"),
        "nothing shares a word yet: {}",
        before.text
    );
    s.post(
        "/v1/items",
        &json!({"id": "chip-2", "title": "New 2nm chip fabs announced", "tags": ["fabs"]}),
    )
    .await
    .ok();
    let after = s.get("/v1/items/chip-1/similar?n=5").await;
    assert_eq!(after.ids()[0], "chip-2", "{}", after.text);
    assert_eq!(sources(&after)[0], "content");
    let back = s.get("/v1/items/chip-2/similar?n=5").await;
    assert_eq!(back.ids()[0], "chip-1", "{}", back.text);

    // Hidden and deleted items are never similar.
    s.post(
        "/v1/items",
        &json!({"id": "chip-2", "title": "New 2nm chip fabs announced", "hidden": true}),
    )
    .await
    .ok();
    let hidden = s.get("/v1/items/chip-1/similar?n=5").await;
    assert!(
        !hidden.ids().contains(&"chip-2".to_owned()),
        "{}",
        hidden.text
    );
    s.delete("/v1/items/chip-2").await;
    let deleted = s.get("/v1/items/chip-1/similar?n=5").await;
    assert!(
        !deleted.ids().contains(&"chip-2".to_owned()),
        "{}",
        deleted.text
    );
}
