//! EASE^R training time and peak memory on a CSV log, next to a NumPy
//! reference (see `scripts/bench-ease.sh`, which runs both side by side).
//!
//! `cargo run --release -p tephra-eval --example ease_bench -- FILE.csv [--lambda 500] [--runs 3]`
//!
//! Trains on every interaction of the file (binary matrix, repeats collapsed)
//! and prints one line per run: the fit time (Gram matrix, factorization and
//! weights; loading excluded) and the peak resident memory so far. Threads:
//! `RAYON_NUM_THREADS`.

use std::path::PathBuf;
use std::time::Instant;

use tephra_eval::{Log, Sequences};
use tephra_models::ease::{Ease, EaseConfig};
use tephra_models::Recommender;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut lambda = 500.0f32;
    let mut runs = 3usize;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--lambda" => lambda = value()?.parse()?,
            "--runs" => runs = value()?.parse()?,
            other if !other.starts_with("--") && path.is_none() => {
                path = Some(PathBuf::from(other))
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let path = path.ok_or("usage: ease_bench FILE.csv [--lambda L] [--runs N]")?;
    let log = Log::open(&path)?;
    let x = Sequences::from_log(&log).to_matrix()?;
    println!(
        "users={} items={} nnz={} threads={} peak_rss_mib_before={}",
        x.n_users(),
        x.n_items(),
        x.nnz(),
        rayon::current_num_threads(),
        peak_rss_mib().unwrap_or(0)
    );
    let config = EaseConfig {
        lambda,
        max_items: x.n_items(),
    };
    for run in 1..=runs {
        let started = Instant::now();
        let model = Ease::fit(&x, &config)?;
        let fit_s = started.elapsed().as_secs_f64();
        println!(
            "ease (tephra) run={run} fit_s={fit_s:.3} peak_rss_mib={} n_items={}",
            peak_rss_mib().unwrap_or(0),
            model.n_items()
        );
    }
    Ok(())
}

/// Peak resident set size of this process so far (Linux), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
