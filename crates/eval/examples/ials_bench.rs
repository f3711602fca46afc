//! iALS training time and accuracy on a CSV log, comparable with the peer script.
//!
//! `cargo run --release -p tephra-eval --example ials_bench -- FILE.csv [options]`
//!
//! Standard protocol (per user, last 20% by (time, item id) is test), trains on
//! the binary training matrix, prints training seconds, peak memory and
//! NDCG@10 / Recall@20 on a sample of users. Options (defaults in brackets):
//! `--factors 64 --iterations 15 --cg-steps 2 --alpha A --unobserved-weight W
//! --regularization L --frequency-exponent NU` (the library defaults),
//! `--eval-users 3000`, `--users-file PATH`.
//!
//! To score exactly the users the peer script samples (numpy
//! `default_rng(0).choice(U, N, replace=False)` over users indexed in sorted id
//! order), write their ids to a file, one per line, and pass `--users-file`:
//!
//! ```text
//! python3 -c 'import sys, numpy as np, pandas as pd
//! ids = pd.read_csv(sys.argv[1], usecols=["user_id"], dtype={"user_id": str}).user_id.astype("category").cat.categories
//! print("\n".join(ids[np.random.default_rng(0).choice(len(ids), min(3000, len(ids)), replace=False)]))' FILE.csv > users.txt
//! ```
//!
//! Without a file, `--eval-users` users are drawn with a fixed seed here.
//! Threads: `RAYON_NUM_THREADS`.

use std::path::PathBuf;
use std::time::Instant;

use tephra_eval::{evaluate, EvalOptions, Log, Protocol, Sequences};
use tephra_models::ials::{IalsConfig, IalsTrainer, Isa};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut config = IalsConfig::default();
    let mut eval_users = 3000usize;
    let mut users_file: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--factors" => config.factors = value()?.parse()?,
            "--iterations" => config.iterations = value()?.parse()?,
            "--cg-steps" => config.cg_steps = value()?.parse()?,
            "--alpha" => config.alpha = value()?.parse()?,
            "--unobserved-weight" => config.unobserved_weight = value()?.parse()?,
            "--regularization" => config.regularization = value()?.parse()?,
            "--frequency-exponent" => config.frequency_exponent = value()?.parse()?,
            "--seed" => config.seed = value()?.parse()?,
            "--eval-users" => eval_users = value()?.parse()?,
            "--users-file" => users_file = Some(PathBuf::from(value()?)),
            other if !other.starts_with("--") && path.is_none() => {
                path = Some(PathBuf::from(other))
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let path = path.ok_or("usage: ials_bench FILE.csv [options]")?;

    let started = Instant::now();
    let log = Log::open(&path)?;
    let mut split = Protocol::STANDARD.split(&Sequences::from_log(&log))?;
    let train = split.train.to_matrix()?;
    println!(
        "load_s={:.1} users={} items={} train={} test={} isa={} threads={}",
        started.elapsed().as_secs_f64(),
        log.n_users(),
        log.n_items(),
        train.nnz(),
        split.test.iter().map(Vec::len).sum::<usize>(),
        Isa::detect().name(),
        rayon::current_num_threads(),
    );

    // Keep only the sampled users' test sets: they are the ones evaluated.
    let sampled = match users_file {
        Some(file) => {
            let text = std::fs::read_to_string(&file)?;
            let mut users = Vec::new();
            for id in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                users.push(
                    log.users()
                        .get(id)
                        .ok_or(format!("user {id} of {} is not in the log", file.display()))?,
                );
            }
            users
        }
        None => sample(log.n_users(), eval_users, 0),
    };
    let mut keep = vec![false; log.n_users()];
    for &u in &sampled {
        keep[u as usize] = true;
    }
    for (u, test) in split.test.iter_mut().enumerate() {
        if !keep[u] {
            test.clear();
        }
    }

    let rss_before = peak_rss_mib();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut trainer = IalsTrainer::new(&train, &config)?;
    let mut per_iteration = Vec::with_capacity(config.iterations);
    for _ in 0..config.iterations {
        let iteration = Instant::now();
        trainer.iterate();
        per_iteration.push(format!("{:.2}", iteration.elapsed().as_secs_f64()));
    }
    let model = trainer.into_model();
    let train_s = started.elapsed().as_secs_f64();
    println!("iteration_s={}", per_iteration.join(","));
    let train_cpu_s = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let rss_after = peak_rss_mib();
    let metrics = evaluate(&model, &split, &EvalOptions::default())?;
    let (Some(at10), Some(at20)) = (metrics.at_k(10), metrics.at_k(20)) else {
        return Err("metrics at 10 and 20 missing".into());
    };
    println!(
        "ials (tephra) train_s={train_s:.2} train_cpu_s={} Recall@20={:.4} NDCG@10={:.4} users={} \
         peak_rss_mib before_train={} after_train={} config={config:?}",
        train_cpu_s.map_or("n/a".into(), |c| format!("{c:.2}")),
        at20.recall,
        at10.ndcg,
        metrics.users,
        rss_before.map_or("n/a".into(), |m| m.to_string()),
        rss_after.map_or("n/a".into(), |m| m.to_string()),
    );
    Ok(())
}

/// `n` distinct indices below `population`, drawn with a fixed seed.
fn sample(population: usize, n: usize, seed: u64) -> Vec<u32> {
    let mut all: Vec<u32> = (0..population as u32).collect();
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let n = n.min(population);
    for k in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let pick = k + (state % (population - k) as u64) as usize;
        all.swap(k, pick);
    }
    all.truncate(n);
    all
}

/// Peak resident memory of this process so far (Linux), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// CPU time (user + system) this process has used so far (Linux), in seconds:
/// unlike wall time, not inflated when other processes share the cores.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name; utime and stime are the
    // 12th and 13th of them, in clock ticks (100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
