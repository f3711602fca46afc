//! The models of `tephra eval` on top of the model registry: parsing
//! `--models`, turning a split's training part into [`TrainingData`], and the
//! candidate configurations `--tune` tries.
//!
//! Candidates are drawn around the given spec (the spec itself first), only for
//! the hyper-parameters that matter and are cheap to vary: regularization and
//! mixing weights on a log scale, neighbour counts as integers. Sizes that
//! drive cost (factors, iterations, `max_items`) stay as given.

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tephra_eval::Sequences;
use tephra_models::registry::{ModelSpec, TrainingData};

/// How a tuned parameter is drawn.
#[derive(Debug, Clone, Copy)]
enum Range {
    /// Log-uniform within a factor of the given value.
    Around(f64),
    /// Uniform in `[low, high]`.
    Between(f64, f64),
    /// Log-uniform integer within a factor of the given value, at least 1.
    WholeAround(f64),
}

/// The tuned parameters per model kind (JSON field names of the spec).
fn tuned(kind: &str) -> &'static [(&'static str, Range)] {
    match kind {
        "ease" => &[("lambda", Range::Around(4.0))],
        "seq_ease" => &[("lambda", Range::Around(3.0)), ("beta", Range::Around(3.0))],
        "ials" => &[
            ("regularization", Range::Around(10.0)),
            ("alpha", Range::Around(4.0)),
            ("unobserved_weight", Range::Around(4.0)),
        ],
        "bpr" => &[
            ("learning_rate", Range::Around(3.0)),
            ("regularization", Range::Around(10.0)),
        ],
        "itemknn" => &[
            ("shrinkage", Range::Between(0.0, 100.0)),
            ("neighbours", Range::WholeAround(4.0)),
        ],
        "rp3beta" => &[
            ("alpha", Range::Between(0.2, 1.5)),
            ("beta", Range::Between(0.0, 1.0)),
            ("neighbours", Range::WholeAround(4.0)),
        ],
        _ => &[],
    }
}

/// Parses one `--models` entry, naming it in the error.
pub fn parse(text: &str) -> anyhow::Result<ModelSpec> {
    text.parse::<ModelSpec>()
        .with_context(|| format!("invalid model `{text}`"))
}

/// The registry's view of a training part: every user's timeline.
pub fn training_data(train: &Sequences) -> anyhow::Result<TrainingData> {
    Ok(train.training_data()?)
}

/// Up to `n` configurations to try, `spec` first; the rest are drawn (seeded)
/// around it. A model without tuned parameters yields only itself.
pub fn candidates(spec: &ModelSpec, n: usize, seed: u64) -> Vec<ModelSpec> {
    let mut out = vec![spec.clone()];
    let params = tuned(spec.kind());
    let Ok(Value::Object(base)) = serde_json::to_value(spec) else {
        return out;
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut attempts = 0;
    while out.len() < n && !params.is_empty() && attempts < n * 10 {
        attempts += 1;
        let mut object = base.clone();
        for (name, range) in params {
            let Some(current) = object.get(*name).and_then(Value::as_f64) else {
                continue;
            };
            let log_uniform =
                |rng: &mut StdRng, factor: f64| current * factor.powf(rng.random_range(-1.0..=1.0));
            let value = match *range {
                Range::Around(factor) => Value::from(round3(log_uniform(&mut rng, factor))),
                Range::Between(low, high) => Value::from(round3(rng.random_range(low..=high))),
                Range::WholeAround(factor) => {
                    Value::from(log_uniform(&mut rng, factor).round().max(1.0) as u64)
                }
            };
            object.insert((*name).to_string(), value);
        }
        if let Ok(candidate) = serde_json::from_value::<ModelSpec>(Value::Object(object)) {
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

/// Three significant decimals are plenty for a hyper-parameter and keep
/// printed specs readable.
pub fn round3(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(2 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use tephra_core::Timestamp;
    use tephra_eval::Step;

    use super::*;

    #[test]
    fn candidates_start_with_the_spec_and_are_seeded() {
        let spec = parse("ease:lambda=250").unwrap();
        let a = candidates(&spec, 6, 1);
        assert_eq!(a.len(), 6);
        assert_eq!(a[0], spec);
        assert_eq!(a, candidates(&spec, 6, 1));
        assert_ne!(a, candidates(&spec, 6, 2));
        for c in &a {
            let ModelSpec::Ease(e) = c else {
                panic!("kind changed: {c}")
            };
            assert!((62.4..=1000.1).contains(&e.lambda), "{c}");
        }
        let popularity = parse("popularity").unwrap();
        assert_eq!(candidates(&popularity, 5, 1), vec![popularity]);
    }

    #[test]
    fn unknown_models_are_named() {
        let err = format!("{:#}", parse("nosuchmodel:x=1").unwrap_err());
        assert!(err.contains("nosuchmodel"), "{err}");
    }

    #[test]
    fn training_data_keeps_every_user() {
        let step = |item, t| Step {
            time: Timestamp(t),
            item,
            value: 1.0,
        };
        let train = Sequences::new(3, vec![vec![step(2, 5), step(0, 1)], vec![]]).unwrap();
        let data = training_data(&train).unwrap();
        assert_eq!((data.n_users(), data.n_items()), (2, 3));
        assert_eq!(data.sequences[0], vec![(0, 1), (2, 5)]);
    }

    #[test]
    fn rounding_keeps_three_significant_digits() {
        assert_eq!(round3(123.456), 123.0);
        assert_eq!(round3(0.012345), 0.0123);
        assert_eq!(round3(0.0), 0.0);
    }
}
