//! Validation-tuned models on MovieLens-100K, then the test set once.
//!
//! Two families, each tuned on a validation split cut from the training part
//! (never on test), then refit on the whole training part and scored on test:
//! 1. EASE^R fed a recency-weighted history (λ, half-life);
//! 2. the same plus a *sequential* item-to-item term: forward co-occurrence
//!    within a user's timeline (item j after item i, up to `window` events later,
//!    weighted `decay^(gap−1)`), cosine-normalized, added to the EASE weights.
//!
//! `cargo run --release -p tephra-eval --example ml100k_tune [PATH/ml-100k.inter]`

use std::path::PathBuf;

use tephra_eval::{
    evaluate, EvalOptions, HistoryWeighting, Log, Metrics, Protocol, Sequences, Split,
};
use tephra_models::ease::{Ease, EaseConfig};
use tephra_models::{History, Recommender};

/// EASE plus `beta` times a forward co-occurrence matrix (row-major, n × n).
struct EaseWithSequence {
    ease: Ease,
    sequence: Vec<f32>,
    beta: f32,
}

impl Recommender for EaseWithSequence {
    fn name(&self) -> &'static str {
        "ease+sequence"
    }
    fn n_items(&self) -> usize {
        self.ease.n_items()
    }
    fn score(&self, history: History<'_>, scores: &mut [f32]) {
        self.ease.score(history, scores);
        let n = self.n_items();
        for &(item, w) in history {
            let row = &self.sequence[item as usize * n..(item as usize + 1) * n];
            for (s, &c) in scores.iter_mut().zip(row) {
                *s += self.beta * w * c;
            }
        }
    }
}

/// Forward co-occurrence T_ij = Σ decay^(gap−1) over pairs (i then j, gap ≤
/// window) in every timeline, normalized T_ij / sqrt(rowsum_i + 1) / sqrt(colsum_j + 1),
/// then scaled to the mean magnitude of the EASE weights so that `beta` is a
/// unit-free mixing weight.
fn forward_cooccurrence(train: &Sequences, window: usize, decay: f32, ease: &Ease) -> Vec<f32> {
    let n = train.n_items();
    let mut t = vec![0f32; n * n];
    for steps in train.users() {
        for (k, a) in steps.iter().enumerate() {
            let mut w = 1.0;
            for b in steps.iter().skip(k + 1).take(window) {
                t[a.item as usize * n + b.item as usize] += w;
                w *= decay;
            }
        }
    }
    let rows: Vec<f32> = (0..n)
        .map(|i| t[i * n..(i + 1) * n].iter().sum::<f32>() + 1.0)
        .collect();
    let cols: Vec<f32> = (0..n)
        .map(|j| (0..n).map(|i| t[i * n + j]).sum::<f32>() + 1.0)
        .collect();
    for i in 0..n {
        for j in 0..n {
            t[i * n + j] /= (rows[i] * cols[j]).sqrt();
        }
    }
    let mean =
        |v: &[f32]| v.iter().map(|x| f64::from(x.abs())).sum::<f64>() / v.len().max(1) as f64;
    let scale = (mean(ease.weights()) / mean(&t).max(1e-12)) as f32;
    t.iter_mut().for_each(|x| *x *= scale);
    t
}

fn ndcg10(m: &Metrics) -> f64 {
    m.at_k(10).map_or(0.0, |m| m.ndcg)
}

fn recency(half_life: f32) -> EvalOptions {
    EvalOptions {
        ks: vec![10, 20],
        weighting: HistoryWeighting::Recency { half_life },
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/ml-100k/ml-100k.inter")
        });
    let log = Log::open(&path)?;
    let test_split = Protocol::STANDARD.split(&Sequences::from_log(&log))?;
    let validation = Protocol::STANDARD.validation(&test_split)?;
    let val_train = validation.train.to_matrix()?;

    // Family 1: EASE with recency-weighted history.
    let mut best1 = (f64::MIN, 0.0, 0.0);
    let mut eases = Vec::new();
    for lambda in [250.0f32, 500.0, 800.0, 1200.0] {
        let ease = Ease::fit(
            &val_train,
            &EaseConfig {
                lambda,
                ..Default::default()
            },
        )?;
        for half_life in [3.0f32, 5.0, 7.0, 10.0, 15.0] {
            let m = evaluate(&ease, &validation, &recency(half_life))?;
            println!(
                "validation EASE lambda={lambda} half_life={half_life}: NDCG@10={:.4}",
                ndcg10(&m)
            );
            if ndcg10(&m) > best1.0 {
                best1 = (ndcg10(&m), lambda, half_life);
            }
        }
        eases.push((lambda, ease));
    }
    // Family 2: plus the sequential term (window 80, decay 0.97 fixed).
    let mut best2 = (f64::MIN, 0.0, 0.0, 0.0);
    for (lambda, ease) in eases {
        if lambda < 500.0 {
            continue;
        }
        let sequence = forward_cooccurrence(&validation.train, 80, 0.97, &ease);
        let mut model = EaseWithSequence {
            ease,
            sequence,
            beta: 0.0,
        };
        for beta in [1.0f32, 2.0, 3.0] {
            model.beta = beta;
            for half_life in [5.0f32, 7.0, 10.0] {
                let m = evaluate(&model, &validation, &recency(half_life))?;
                println!(
                    "validation EASE+seq lambda={lambda} beta={beta} half_life={half_life}: NDCG@10={:.4}",
                    ndcg10(&m)
                );
                if ndcg10(&m) > best2.0 {
                    best2 = (ndcg10(&m), lambda, beta, half_life);
                }
            }
        }
    }

    // Test, once per family, with the validation winners refit on all training data.
    let train = test_split.train.to_matrix()?;
    let (_, lambda, half_life) = best1;
    let ease = Ease::fit(
        &train,
        &EaseConfig {
            lambda,
            ..Default::default()
        },
    )?;
    report(
        &format!("test EASE lambda={lambda} half_life={half_life}"),
        &ease,
        &test_split,
        half_life,
    )?;
    let (_, lambda, beta, half_life) = best2;
    let ease = Ease::fit(
        &train,
        &EaseConfig {
            lambda,
            ..Default::default()
        },
    )?;
    let sequence = forward_cooccurrence(&test_split.train, 80, 0.97, &ease);
    let model = EaseWithSequence {
        ease,
        sequence,
        beta,
    };
    report(
        &format!("test EASE+seq lambda={lambda} beta={beta} half_life={half_life}"),
        &model,
        &test_split,
        half_life,
    )?;
    Ok(())
}

fn report(
    name: &str,
    model: &dyn Recommender,
    split: &Split,
    half_life: f32,
) -> Result<(), Box<dyn std::error::Error>> {
    let m = evaluate(model, split, &recency(half_life))?;
    let (Some(at10), Some(at20)) = (m.at_k(10), m.at_k(20)) else {
        return Ok(());
    };
    println!(
        "{name}: NDCG@10={:.4} Recall@20={:.4} MAP@10={:.4} MRR@10={:.4} HitRate@10={:.4} Coverage@10={:.3} AvgPop@10={:.1}",
        at10.ndcg, at20.recall, at10.map, at10.mrr, at10.hit_rate, at10.coverage, at10.avg_popularity
    );
    Ok(())
}
