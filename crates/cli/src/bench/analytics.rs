//! `tephra bench analytics`: how fast the analytics API answers over a large
//! event log, and how long startup takes to rebuild its aggregates.
//!
//! The log is synthetic: impressions and clicks (with scenes, recall sources
//! and an experiment's variants, as attribution stamps them), reads and
//! purchases, spread over 90 days, users and items skewed like real traffic.
//! It is imported once into a data directory kept under the cache folder;
//! then a `tephra serve` process is started on it, and every analytics route
//! is asked in turn from this process, one request at a time. Latency is
//! reported per route (p50 and p99 over all requests of the runs, and the
//! median of the runs' p99), beside `/healthz` as the HTTP floor.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tephra_core::{Attribution, Event, Timestamp};
use tephra_store::Store;

use crate::bench::server_process::ServerProcess;
use crate::bench::stats::{median, percentile};
use crate::cli::AnalyticsBenchArgs;
use crate::number::grouped;
use crate::sample::skewed_index;

const DAY_MS: i64 = 86_400_000;
const SOURCES: &[&str] = &[
    "collaborative",
    "item_to_item",
    "trending",
    "popular",
    "latest",
];

/// The routes asked, with a label.
const ROUTES: &[(&str, &str)] = &[
    ("events (hourly, 48 h)", "/v1/analytics/events"),
    (
        "events (daily, 90 days)",
        "/v1/analytics/events?interval=day&from={from}",
    ),
    ("ctr by scene", "/v1/analytics/ctr?by=scene"),
    (
        "ctr by source (daily)",
        "/v1/analytics/ctr?by=source&interval=day",
    ),
    ("ctr by variant", "/v1/analytics/ctr?by=variant"),
    ("top items", "/v1/analytics/top-items?type=click&n=20"),
    ("coverage", "/v1/analytics/coverage"),
    ("new vs returning users", "/v1/analytics/users?from={from}"),
    ("experiment results", "/v1/experiments/bench/results"),
    ("/healthz (floor)", "/healthz"),
];

/// Runs the benchmark.
pub async fn run(args: &AnalyticsBenchArgs) -> anyhow::Result<()> {
    let dir = PathBuf::from(".cache").join(format!(
        "bench-analytics-{}-{}-{}",
        args.events, args.users, args.items
    ));
    let now = prepare(&dir, args).await?;
    let client = reqwest::Client::new();
    let log = dir.join("server.log");
    let started = Instant::now();
    let server = ServerProcess::start_with(
        &dir,
        &log,
        &client,
        &[("TEPHRA_TRAINING__ENABLED", "false")],
        Duration::from_secs(3600),
    )
    .await?;
    let startup = started.elapsed();
    println!(
        "Server ready in {:.1} s over {} events (replaying the log rebuilds every aggregate).",
        startup.as_secs_f64(),
        grouped(args.events)
    );
    let from = Timestamp(now.millis() - 90 * DAY_MS).to_rfc3339();
    let mut all: Vec<Vec<Duration>> = vec![Vec::new(); ROUTES.len()];
    let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); ROUTES.len()];
    for _ in 0..args.runs {
        for (r, (_, path)) in ROUTES.iter().enumerate() {
            let url = format!("{}{}", server.base_url(), path.replace("{from}", &from));
            let mut times = Vec::with_capacity(args.queries);
            for _ in 0..args.queries {
                let t = Instant::now();
                let response = client
                    .get(&url)
                    .send()
                    .await
                    .context("the server did not answer")?;
                let status = response.status();
                let body = response.bytes().await?;
                times.push(t.elapsed());
                if !status.is_success() {
                    anyhow::bail!(
                        "{url} answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
            times.sort_unstable();
            p99s[r].push(percentile(&times, 99.0).as_secs_f64() * 1e3);
            all[r].extend(times);
        }
    }
    println!(
        "\n{:<26} {:>10} {:>10} {:>16}   ({} runs × {} requests, one at a time)",
        "route", "p50 ms", "p99 ms", "median p99 ms", args.runs, args.queries
    );
    for (r, (label, _)) in ROUTES.iter().enumerate() {
        let times = &mut all[r];
        times.sort_unstable();
        println!(
            "{label:<26} {:>10.3} {:>10.3} {:>16.3}",
            percentile(times, 50.0).as_secs_f64() * 1e3,
            percentile(times, 99.0).as_secs_f64() * 1e3,
            median(&p99s[r])
        );
    }
    println!("Target: every analytics route under 50 ms at p99.");
    drop(server);
    Ok(())
}

/// Imports the synthetic log into `dir` unless a finished import is there;
/// returns the time the log ends at.
async fn prepare(dir: &Path, args: &AnalyticsBenchArgs) -> anyhow::Result<Timestamp> {
    let done = dir.join("imported");
    if let Ok(text) = std::fs::read_to_string(&done) {
        if let Ok(ms) = text.trim().parse::<i64>() {
            println!("Using the log imported earlier in {}.", dir.display());
            return Ok(Timestamp(ms));
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let now = Timestamp::now();
    let store = crate::data_dir::open_store(dir)?;
    let started = Instant::now();
    let mut session = store.begin_import().await?;
    let mut rng = StdRng::seed_from_u64(42);
    let batch = 100_000u64;
    let mut written = 0u64;
    while written < args.events {
        let n = batch.min(args.events - written);
        let events: Vec<Event> = (0..n)
            .map(|_| synthetic_event(&mut rng, args, now))
            .collect();
        session.add_events(events).await?;
        written += n;
        eprint!(
            "\rImporting {} of {} events",
            grouped(written),
            grouped(args.events)
        );
    }
    session.commit().await?;
    drop(store);
    eprintln!();
    println!(
        "Imported {} events in {:.1} s.",
        grouped(args.events),
        started.elapsed().as_secs_f64()
    );
    let experiment = serde_json::json!({
        "name": "bench", "scene": "home", "status": "running", "control": "a",
        "variants": [{"name": "a", "weight": 1.0, "overrides": {}}, {"name": "b", "weight": 1.0, "overrides": {}}],
        "created_at": Timestamp(now.millis() - 30 * DAY_MS), "started_at": Timestamp(now.millis() - 30 * DAY_MS),
        "stopped_at": null
    });
    let store = crate::data_dir::open_store(dir)?;
    store.put_experiment("bench", &experiment).await?;
    drop(store);
    std::fs::write(&done, now.millis().to_string())?;
    Ok(now)
}

/// One event of the synthetic log.
fn synthetic_event(rng: &mut StdRng, args: &AnalyticsBenchArgs, now: Timestamp) -> Event {
    let user = skewed_index(rng, args.users as usize);
    let item = skewed_index(rng, args.items as usize);
    let age = (rng.random::<f64>().powi(2) * 90.0 * DAY_MS as f64) as i64;
    let kind: f64 = rng.random();
    let (event_type, value) = match kind {
        k if k < 0.70 => ("impression", 1.0),
        k if k < 0.85 => ("click", 1.0),
        k if k < 0.97 => ("read", rng.random_range(5.0..600.0)),
        k if k < 0.99 => ("like", 1.0),
        _ => ("purchase", rng.random_range(1.0..100.0)),
    };
    let from_feed = rng.random_bool(0.8);
    Event {
        user_id: format!("u{user}"),
        item_id: format!("i{item}"),
        event_type: event_type.to_owned(),
        value,
        timestamp: Timestamp(now.millis() - age),
        request_id: None,
        scene: from_feed.then(|| {
            if rng.random_bool(0.7) {
                "home"
            } else {
                "item_page"
            }
            .to_owned()
        }),
        position: from_feed.then(|| rng.random_range(0..10)),
        attribution: from_feed.then(|| Attribution {
            source: Some(SOURCES[rng.random_range(0..SOURCES.len())].to_owned()),
            experiment: Some("bench".to_owned()),
            variant: Some(if user.is_multiple_of(2) { "a" } else { "b" }.to_owned()),
        }),
    }
}
