//! BPR on MovieLens-100K with the standard protocol.
//!
//! Hyper-parameters are chosen on a validation split cut from the training
//! part (never on test); the winner is refit on all training data and scored on
//! test once. Three ways of scoring are compared, to show what serving from a
//! history costs against the trained user vectors the peer scores with:
//! - `trained`: the user's own vector from training (what `implicit` reports);
//! - `fold-in`: [`Recommender::score`], the model's SGD fold-in of the history;
//! - `ridge`: the closed-form alternative, a ridge regression of the history on
//!   the item factors (as iALS folds in), for the record.
//!
//! `cargo run --release -p tephra-eval --example bpr_ml100k [PATH/ml-100k.inter]`

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use tephra_eval::metrics::Accumulator;
use tephra_eval::{
    evaluate, weighted_history, EvalOptions, HistoryWeighting, Log, Metrics, Protocol, Sequences,
    Split,
};
use tephra_models::bpr::{Bpr, BprConfig, NegativeSampling};
use tephra_models::rank::top_n;

/// Full-ranking metrics with a scorer that also knows the user index.
fn evaluate_by_user(
    split: &Split,
    n_items: usize,
    score: impl Fn(u32, &[(u32, f32)], &mut [f32]) + Sync,
) -> Metrics {
    let popularity = split.train.item_popularity();
    let users: Vec<u32> = split.test_users().collect();
    users
        .par_iter()
        .fold(
            || Accumulator::new(&[10, 20], n_items),
            |mut acc, &user| {
                let history = weighted_history(split.train.user(user), HistoryWeighting::Plain);
                let mut scores = vec![0f32; n_items];
                score(user, &history, &mut scores);
                for &(item, _) in &history {
                    scores[item as usize] = f32::NEG_INFINITY;
                }
                let ranked: Vec<u32> = top_n(&scores, 20, |_| true)
                    .into_iter()
                    .map(|(i, _)| i)
                    .collect();
                acc.add(&ranked, &split.test[user as usize], &popularity);
                acc
            },
        )
        .reduce(|| Accumulator::new(&[10, 20], n_items), Accumulator::merge)
        .finish()
}

/// Scores with the trained user vectors.
fn trained_scores(model: &Bpr, users: &[f32], user: u32, scores: &mut [f32]) {
    let d = model.factors();
    let w = &users[user as usize * d..(user as usize + 1) * d];
    for (j, s) in scores.iter_mut().enumerate() {
        let h = &model.item_factors()[j * d..(j + 1) * d];
        *s = w.iter().zip(h).map(|(a, b)| a * b).sum::<f32>() + model.item_bias()[j];
    }
}

/// Ridge fold-in: argmin Σ_hist (1 − x·h_i)² + α0 Σ_all (x·h_j)² + λ‖x‖².
fn ridge_scores(model: &Bpr, gram: &[f64], history: &[(u32, f32)], scores: &mut [f32]) {
    let (d, h) = (model.factors(), model.item_factors());
    let (alpha0, lambda) = (0.05, 0.1);
    let mut a: Vec<f64> = gram.iter().map(|g| alpha0 * g).collect();
    let mut b = vec![0f64; d];
    for &(i, _) in history {
        let hi = &h[i as usize * d..(i as usize + 1) * d];
        for r in 0..d {
            b[r] += f64::from(hi[r]);
            for c in 0..d {
                a[r * d + c] += f64::from(hi[r]) * f64::from(hi[c]);
            }
        }
    }
    for r in 0..d {
        a[r * d + r] += lambda;
    }
    // Gaussian elimination (the matrix is SPD; d is small).
    for c in 0..d {
        let p = a[c * d + c];
        for r in c + 1..d {
            let f = a[r * d + c] / p;
            for k in c..d {
                a[r * d + k] -= f * a[c * d + k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0f64; d];
    for r in (0..d).rev() {
        let s: f64 = (r + 1..d).map(|k| a[r * d + k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r * d + r];
    }
    for (j, s) in scores.iter_mut().enumerate() {
        let hj = &h[j * d..(j + 1) * d];
        *s = hj
            .iter()
            .zip(&x)
            .map(|(a, b)| f64::from(*a) * b)
            .sum::<f64>() as f32
            + model.item_bias()[j];
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
    let val_train = validation.train.to_matrix()?;
    let n_items = val_train.n_items();

    let mut best = (f64::MIN, BprConfig::default());
    for negative_sampling in [NegativeSampling::Uniform, NegativeSampling::Popularity] {
        for learning_rate in [0.01f32, 0.05, 0.1] {
            for regularization in [0.001f32, 0.01, 0.03] {
                let config = BprConfig {
                    learning_rate,
                    regularization,
                    negative_sampling,
                    ..Default::default()
                };
                let started = Instant::now();
                let (model, users) = Bpr::fit_with_user_factors(&val_train, &config)?;
                let seconds = started.elapsed().as_secs_f64();
                let fold_in = evaluate(&model, &validation, &EvalOptions::default())?;
                let trained = evaluate_by_user(&validation, n_items, |u, _, s| {
                    trained_scores(&model, &users, u, s)
                });
                println!(
                    "validation {negative_sampling:?} lr={learning_rate} reg={regularization} fit_s={seconds:.1}: \
                     fold-in NDCG@10={:.4} trained NDCG@10={:.4}",
                    ndcg10(&fold_in),
                    ndcg10(&trained)
                );
                if ndcg10(&fold_in) > best.0 {
                    best = (ndcg10(&fold_in), config);
                }
            }
        }
    }
    let config = best.1;
    println!("chosen on validation: {config:?}");

    let train = split.train.to_matrix()?;
    let started = Instant::now();
    let (model, users) = Bpr::fit_with_user_factors(&train, &config)?;
    let seconds = started.elapsed().as_secs_f64();
    let d = model.factors();
    let mut gram = vec![0f64; d * d];
    for h in model.item_factors().chunks(d) {
        for r in 0..d {
            for c in 0..d {
                gram[r * d + c] += f64::from(h[r]) * f64::from(h[c]);
            }
        }
    }
    let results = [
        (
            "trained",
            evaluate_by_user(&split, n_items, |u, _, s| {
                trained_scores(&model, &users, u, s)
            }),
        ),
        (
            "fold-in",
            evaluate(&model, &split, &EvalOptions::default())?,
        ),
        (
            "ridge",
            evaluate_by_user(&split, n_items, |_, h, s| ridge_scores(&model, &gram, h, s)),
        ),
    ];
    for (name, m) in results {
        report(&format!("test bpr {name}"), seconds, &m);
    }
    let recency = EvalOptions {
        ks: vec![10, 20],
        weighting: HistoryWeighting::Recency { half_life: 10.0 },
    };
    report(
        "test bpr fold-in, recency-weighted history",
        seconds,
        &evaluate(&model, &split, &recency)?,
    );
    Ok(())
}

fn report(name: &str, fit_seconds: f64, m: &Metrics) {
    let (Some(at10), Some(at20)) = (m.at_k(10), m.at_k(20)) else {
        return;
    };
    println!(
        "{name:44} fit_s={fit_seconds:6.2} NDCG@10={:.4} Recall@20={:.4} MAP@10={:.4} Coverage@10={:.3} users={}",
        at10.ndcg, at20.recall, at10.map, at10.coverage, m.users
    );
}
