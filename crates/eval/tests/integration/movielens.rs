//! The standard protocol on MovieLens-100K, checked against the reference
//! script's figures. Runs only when the data set was fetched into the ignored
//! `.cache` folder at the workspace root; otherwise it says so and passes.

use std::path::PathBuf;

use tephra_eval::{evaluate, EvalOptions, HistoryWeighting, Log, Protocol, Sequences};
use tephra_models::ease::{Ease, EaseConfig};

fn dataset() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/ml-100k/ml-100k.inter");
    if path.exists() {
        Some(path)
    } else {
        println!(
            "skipped: {} not found (fetch MovieLens-100K into .cache to run it)",
            path.display()
        );
        None
    }
}

#[test]
fn ease_matches_the_reference_figures() {
    let Some(path) = dataset() else { return };
    let log = Log::open(&path).unwrap();
    assert_eq!(
        (log.n_users(), log.n_items(), log.len()),
        (943, 1682, 100_000)
    );
    let split = Protocol::STANDARD
        .split(&Sequences::from_log(&log))
        .unwrap();
    let train = split.train.to_matrix().unwrap();
    assert_eq!(
        (train.nnz(), split.n_test_items(), split.n_test_users()),
        (80_000, 20_000, 943)
    );

    // Reference (numpy, float64): lambda 250 plain 0.19906 / 0.24133;
    // lambda 500 with history weights 2^(−age/10): 0.24641 / 0.28196.
    let cases = [
        (250.0, HistoryWeighting::Plain, 0.19906, 0.24133),
        (
            500.0,
            HistoryWeighting::Recency { half_life: 10.0 },
            0.24641,
            0.28196,
        ),
    ];
    for (lambda, weighting, ndcg10, recall20) in cases {
        let model = Ease::fit(
            &train,
            &EaseConfig {
                lambda,
                ..Default::default()
            },
        )
        .unwrap();
        let m = evaluate(
            &model,
            &split,
            &EvalOptions {
                ks: vec![10, 20],
                weighting,
            },
        )
        .unwrap();
        let (at10, at20) = (m.at_k(10).unwrap(), m.at_k(20).unwrap());
        assert!(
            (at10.ndcg - ndcg10).abs() < 5e-4,
            "lambda {lambda}: NDCG@10 {}",
            at10.ndcg
        );
        assert!(
            (at20.recall - recall20).abs() < 5e-4,
            "lambda {lambda}: Recall@20 {}",
            at20.recall
        );
    }
}
