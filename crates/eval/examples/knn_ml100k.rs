//! Item-kNN and RP3beta on MovieLens-100K with the standard protocol.
//!
//! 1. The peer's configuration (cosine, K = 100), scored on test as is;
//! 2. a grid per model family on a validation split cut from the training part
//!    (never the test set), the winner refit on all training data and scored on
//!    test once, with a plain history and with a recency-weighted one.
//!
//! `cargo run --release -p tephra-eval --example knn_ml100k [PATH/ml-100k.inter]`

use std::path::PathBuf;
use std::time::Instant;

use tephra_core::Interactions;
use tephra_eval::{evaluate, EvalOptions, HistoryWeighting, Log, Metrics, Protocol, Sequences};
use tephra_models::itemknn::{ItemKnn, ItemKnnConfig, KnnSimilarity};
use tephra_models::rp3beta::{Rp3Beta, Rp3BetaConfig};
use tephra_models::Recommender;

/// One candidate configuration of either family.
#[derive(Debug, Clone, Copy)]
enum Candidate {
    Knn(ItemKnnConfig),
    Rp3(Rp3BetaConfig),
}

impl Candidate {
    fn fit(&self, x: &Interactions) -> Result<Box<dyn Recommender>, Box<dyn std::error::Error>> {
        Ok(match self {
            Candidate::Knn(c) => Box::new(ItemKnn::fit(x, c)?),
            Candidate::Rp3(c) => Box::new(Rp3Beta::fit(x, c)?),
        })
    }
}

fn knn_grid() -> Vec<Candidate> {
    let mut grid = Vec::new();
    for neighbours in [50, 100, 200, 400, 800] {
        let mut similarities = vec![
            KnnSimilarity::Jaccard,
            KnnSimilarity::Bm25 { k1: 1.2, b: 0.75 },
        ];
        similarities
            .extend([0.0, 10.0, 50.0, 100.0].map(|shrinkage| KnnSimilarity::Cosine { shrinkage }));
        for similarity in similarities {
            grid.push(Candidate::Knn(ItemKnnConfig {
                similarity,
                neighbours,
            }));
        }
    }
    grid
}

fn rp3_grid() -> Vec<Candidate> {
    let mut grid = Vec::new();
    for neighbours in [50, 100, 200, 400] {
        for alpha in [0.2, 0.35, 0.5, 0.7, 1.0] {
            for beta in [0.0, 0.2, 0.4, 0.6, 0.8, 1.0] {
                for normalize_rows in [false, true] {
                    grid.push(Candidate::Rp3(Rp3BetaConfig {
                        alpha,
                        beta,
                        neighbours,
                        normalize_rows,
                    }));
                }
            }
        }
    }
    grid
}

fn options(weighting: HistoryWeighting) -> EvalOptions {
    EvalOptions {
        ks: vec![10, 20],
        weighting,
    }
}

fn ndcg10(m: &Metrics) -> f64 {
    m.at_k(10).map_or(0.0, |m| m.ndcg)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/ml-100k/ml-100k.inter")
        });
    let log = Log::open(&path)?;
    let split = Protocol::STANDARD.split(&Sequences::from_log(&log))?;
    let validation = Protocol::STANDARD.validation(&split)?;
    let train = split.train.to_matrix()?;
    let val_train = validation.train.to_matrix()?;
    let plain = HistoryWeighting::Plain;

    // The peer's configuration, untuned.
    let peer = Candidate::Knn(ItemKnnConfig::default());
    let started = Instant::now();
    let model = peer.fit(&train)?;
    let seconds = started.elapsed().as_secs_f64();
    report(
        "test itemknn cosine K=100 (peer config)",
        seconds,
        &evaluate(model.as_ref(), &split, &options(plain))?,
    );

    let half_lives = [
        None,
        Some(2.0f32),
        Some(3.0),
        Some(5.0),
        Some(10.0),
        Some(20.0),
    ];
    for (family, grid) in [("itemknn", knn_grid()), ("rp3beta", rp3_grid())] {
        // Best plain configuration, and best (configuration, half-life) pair.
        let mut best_plain = (f64::MIN, grid[0]);
        let mut best_recency = (f64::MIN, grid[0], 10.0f32);
        for candidate in &grid {
            let model = candidate.fit(&val_train)?;
            for half_life in half_lives {
                let weighting =
                    half_life.map_or(plain, |half_life| HistoryWeighting::Recency { half_life });
                let score = ndcg10(&evaluate(model.as_ref(), &validation, &options(weighting))?);
                match half_life {
                    None if score > best_plain.0 => best_plain = (score, *candidate),
                    Some(h) if score > best_recency.0 => best_recency = (score, *candidate, h),
                    _ => {}
                }
            }
        }
        println!(
            "validation {family}: plain {:.4} {:?}",
            best_plain.0, best_plain.1
        );
        println!(
            "validation {family}: recency {:.4} {:?} half_life={}",
            best_recency.0, best_recency.1, best_recency.2
        );
        let started = Instant::now();
        let model = best_plain.1.fit(&train)?;
        let seconds = started.elapsed().as_secs_f64();
        report(
            &format!("test {family} tuned, plain history"),
            seconds,
            &evaluate(model.as_ref(), &split, &options(plain))?,
        );
        let started = Instant::now();
        let model = best_recency.1.fit(&train)?;
        let seconds = started.elapsed().as_secs_f64();
        let weighting = HistoryWeighting::Recency {
            half_life: best_recency.2,
        };
        report(
            &format!("test {family} tuned, recency-weighted history"),
            seconds,
            &evaluate(model.as_ref(), &split, &options(weighting))?,
        );
    }
    Ok(())
}

fn report(name: &str, fit_seconds: f64, m: &Metrics) {
    let (Some(at10), Some(at20)) = (m.at_k(10), m.at_k(20)) else {
        return;
    };
    println!(
        "{name:48} fit_s={fit_seconds:6.3} NDCG@10={:.4} Recall@20={:.4} MAP@10={:.4} Coverage@10={:.3} users={}",
        at10.ndcg, at20.recall, at10.map, at10.coverage, m.users
    );
}
