//! `tephra eval`: fit models on the training part of a split, score them with
//! full ranking on the test part, and print one table per model.
//!
//! With `--tune N`, every model first tries N configurations on a validation
//! split cut from the training part the same way (never on test), keeps the one
//! with the best NDCG@10 there, is refit on the whole training part, and is
//! tested once. A blend tunes its parts' weights instead of their parameters.
//!
//! Peak memory is the process's resident-set high-water mark (`VmHWM` in
//! `/proc/self/status`) while the model trains: the mark is reset just before
//! fitting (`/proc/self/clear_refs`) and read right after. It includes the data
//! set already in memory, so it answers "how much RAM does training this model on
//! this data need". Where the mark cannot be reset or read, the table says `-`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tephra_eval::{
    evaluate, EvalOptions, HistoryWeighting, Log, Metrics, Protocol, Sequences, Split,
};
use tephra_models::blend::Blend;
use tephra_models::registry::{fit, BlendSpec, ModelSpec, TrainingData};

use crate::cli::{EvalArgs, ProtocolArg};
use crate::model_spec::{candidates, parse, round3, training_data};

/// The name that selects MovieLens-100K.
pub const MOVIELENS_100K: &str = "movielens-100k";
/// Where `scripts/fetch-movielens.sh` puts MovieLens-100K, relative to the
/// repository root.
pub const MOVIELENS_100K_PATH: &str = ".cache/ml-100k/ml-100k.inter";

/// Runs `tephra eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let specs = parse_specs(&args.models)?;
    let weighting = parse_weighting(&args.weighting)?;
    let options = EvalOptions {
        ks: checked_ks(&args.ks)?,
        weighting,
    };
    let path = resolve_dataset(&args.dataset)?;
    let log = Log::open(&path).with_context(|| format!("cannot load {}", path.display()))?;
    let protocol = protocol(args.protocol);
    let split = protocol.split(&Sequences::from_log(&log))?;
    println!(
        "data set {}: {} users, {} items, {} interactions; protocol {}; {} test users; history {}",
        path.display(),
        log.n_users(),
        log.n_items(),
        log.len(),
        protocol_name(args.protocol),
        split.n_test_users(),
        args.weighting,
    );
    let train = training_data(&split.train)?;
    let validation = match args.tune {
        Some(_) => {
            let validation = protocol.validation(&split)?;
            let train = training_data(&validation.train)?;
            Some((validation, train))
        }
        None => None,
    };
    let per_model = 1 + args.tune.unwrap_or(0);
    let progress = progress_bar(specs.len() as u64 * per_model);
    for spec in &specs {
        let chosen = match (&validation, args.tune) {
            (Some(validation), Some(n)) => {
                let chosen = tune(spec, validation, &options, n, args.seed, &progress)?;
                progress.suspend(|| println!("{spec}: tuned on validation, chose {chosen}"));
                chosen
            }
            _ => spec.clone(),
        };
        progress.set_message(format!("fitting {chosen}"));
        let report = fit_and_evaluate(&chosen, &train, &split, &options)?;
        progress.inc(1);
        progress.suspend(|| print!("{}", report.table()));
    }
    progress.finish_and_clear();
    Ok(())
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Splits `--models` values on `;` and parses each spec.
pub fn parse_specs(values: &[String]) -> anyhow::Result<Vec<ModelSpec>> {
    let specs: Vec<ModelSpec> = values
        .iter()
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse)
        .collect::<Result<_, _>>()?;
    if specs.is_empty() {
        bail!("--models names no model; e.g. --models 'ease:lambda=250;popularity'");
    }
    Ok(specs)
}

/// `plain` or `recency:HALF_LIFE`.
pub fn parse_weighting(text: &str) -> anyhow::Result<HistoryWeighting> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("plain") {
        return Ok(HistoryWeighting::Plain);
    }
    if let Some(half_life) = text.strip_prefix("recency:") {
        match half_life.trim().parse::<f32>() {
            Ok(h) if h > 0.0 && h.is_finite() => {
                return Ok(HistoryWeighting::Recency { half_life: h })
            }
            _ => bail!("--weighting recency:{half_life}: the half-life must be a positive number of events"),
        }
    }
    bail!("--weighting `{text}` is not `plain` or `recency:HALF_LIFE` (e.g. recency:10)")
}

fn checked_ks(ks: &[usize]) -> anyhow::Result<Vec<usize>> {
    let mut ks = ks.to_vec();
    ks.sort_unstable();
    ks.dedup();
    if ks.is_empty() || ks[0] == 0 {
        bail!("--k needs positive cutoffs, e.g. --k 10,20");
    }
    Ok(ks)
}

fn protocol(arg: ProtocolArg) -> Protocol {
    match arg {
        ProtocolArg::UserTemporal => Protocol::STANDARD,
        ProtocolArg::LeaveLastOne => Protocol::LeaveLastOne,
        ProtocolArg::GlobalTemporal => Protocol::GlobalTemporal { test_fraction: 0.2 },
    }
}

fn protocol_name(arg: ProtocolArg) -> &'static str {
    match arg {
        ProtocolArg::UserTemporal => "user-temporal (last 20% per user)",
        ProtocolArg::LeaveLastOne => "leave-last-one",
        ProtocolArg::GlobalTemporal => "global-temporal (last 20% in time)",
    }
}

/// `movielens-100k` → the cached file found from the current directory
/// upwards; anything else is a path that must exist.
pub fn resolve_dataset(name: &str) -> anyhow::Result<PathBuf> {
    if name.eq_ignore_ascii_case(MOVIELENS_100K) {
        let start = std::env::current_dir().context("cannot read the current directory")?;
        return find_upwards(&start, Path::new(MOVIELENS_100K_PATH)).ok_or_else(|| {
            anyhow::anyhow!(
                "MovieLens-100K is not downloaded: no {MOVIELENS_100K_PATH} in this directory or above; \
                 run scripts/fetch-movielens.sh from the repository"
            )
        });
    }
    let path = PathBuf::from(name);
    if !path.is_file() {
        bail!(
            "data set `{name}` is neither `{MOVIELENS_100K}` nor an existing file \
             (CSV user_id,item_id,timestamp[,value] or a RecBole .inter file)"
        );
    }
    Ok(path)
}

fn find_upwards(start: &Path, relative: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(relative))
        .find(|candidate| candidate.is_file())
}

/// One model's test figures with its cost.
pub struct ModelReport {
    spec: ModelSpec,
    metrics: Metrics,
    train_seconds: f64,
    peak_bytes: Option<u64>,
}

fn fit_and_evaluate(
    spec: &ModelSpec,
    train: &TrainingData,
    split: &Split,
    options: &EvalOptions,
) -> anyhow::Result<ModelReport> {
    let reset = reset_peak_memory();
    let started = Instant::now();
    let model = fit(spec, train).with_context(|| format!("cannot train {spec}"))?;
    let train_seconds = started.elapsed().as_secs_f64();
    let peak_bytes = if reset { peak_memory() } else { None };
    let metrics = evaluate(&model, split, options)?;
    Ok(ModelReport {
        spec: spec.clone(),
        metrics,
        train_seconds,
        peak_bytes,
    })
}

fn tune(
    spec: &ModelSpec,
    (validation, train): &(Split, TrainingData),
    options: &EvalOptions,
    n: u64,
    seed: u64,
    progress: &ProgressBar,
) -> anyhow::Result<ModelSpec> {
    if let ModelSpec::Blend(blend) = spec {
        return tune_blend(blend, (validation, train), options, n, seed, progress);
    }
    let mut best: Option<(f64, ModelSpec)> = None;
    let all = candidates(spec, n as usize, seed);
    // Models without tuned parameters have fewer candidates than asked for.
    progress.inc(n.saturating_sub(all.len() as u64));
    for candidate in all {
        progress.set_message(format!("tuning {candidate}"));
        let model = fit(&candidate, train).with_context(|| format!("cannot train {candidate}"))?;
        let metrics = evaluate(&model, validation, options)?;
        let ndcg = ndcg_at_10(&metrics);
        progress.inc(1);
        if best.as_ref().is_none_or(|(b, _)| ndcg > *b) {
            best = Some((ndcg, candidate));
        }
    }
    Ok(best.map_or_else(|| spec.clone(), |(_, s)| s))
}

/// Tunes a blend's weights on validation: every part is fitted once, then each
/// candidate weight vector (see [`blend_weight_candidates`]) only re-weights
/// the fitted parts, so N candidates cost N evaluations, not N trainings.
fn tune_blend(
    blend: &BlendSpec,
    (validation, train): (&Split, &TrainingData),
    options: &EvalOptions,
    n: u64,
    seed: u64,
    progress: &ProgressBar,
) -> anyhow::Result<ModelSpec> {
    progress.set_message("fitting the blend's parts");
    let parts = blend
        .parts
        .iter()
        .map(|part| fit(&part.spec, train).with_context(|| format!("cannot train {}", part.spec)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let all = blend_weight_candidates(blend, n as usize, seed);
    progress.inc(n.saturating_sub(all.len() as u64));
    let mut best: Option<(f64, Vec<f32>)> = None;
    for weights in all {
        progress.set_message(format!("tuning blend weights {weights:?}"));
        let model = Blend::new(
            parts.iter().cloned().zip(weights.iter().copied()).collect(),
            blend.normalization,
        )?;
        let ndcg = ndcg_at_10(&evaluate(&model, validation, options)?);
        progress.inc(1);
        if best.as_ref().is_none_or(|(b, _)| ndcg > *b) {
            best = Some((ndcg, weights));
        }
    }
    let mut chosen = blend.clone();
    if let Some((_, weights)) = best {
        for (part, weight) in chosen.parts.iter_mut().zip(weights) {
            part.weight = weight;
        }
    }
    Ok(ModelSpec::Blend(chosen))
}

/// Up to `n` weight vectors for a blend, its own weights first; the others
/// (seeded) scale each weight by a log-uniform factor between 1/8 and 8, three
/// significant digits. A blend of one part has nothing to tune.
pub fn blend_weight_candidates(blend: &BlendSpec, n: usize, seed: u64) -> Vec<Vec<f32>> {
    let current: Vec<f32> = blend.parts.iter().map(|p| p.weight).collect();
    let mut out = vec![current.clone()];
    if current.len() < 2 {
        return out;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut attempts = 0;
    while out.len() < n && attempts < n * 10 {
        attempts += 1;
        let weights: Vec<f32> = current
            .iter()
            .map(|&w| {
                let w = if w > 0.0 { f64::from(w) } else { 1.0 };
                round3(w * 8f64.powf(rng.random_range(-1.0..=1.0))) as f32
            })
            .collect();
        if !out.contains(&weights) {
            out.push(weights);
        }
    }
    out
}

fn ndcg_at_10(metrics: &Metrics) -> f64 {
    metrics
        .at_k(10)
        .or_else(|| metrics.at.first())
        .map_or(0.0, |m| m.ndcg)
}

impl ModelReport {
    /// The table printed for this model.
    pub fn table(&self) -> String {
        let mut out = format!(
            "\n{}  (train {:.2} s, peak memory {}, {} users)\n",
            self.spec,
            self.train_seconds,
            self.peak_bytes.map_or_else(|| "-".to_string(), megabytes),
            self.metrics.users
        );
        out.push_str(&format!(
            "{:>4} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
            "K", "Recall", "Precision", "NDCG", "MAP", "MRR", "HitRate", "Coverage", "AvgPop"
        ));
        for m in &self.metrics.at {
            out.push_str(&format!(
                "{:>4} {:>8.4} {:>9.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.1}\n",
                m.k,
                m.recall,
                m.precision,
                m.ndcg,
                m.map,
                m.mrr,
                m.hit_rate,
                m.coverage,
                m.avg_popularity
            ));
        }
        out
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// Resets the resident-set high-water mark; false where the kernel does not allow it.
fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The resident-set high-water mark (`VmHWM`), in bytes.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighting_parses_and_rejects() {
        assert_eq!(parse_weighting("plain").unwrap(), HistoryWeighting::Plain);
        assert_eq!(
            parse_weighting("recency:10").unwrap(),
            HistoryWeighting::Recency { half_life: 10.0 }
        );
        for bad in ["recency:0", "recency:x", "linear"] {
            assert!(parse_weighting(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blend_weight_candidates_start_with_the_blend_and_are_seeded() {
        let ModelSpec::Blend(blend) = parse(
            r#"{"kind":"blend","parts":[{"spec":{"kind":"popularity"},"weight":1},
                                       {"spec":{"kind":"ease"},"weight":0.5}]}"#,
        )
        .unwrap() else {
            panic!("not a blend");
        };
        let a = blend_weight_candidates(&blend, 8, 3);
        assert_eq!(a.len(), 8);
        assert_eq!(a[0], vec![1.0, 0.5]);
        assert_eq!(a, blend_weight_candidates(&blend, 8, 3));
        assert_ne!(a, blend_weight_candidates(&blend, 8, 4));
        for w in &a {
            assert!(w[0] >= 1.0 / 8.0 - 1e-3 && w[0] <= 8.0 + 1e-3, "{w:?}");
            assert!(w[1] >= 0.5 / 8.0 - 1e-3 && w[1] <= 4.0 + 1e-3, "{w:?}");
        }
        let one = BlendSpec {
            parts: blend.parts[..1].to_vec(),
            ..BlendSpec::default()
        };
        assert_eq!(blend_weight_candidates(&one, 8, 3).len(), 1);
    }

    #[test]
    fn specs_split_on_semicolons() {
        let specs = parse_specs(&["ease:lambda=250; popularity".into(), "ease".into()]).unwrap();
        assert_eq!(specs.len(), 3);
        assert!(parse_specs(&[" ; ".into()]).is_err());
        let err = parse_specs(&["nosuchmodel".into()]).unwrap_err();
        assert!(err.to_string().contains("nosuchmodel"), "{err}");
    }

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status = "Name:\ttephra\nVmPeak:\t  100 kB\nVmHWM:\t    2048 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(2048 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }

    #[test]
    fn dataset_is_found_upwards() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        let target = dir.path().join(MOVIELENS_100K_PATH);
        assert_eq!(find_upwards(&nested, Path::new(MOVIELENS_100K_PATH)), None);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, "x").unwrap();
        assert_eq!(
            find_upwards(&nested, Path::new(MOVIELENS_100K_PATH)),
            Some(target)
        );
        let err = resolve_dataset("no/such/file.csv").unwrap_err();
        assert!(err.to_string().contains("no/such/file.csv"), "{err}");
    }

    #[test]
    fn cutoffs_are_sorted_and_positive() {
        assert_eq!(checked_ks(&[20, 10, 10]).unwrap(), vec![10, 20]);
        assert!(checked_ks(&[0, 10]).is_err());
    }
}
