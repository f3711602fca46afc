//! The configuration Tephra serves by default, measured on MovieLens-100K's
//! standard protocol through the same [`ModelSpec`] + [`fit`] path the server
//! uses.
//!
//! `cargo run --release -p tephra-eval --example default_serving [PATH/ml-100k.inter] [SPEC…]`
//!
//! Without specs it evaluates [`default_serving`] (EASE + sequential term,
//! half-life 7); each extra argument is a compact spec such as `ease:lambda=250`
//! (evaluated with plain histories) or `seq_ease:beta=3`.

use std::path::PathBuf;

use tephra_eval::{evaluate, EvalOptions, HistoryWeighting, Log, Protocol, Sequences, Split};
use tephra_models::{default_serving, fit, ModelSpec, TrainingData};

/// The training part of a split as models are fed everywhere.
fn training_data(split: &Split) -> Result<TrainingData, Box<dyn std::error::Error>> {
    let sequences = split
        .train
        .users()
        .iter()
        .map(|steps| steps.iter().map(|s| (s.item, s.time.0)).collect())
        .collect();
    Ok(TrainingData::from_sequences(
        split.train.n_items(),
        sequences,
    )?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/ml-100k/ml-100k.inter")
    });
    let serving = default_serving();
    let mut runs: Vec<(ModelSpec, HistoryWeighting)> = Vec::new();
    for text in args {
        let spec: ModelSpec = text.parse()?;
        let weighting = if matches!(spec, ModelSpec::SeqEase(_)) {
            serving.weighting
        } else {
            HistoryWeighting::Plain
        };
        runs.push((spec, weighting));
    }
    if runs.is_empty() {
        runs.push((serving.spec.clone(), serving.weighting));
    }

    let log = Log::open(&path)?;
    let split = Protocol::STANDARD.split(&Sequences::from_log(&log))?;
    let data = training_data(&split)?;
    for (spec, weighting) in runs {
        let model = fit(&spec, &data)?;
        let options = EvalOptions {
            ks: vec![10, 20],
            weighting,
        };
        let m = evaluate(&model, &split, &options)?;
        let (Some(at10), Some(at20)) = (m.at_k(10), m.at_k(20)) else {
            continue;
        };
        println!(
            "{spec} ({weighting:?}): NDCG@10={:.4} Recall@20={:.4} MAP@10={:.4} HitRate@10={:.4}",
            at10.ndcg, at20.recall, at10.map, at10.hit_rate
        );
    }
    Ok(())
}
