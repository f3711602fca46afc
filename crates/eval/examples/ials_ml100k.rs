//! iALS on MovieLens-100K with the standard protocol.
//!
//! Tunes the weights and regularization on a validation split cut from the
//! training part (never on test), refits the winner on the whole training part
//! and reports the test set once — next to the library defaults.
//!
//! `cargo run --release -p tephra-eval --example ials_ml100k [PATH/ml-100k.inter] [--factors N]`
//! (default: the project's ignored `.cache/ml-100k/ml-100k.inter`, 64 factors).

use std::path::PathBuf;
use std::time::Instant;

use tephra_eval::{evaluate, EvalOptions, HistoryWeighting, Log, Metrics, Protocol, Sequences};
use tephra_models::ials::{IalsConfig, IalsModel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/ml-100k/ml-100k.inter");
    let mut factors = 64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--factors" => factors = args.next().ok_or("--factors needs a value")?.parse()?,
            other => path = PathBuf::from(other),
        }
    }
    let log = Log::open(&path)?;
    let split = Protocol::STANDARD.split(&Sequences::from_log(&log))?;
    let validation = Protocol::STANDARD.validation(&split)?;
    let train = split.train.to_matrix()?;
    let val_train = validation.train.to_matrix()?;
    println!(
        "users={} items={} train={} test={} (validation train={})",
        log.n_users(),
        log.n_items(),
        train.nnz(),
        split.n_test_items(),
        val_train.nnz()
    );
    let plain = EvalOptions::default();
    let base = IalsConfig {
        factors,
        ..IalsConfig::default()
    };

    let mut results = Vec::new();
    for nu in [1.0f32, 0.0] {
        let lambdas: &[f32] = if nu == 1.0 {
            &[0.003, 0.01, 0.03, 0.1]
        } else {
            &[1.0, 3.0, 10.0, 30.0]
        };
        for &regularization in lambdas {
            for unobserved_weight in [0.1f32, 0.3, 1.0, 3.0] {
                for alpha in [0.0f32, 1.0, 3.0] {
                    let config = IalsConfig {
                        alpha,
                        unobserved_weight,
                        regularization,
                        frequency_exponent: nu,
                        ..base
                    };
                    let model = IalsModel::fit(&val_train, &config)?;
                    let m = evaluate(&model, &validation, &plain)?;
                    results.push((ndcg(&m), config));
                }
            }
        }
    }
    results.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (score, c) in results.iter().take(8) {
        println!(
            "validation NDCG@10={score:.4} alpha={} unobserved_weight={} regularization={} frequency_exponent={}",
            c.alpha, c.unobserved_weight, c.regularization, c.frequency_exponent
        );
    }
    let best = results
        .first()
        .map(|r| r.1)
        .ok_or("no configuration evaluated")?;

    for (name, config) in [("tuned on validation", best), ("library defaults", base)] {
        let started = Instant::now();
        let model = IalsModel::fit(&train, &config)?;
        let fit_s = started.elapsed().as_secs_f64();
        for (label, weighting) in [
            ("plain history", HistoryWeighting::Plain),
            (
                "recency-weighted history (half-life 10)",
                HistoryWeighting::Recency { half_life: 10.0 },
            ),
        ] {
            let options = EvalOptions {
                weighting,
                ..EvalOptions::default()
            };
            let m = evaluate(&model, &split, &options)?;
            print_row(&format!("iALS f={factors} {name}, {label}"), fit_s, &m);
        }
    }
    println!("tuned configuration: {best:?}");
    Ok(())
}

fn ndcg(m: &Metrics) -> f64 {
    m.at_k(10).map_or(0.0, |a| a.ndcg)
}

fn print_row(name: &str, fit_seconds: f64, m: &Metrics) {
    let (Some(at10), Some(at20)) = (m.at_k(10), m.at_k(20)) else {
        return;
    };
    println!(
        "{name:70} fit_s={fit_seconds:6.3} NDCG@10={:.4} Recall@20={:.4} Coverage@10={:.3} users={}",
        at10.ndcg, at20.recall, at10.coverage, m.users
    );
}
