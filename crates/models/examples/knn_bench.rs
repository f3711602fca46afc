//! Item-kNN (and RP3beta) training time on a `user_id,item_id,timestamp` CSV log,
//! for side-by-side comparison with `implicit` (`bench/csv_peers.py`).
//!
//! The training matrix is cut exactly as the peer script cuts it: per user,
//! events sorted by (timestamp, item id), the last 20% (rounded half-to-even, at
//! least one) held out, the rest binary. Only the fit is timed.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p tephra-models --example knn_bench -- FILE.csv
//! [--model cosine|jaccard|bm25|rp3beta] [--neighbours 100] [--runs 3]`

use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::time::Instant;

use tephra_core::{Duplicates, Interactions};
use tephra_models::itemknn::{ItemKnn, ItemKnnConfig, KnnSimilarity};
use tephra_models::rp3beta::{Rp3Beta, Rp3BetaConfig};
use tephra_models::Recommender;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: knn_bench FILE.csv [--model M] [--neighbours K] [--runs N]")?;
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|p| args.get(p + 1))
            .cloned()
    };
    let model = flag("--model").unwrap_or_else(|| "cosine".into());
    let neighbours: usize = flag("--neighbours").map_or(Ok(100), |v| v.parse())?;
    let runs: usize = flag("--runs").map_or(Ok(3), |v| v.parse())?;

    let started = Instant::now();
    let train = load_train(path)?;
    println!(
        "load_s={:.1} users={} items={} train={} threads={}",
        started.elapsed().as_secs_f64(),
        train.n_users(),
        train.n_items(),
        train.nnz(),
        rayon::current_num_threads()
    );
    // Peak memory from here on is the fit's (plus the matrix), not the loader's.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let cpu_before = cpu_seconds();
        let fitted: Box<dyn Recommender> = match model.as_str() {
            "rp3beta" => Box::new(Rp3Beta::fit(
                &train,
                &Rp3BetaConfig {
                    neighbours,
                    ..Default::default()
                },
            )?),
            other => {
                let similarity = match other {
                    "cosine" => KnnSimilarity::Cosine { shrinkage: 0.0 },
                    "jaccard" => KnnSimilarity::Jaccard,
                    "bm25" => KnnSimilarity::Bm25 { k1: 1.2, b: 0.75 },
                    _ => return Err(format!("unknown model {other}").into()),
                };
                Box::new(ItemKnn::fit(
                    &train,
                    &ItemKnnConfig {
                        similarity,
                        neighbours,
                    },
                )?)
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        println!(
            "{model} K={neighbours} fit_s={seconds:.2} cpu_s={}",
            cpu.map_or_else(|| "?".into(), |c| format!("{c:.2}"))
        );
        times.push(seconds);
        drop(fitted);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{model} K={neighbours} median_fit_s={:.2} peak_rss_mib={}{}",
        times[times.len() / 2],
        peak_rss_mib().map_or_else(|| "?".into(), |m| m.to_string()),
        if reset {
            " (while fitting)"
        } else {
            " (whole run)"
        }
    );
    Ok(())
}

/// The binary training matrix of the standard per-user temporal 80/20 split.
fn load_train(path: &str) -> Result<Interactions, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut rows: Vec<(&str, &str, i64)> = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let mut fields = line.split(',');
        let (Some(user), Some(item), Some(time)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("line {}: expected user_id,item_id,timestamp", n + 1).into());
        };
        rows.push((user, item, time.trim().parse()?));
    }
    // Dense indices in sorted-id order, as the peer's categorical codes.
    let index = |ids: HashSet<&str>| -> HashMap<String, u32> {
        let mut ids: Vec<&str> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.into_iter()
            .enumerate()
            .map(|(k, id)| (id.to_owned(), k as u32))
            .collect()
    };
    let users = index(rows.iter().map(|r| r.0).collect());
    let items = index(rows.iter().map(|r| r.1).collect());
    let mut per_user: Vec<Vec<(i64, u32)>> = vec![Vec::new(); users.len()];
    for &(u, i, t) in &rows {
        per_user[users[u] as usize].push((t, items[i]));
    }
    let mut triples = Vec::with_capacity(rows.len());
    for (u, events) in per_user.iter_mut().enumerate() {
        events.sort_unstable();
        let n = events.len();
        let n_test = ((n as f64 * 0.2).round_ties_even() as usize).clamp(1, n);
        triples.extend(
            events[..n - n_test]
                .iter()
                .map(|&(_, i)| (u as u32, i, 1.0)),
        );
    }
    Ok(Interactions::from_triples(
        users.len(),
        items.len(),
        triples,
        Duplicates::Max,
    )?)
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// User plus system CPU time of this process so far (Linux), in seconds: on a
/// shared machine the wall time depends on the neighbours, the CPU time less.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 12th and 13th of them, in clock ticks (100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
