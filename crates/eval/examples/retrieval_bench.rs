//! Retrieval: exact scan against the IVF index, on MovieLens-100K and on a
//! large iALS model.
//!
//! `cargo run --release -p tephra-eval --example retrieval_bench -- [options]`
//!
//! 1. MovieLens-100K (standard protocol, `.cache/ml-100k/ml-100k.inter`, from
//!    `scripts/fetch-movielens.sh`): iALS with the library defaults; NDCG@10
//!    and Recall@20 when every user is ranked from the retriever's top 20
//!    (training items filtered out through `allow`), exact against an IVF
//!    index with few lists.
//! 2. A large model: item factors from an iALS snapshot (`--snapshot PATH`) or
//!    iALS (64 factors) trained on a CSV log (`--log PATH`, e.g. from
//!    `tephra gen`). Queries are the trained vectors of sampled users (a
//!    trained user vector is the fold-in of its history against the final
//!    item factors). Prints, for several probe counts, recall@10 and
//!    recall@100 against the exact scan, mean and p99 µs per query on one
//!    thread, and the exact scan's µs per query; index build seconds and
//!    memory.
//!
//! Options: `--ml100k PATH`, `--skip-ml100k`, `--log PATH`, `--snapshot PATH`,
//! `--iterations N` (iALS on a log, default 10), `--queries N` (2000),
//! `--lists N` (0 = automatic), `--probes A,B,C` (default: around the automatic
//! setting), `--radius-weights A,B` (cell ranking `q·c + w·‖q‖·r_c`; default 0,0.5,1).

use std::path::PathBuf;
use std::time::Instant;

use tephra_eval::{evaluate, evaluate_with, EvalOptions, Log, Metrics, Protocol, Sequences};
use tephra_models::ials::{IalsConfig, IalsModel};
use tephra_models::registry::Model;
use tephra_models::retrieval::{ExactIndex, IvfIndex, RetrievalConfig, Retriever};

struct Options {
    ml100k: Option<PathBuf>,
    log: Option<PathBuf>,
    snapshot: Option<PathBuf>,
    iterations: usize,
    queries: usize,
    lists: usize,
    probes: Vec<usize>,
    radius_weights: Vec<f32>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options = Options {
        ml100k: Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/ml-100k/ml-100k.inter"),
        ),
        log: None,
        snapshot: None,
        iterations: 10,
        queries: 2000,
        lists: 0,
        probes: Vec::new(),
        radius_weights: vec![0.0, 0.5, 1.0],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--ml100k" => options.ml100k = Some(PathBuf::from(value()?)),
            "--skip-ml100k" => options.ml100k = None,
            "--log" => options.log = Some(PathBuf::from(value()?)),
            "--snapshot" => options.snapshot = Some(PathBuf::from(value()?)),
            "--iterations" => options.iterations = value()?.parse()?,
            "--queries" => options.queries = value()?.parse()?,
            "--lists" => options.lists = value()?.parse()?,
            "--radius-weights" => {
                options.radius_weights = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--probes" => {
                options.probes = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if let Some(path) = &options.ml100k {
        movielens(path)?;
    }
    if options.log.is_some() || options.snapshot.is_some() {
        large(&options)?;
    }
    Ok(())
}

/// NDCG@10 and Recall@20 on MovieLens-100K: dense scoring, exact retrieval,
/// IVF retrieval.
fn movielens(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let log = Log::open(path)?;
    let split = Protocol::STANDARD.split(&Sequences::from_log(&log))?;
    let train = split.train.to_matrix()?;
    let model = IalsModel::fit(&train, &IalsConfig::default())?;
    let items = model.item_factors();
    let vectors = items.to_row_major();
    let dim = items.dim();
    let options = EvalOptions::default();
    let k = options.ks.iter().copied().max().unwrap_or(20);
    let popularity = split.train.item_popularity();

    // Ranks a user from the retriever's top k: every other item scores −∞,
    // which the harness never ranks.
    let through = |retriever: &dyn Retriever| {
        evaluate_with(&split, &options, &popularity, |history, scores| {
            let query = model.fold_in(history);
            let mut seen: Vec<u32> = history.iter().map(|&(i, _)| i).collect();
            seen.sort_unstable();
            scores.fill(f32::NEG_INFINITY);
            for (item, score) in retriever.search(&query, k, &|i| seen.binary_search(&i).is_err()) {
                scores[item as usize] = score;
            }
        })
    };
    println!(
        "MovieLens-100K: users={} items={} train={} dim={dim}",
        log.n_users(),
        log.n_items(),
        train.nnz()
    );
    let dense = evaluate(&model, &split, &options)?;
    let exact = through(&ExactIndex::new(&vectors, dim))?;
    print_metrics("dense scores (harness)", &dense, None);
    print_metrics("exact retrieval", &exact, None);
    // The automatic shape (about 4·√n lists, probes 1% of them, at least 16)
    // and the same lists with fewer probes, to show what the approximation costs.
    for (lists, probes) in [(0, 8), (0, 0), (0, 32), (0, 48), (0, 64), (16, 8)] {
        let config = RetrievalConfig {
            lists,
            probes,
            ..RetrievalConfig::default()
        };
        let ivf = IvfIndex::build(&vectors, dim, &config);
        let m = through(&ivf)?;
        print_metrics(
            &format!("ivf lists={} probes={}", ivf.lists(), ivf.probes()),
            &m,
            Some(&exact),
        );
    }
    Ok(())
}

fn print_metrics(name: &str, m: &Metrics, baseline: Option<&Metrics>) {
    let ndcg = |m: &Metrics| m.at_k(10).map_or(0.0, |a| a.ndcg);
    let recall = |m: &Metrics| m.at_k(20).map_or(0.0, |a| a.recall);
    let relative = baseline.map_or(String::new(), |b| {
        format!(
            "  ΔNDCG@10={:+.2}% ΔRecall@20={:+.2}%",
            100.0 * (ndcg(m) / ndcg(b) - 1.0),
            100.0 * (recall(m) / recall(b) - 1.0)
        )
    });
    println!(
        "  {name:32} NDCG@10={:.4} Recall@20={:.4}{relative}",
        ndcg(m),
        recall(m)
    );
}

/// The large model's item vectors (row-major), their dimension, and the
/// query vectors.
struct LargeModel {
    items: Vec<f32>,
    dim: usize,
    queries: Vec<Vec<f32>>,
}

/// Item and sampled user factors of the large model.
fn large_factors(options: &Options) -> Result<LargeModel, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let model = if let Some(path) = &options.snapshot {
        let (trained, _) = tephra_models::snapshot::load(path)?;
        match trained.model() {
            Model::Ials(m) => m.clone(),
            _ => return Err(format!("{} is not an iALS snapshot", path.display()).into()),
        }
    } else {
        let path = options.log.as_ref().ok_or("--log or --snapshot needed")?;
        let log = Log::open(path)?;
        let x = Sequences::from_log(&log).to_matrix()?;
        println!(
            "log: users={} items={} interactions={} load_s={:.1}",
            log.n_users(),
            log.n_items(),
            x.nnz(),
            started.elapsed().as_secs_f64()
        );
        let config = IalsConfig {
            factors: 64,
            iterations: options.iterations,
            ..IalsConfig::default()
        };
        let fit = Instant::now();
        let model = IalsModel::fit(&x, &config)?;
        println!(
            "iALS: factors=64 iterations={} train_s={:.1}",
            options.iterations,
            fit.elapsed().as_secs_f64()
        );
        model
    };
    let items = model.item_factors();
    let users = model.user_factors();
    let mut state = 0x5eed_u64;
    let mut queries = Vec::new();
    for _ in 0..options.queries.min(users.n_rows()) * 4 {
        if queries.len() == options.queries {
            break;
        }
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = ((state >> 33) % users.n_rows() as u64) as usize;
        let v = users.get(u).unwrap_or_default();
        // Users without history have the zero vector: nothing to retrieve.
        if v.iter().any(|&x| x != 0.0) {
            queries.push(v.to_vec());
        }
    }
    Ok(LargeModel {
        items: items.to_row_major(),
        dim: items.dim(),
        queries,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn large(options: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let LargeModel {
        items: vectors,
        dim,
        queries,
    } = large_factors(options)?;
    let n = vectors.len() / dim.max(1);
    println!("large model: items={n} dim={dim} queries={}", queries.len());

    let exact = ExactIndex::new(&vectors, dim);
    let mut truth = Vec::with_capacity(queries.len());
    let mut times = Vec::with_capacity(queries.len());
    for q in &queries {
        let started = Instant::now();
        let result = exact.search(q, 100, &|_| true);
        times.push(started.elapsed().as_secs_f64() * 1e6);
        truth.push(result);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "exact: µs/query mean={:.0} p99={:.0} (k=100) memory_mb={:.1}",
        times.iter().sum::<f64>() / times.len().max(1) as f64,
        percentile(&times, 0.99),
        exact.memory_bytes() as f64 / 1e6
    );

    let config = RetrievalConfig {
        lists: options.lists,
        ..RetrievalConfig::default()
    };
    let started = Instant::now();
    let ivf = IvfIndex::build(&vectors, dim, &config);
    println!(
        "ivf: build_s={:.1} lists={} auto_probes={} memory_mb={:.1} threads={}",
        started.elapsed().as_secs_f64(),
        ivf.lists(),
        ivf.probes(),
        ivf.memory_bytes() as f64 / 1e6,
        rayon::current_num_threads()
    );
    let auto = ivf.probes();
    let probes = if options.probes.is_empty() {
        let mut p = vec![auto / 4, auto / 2, auto, auto * 2, auto * 4];
        p.retain(|&p| p >= 1 && p <= ivf.lists());
        p.dedup();
        p
    } else {
        options.probes.clone()
    };
    let mut ivf = ivf;
    for (w, p) in options
        .radius_weights
        .iter()
        .flat_map(|&w| probes.iter().map(move |&p| (w, p)))
    {
        ivf = ivf.with_probes(p).with_radius_weight(w);
        let mut times = Vec::with_capacity(queries.len());
        let (mut hits10, mut hits100) = (0usize, 0usize);
        for (q, truth) in queries.iter().zip(&truth) {
            let started = Instant::now();
            let got = ivf.search(q, 10, &|_| true);
            times.push(started.elapsed().as_secs_f64() * 1e6);
            hits10 += got
                .iter()
                .filter(|g| truth[..10.min(truth.len())].contains(g))
                .count();
        }
        for (q, truth) in queries.iter().zip(&truth) {
            let got = ivf.search(q, 100, &|_| true);
            hits100 += got.iter().filter(|g| truth.contains(g)).count();
        }
        times.sort_by(f64::total_cmp);
        let m = queries.len().max(1) as f64;
        println!(
            "  radius_weight={w:.2} probes={p:5} (~{:.0} vectors scanned) recall@10={:.4} recall@100={:.4} µs/query mean={:.1} p99={:.1}",
            p as f64 * n as f64 / ivf.lists() as f64,
            hits10 as f64 / (10.0 * m),
            hits100 as f64 / (100.0 * m),
            times.iter().sum::<f64>() / m,
            percentile(&times, 0.99)
        );
    }
    Ok(())
}
