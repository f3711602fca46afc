//! EASE^R on MovieLens-100K with the standard protocol, plain and recency-weighted.
//!
//! `cargo run --release -p tephra-eval --example ml100k [PATH/ml-100k.inter]`
//! (default: the project's ignored `.cache/ml-100k/ml-100k.inter`).

use std::path::PathBuf;
use std::time::Instant;

use tephra_eval::{evaluate, EvalOptions, HistoryWeighting, Log, Metrics, Protocol, Sequences};
use tephra_models::ease::{Ease, EaseConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/ml-100k/ml-100k.inter")
        });
    let log = Log::open(&path)?;
    let split = Protocol::STANDARD.split(&Sequences::from_log(&log))?;
    let train = split.train.to_matrix()?;
    println!(
        "users={} items={} train={} test={}",
        log.n_users(),
        log.n_items(),
        train.nnz(),
        split.n_test_items()
    );
    for (lambda, weighting) in [
        (250.0, HistoryWeighting::Plain),
        (250.0, HistoryWeighting::Recency { half_life: 10.0 }),
        (500.0, HistoryWeighting::Plain),
        (500.0, HistoryWeighting::Recency { half_life: 10.0 }),
    ] {
        let started = Instant::now();
        let model = Ease::fit(
            &train,
            &EaseConfig {
                lambda,
                ..Default::default()
            },
        )?;
        let fit_seconds = started.elapsed().as_secs_f64();
        let metrics = evaluate(
            &model,
            &split,
            &EvalOptions {
                ks: vec![10, 20],
                weighting,
            },
        )?;
        print_row(
            &format!("EASE lambda={lambda} {weighting:?}"),
            fit_seconds,
            &metrics,
        );
    }
    Ok(())
}

fn print_row(name: &str, fit_seconds: f64, m: &Metrics) {
    let (Some(at10), Some(at20)) = (m.at_k(10), m.at_k(20)) else {
        return;
    };
    println!(
        "{name:48} fit_s={fit_seconds:6.2} NDCG@10={:.4} Recall@20={:.4} Coverage@10={:.3} users={}",
        at10.ndcg, at20.recall, at10.coverage, m.users
    );
}
