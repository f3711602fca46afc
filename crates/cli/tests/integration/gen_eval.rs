//! `tephra gen` and `tephra eval` end to end: generate a synthetic log, import
//! it, evaluate models on it.

use std::path::Path;

use crate::support::{run_err, run_ok, s};

/// Generates a small topic-structured log and returns its path.
fn generate(dir: &Path, seed: &str) -> String {
    let out = dir.join(format!("log-{seed}.csv"));
    let text = run_ok(&[
        "gen",
        "--users",
        "600",
        "--items",
        "300",
        "--events",
        "30000",
        "--topics",
        "12",
        "--seed",
        seed,
        "--out",
        s(&out),
    ]);
    assert!(text.contains("30,000 events"), "{text}");
    out.to_string_lossy().into_owned()
}

/// One model's table parsed from `eval` output: its header line and the rows
/// of figures by K.
struct Table {
    header: String,
    rows: Vec<Vec<f64>>,
}

fn tables(output: &str) -> Vec<Table> {
    let lines: Vec<&str> = output.lines().collect();
    let mut tables = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        if line.split_whitespace().next() != Some("K") {
            continue;
        }
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>(),
            [
                "K",
                "Recall",
                "Precision",
                "NDCG",
                "MAP",
                "MRR",
                "HitRate",
                "Coverage",
                "AvgPop"
            ],
            "{output}"
        );
        let rows = lines[k + 1..]
            .iter()
            .take_while(|l| !l.trim().is_empty())
            .map(|l| {
                l.split_whitespace()
                    .map(|v| v.parse::<f64>().unwrap_or_else(|_| panic!("{l}")))
                    .collect()
            })
            .collect();
        tables.push(Table {
            header: lines[k - 1].to_string(),
            rows,
        });
    }
    tables
}

fn ndcg_at_10(table: &Table) -> f64 {
    let row = table
        .rows
        .iter()
        .find(|r| r[0] == 10.0)
        .expect("a K=10 row");
    row[3]
}

#[test]
fn generated_logs_are_deterministic_and_importable() {
    let tmp = tempfile::tempdir().unwrap();
    let a = generate(tmp.path(), "5");
    let again = tmp.path().join("again.csv");
    run_ok(&[
        "gen",
        "--users",
        "600",
        "--items",
        "300",
        "--events",
        "30000",
        "--topics",
        "12",
        "--seed",
        "5",
        "--out",
        s(&again),
    ]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&again).unwrap());

    let data = tmp.path().join("data");
    let out = run_ok(&["import", "events", &a, "--data-dir", s(&data)]);
    assert!(out.contains("Imported 30,000 events"), "{out}");
}

#[test]
fn eval_prints_a_table_per_model_and_ease_beats_popularity() {
    let tmp = tempfile::tempdir().unwrap();
    let log = generate(tmp.path(), "11");
    let out = run_ok(&[
        "eval",
        "--dataset",
        &log,
        "--models",
        "popularity;ease:lambda=50",
        "--k",
        "5,10",
    ]);
    let tables = tables(&out);
    assert_eq!(tables.len(), 2, "{out}");
    assert!(tables[0].header.starts_with("popularity"), "{out}");
    assert!(tables[1].header.starts_with("ease:"), "{out}");
    for table in &tables {
        assert!(table.header.contains("train") && table.header.contains("peak memory"));
        let ks: Vec<f64> = table.rows.iter().map(|r| r[0]).collect();
        assert_eq!(ks, [5.0, 10.0], "{out}");
        for row in &table.rows {
            // Recall … Coverage are shares; AvgPop is a count of users.
            assert!(row[1..8].iter().all(|v| (0.0..=1.0).contains(v)), "{out}");
            assert!(row[8] >= 0.0);
        }
    }
    let (popularity, ease) = (ndcg_at_10(&tables[0]), ndcg_at_10(&tables[1]));
    assert!(
        ease > popularity * 1.2,
        "on topic-structured data EASE should clearly beat popularity: {out}"
    );
}

#[test]
fn tuning_reports_the_chosen_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let log = generate(tmp.path(), "3");
    let out = run_ok(&[
        "eval",
        "--dataset",
        &log,
        "--protocol",
        "leave-last-one",
        "--model",
        "ease:lambda=100",
        "--tune",
        "3",
        "--weighting",
        "recency:10",
    ]);
    assert!(out.contains("tuned on validation, chose ease:"), "{out}");
    assert_eq!(tables(&out).len(), 1, "{out}");
}

#[test]
fn tuning_a_blend_tunes_its_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let log = generate(tmp.path(), "4");
    let out = run_ok(&[
        "eval",
        "--dataset",
        &log,
        "--models",
        r#"{"kind":"blend","parts":[{"spec":{"kind":"popularity"},"weight":1},{"spec":{"kind":"ease","lambda":100},"weight":0.01}]}"#,
        "--tune",
        "6",
    ]);
    let chosen = out
        .lines()
        .find_map(|l| l.split_once("tuned on validation, chose "))
        .map(|(_, spec)| spec.to_owned())
        .unwrap_or_else(|| panic!("no choice reported: {out}"));
    let chosen: serde_json::Value = serde_json::from_str(&chosen).unwrap();
    let weights: Vec<f64> = chosen["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["weight"].as_f64().unwrap())
        .collect();
    // EASE ranks this data far better than popularity: the tuned blend leans
    // on it more than the deliberately poor starting weights did.
    assert!(weights[1] / weights[0] > 0.01, "{out}");
    assert_eq!(tables(&out).len(), 1, "{out}");
}

#[test]
fn bad_models_and_data_sets_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let log = generate(tmp.path(), "1");
    let err = run_err(&["eval", "--dataset", &log, "--models", "ease;nosuchmodel"]);
    assert!(err.contains("nosuchmodel"), "{err}");
    let err = run_err(&["eval", "--dataset", &log, "--models", "ease:lamda=3"]);
    assert!(err.contains("lamda"), "{err}");
    let missing = tmp.path().join("missing.csv");
    let err = run_err(&["eval", "--dataset", s(&missing), "--models", "ease"]);
    assert!(err.contains("missing.csv"), "{err}");
}
