//! `tephra train` on an imported log, then `tephra serve` answering with the
//! saved model.

use crate::support::{free_port, get, run_err, run_ok, s, write, Server};

/// Two groups of users with disjoint tastes: `a*` users click `x*` items,
/// `b*` users click `y*` items, each user five of ten items.
fn grouped_events() -> String {
    let mut csv = String::from("user_id,item_id,type,timestamp\n");
    let mut t = 1_700_000_000u64;
    for u in 0..12 {
        for j in 0..5 {
            for (user, item) in [("a", "x"), ("b", "y")] {
                t += 1;
                csv += &format!("{user}{u},{item}{},click,{t}\n", (u + 3 * j + u / 3) % 10);
            }
        }
    }
    csv
}

#[tokio::test]
async fn import_then_train_then_serve_answers_with_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let events = write(tmp.path(), "events.csv", grouped_events());
    run_ok(&["import", "events", &events, "--data-dir", s(&data)]);

    let report = run_ok(&["train", "--data-dir", s(&data)]);
    assert!(report.contains("trained seq_ease"), "{report}");
    assert!(report.contains("promoted"), "{report}");
    assert!(report.contains("NDCG@10"), "{report}");
    assert!(
        data.join("tenants/default/models/current.tephra").is_file(),
        "the model is saved in the data directory"
    );

    let port = free_port();
    let server = Server::start(
        &[
            "serve",
            "--data-dir",
            s(&data),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        port,
        &[("TEPHRA_TRAINING__ENABLED", "false")],
    )
    .await;
    let (status, model) = get(&format!("{}/v1/model", server.url), None).await;
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["origin"], "snapshot");
    assert_eq!(model["n_events"], 120);
    let (status, body) = get(&format!("{}/v1/recommend/a1?n=3", server.url), None).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{body}");
    for item in items {
        assert_eq!(item["source"], "collaborative", "{body}");
        assert!(item["id"].as_str().unwrap().starts_with('x'), "{body}");
    }
}

#[test]
fn another_model_can_be_asked_for_and_a_bad_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let events = write(tmp.path(), "events.csv", grouped_events());
    run_ok(&["import", "events", &events, "--data-dir", s(&data)]);
    let report = run_ok(&[
        "train",
        "--data-dir",
        s(&data),
        "--model",
        "ease:lambda=5",
        "--recency-half-life",
        "0",
    ]);
    assert!(report.contains("trained ease:"), "{report}");
    assert!(report.contains("history plain"), "{report}");

    let err = run_err(&["train", "--data-dir", s(&data), "--model", "deep_magic"]);
    assert!(err.contains("training.model"), "{err}");
    assert!(err.contains("unknown model `deep_magic`"), "{err}");
}

#[test]
fn training_an_empty_data_directory_says_there_is_nothing_to_learn() {
    let tmp = tempfile::tempdir().unwrap();
    let err = run_err(&["train", "--data-dir", s(&tmp.path().join("data"))]);
    assert!(err.contains("no positive events"), "{err}");
}
