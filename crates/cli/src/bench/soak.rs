//! `tephra bench soak`: a long run of mixed traffic against a real server.
//!
//! A `tephra serve` process gets a catalogue and a history first (the
//! synthetic log of the ingestion benchmark: 10,000 users, 5,000 items), then
//! this process sends, at fixed rates and for `--minutes`, recommendations
//! for random users (with their impressions and clicks sent back, as a client
//! would), event batches, list and analytics reads. The server keeps training
//! in the background as it would in production. Every `--report-secs` the
//! command prints the window's throughput, latency percentiles, errors and
//! the server's resident memory; at the end, the totals and how much memory
//! grew after the warm-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tephra_core::Timestamp;

use crate::bench::dataset::{self, EventStream};
use crate::bench::process_stats::resident_bytes;
use crate::bench::server_process::ServerProcess;
use crate::bench::stats::percentile;
use crate::cli::SoakBenchArgs;
use crate::number::grouped;

/// The kinds of request, with their share of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `GET /v1/recommend/{user}`, then its impressions and a click posted back.
    Recommend,
    /// `POST /v1/events` with a batch of 20 events.
    Events,
    /// `GET /v1/trending` or `/v1/popular`.
    List,
    /// An analytics query.
    Analytics,
}

/// What one window (or the whole run) saw.
#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    /// Events the server accepted.
    events: u64,
}

/// Runs the soak benchmark.
pub async fn run(args: &SoakBenchArgs) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let dir = scratch.path().join("data");
    let log = scratch.path().join("server.log");
    let client = crate::bench::load::client(64)?;
    let settings: &[(&str, &str)] = if args.no_training {
        &[("TEPHRA_TRAINING__ENABLED", "false")]
    } else {
        &[]
    };
    let server =
        ServerProcess::start_with(&dir, &log, &client, settings, Duration::from_secs(120)).await?;
    let base = server.base_url().to_owned();
    let history = dataset::http_bodies(args.history, 1000, 7, Timestamp::now());
    crate::bench::load::post_all(&client, &format!("{base}/v1/events"), Arc::new(history), 8)
        .await
        .context("cannot load the history")?;
    client
        .post(format!("{base}/v1/admin/train"))
        .send()
        .await
        .context("cannot train the first model")?;
    println!(
        "Soak: {} minutes at {} requests/s (recommend {}%, event batches {}%, lists {}%, analytics {}%), \
         after a history of {} events; background training {}.",
        args.minutes,
        args.rate,
        60,
        25,
        10,
        5,
        grouped(args.history),
        if args.no_training { "off" } else { "on" }
    );
    println!(
        "{:>7} {:>10} {:>9} {:>9} {:>9} {:>7} {:>10}",
        "minute", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "RSS MiB"
    );

    let window = Arc::new(Mutex::new(Window::default()));
    let total = Arc::new(Mutex::new(Window::default()));
    let events = Arc::new(Mutex::new(EventStream::new(11, Timestamp::now())));
    let started = Instant::now();
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let report = Duration::from_secs(args.report_secs.max(1));
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1.0));
    let mut rng = StdRng::seed_from_u64(5);
    let mut next_report = started + report;
    // (seconds since the start, resident bytes, events accepted so far)
    let mut rss: Vec<(f64, u64, u64)> = Vec::new();
    let mut sent: u64 = 0;
    let pid = server.pid();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(args.max_in_flight));
    while started.elapsed() < duration {
        // Open loop: request `sent` is due at `sent × interval`; its latency
        // counts from then, so a server that falls behind is charged for it.
        let due = started + interval.mul_f64(sent as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        sent += 1;
        let kind = match rng.random_range(0..100) {
            0..60 => Kind::Recommend,
            60..85 => Kind::Events,
            85..95 => Kind::List,
            _ => Kind::Analytics,
        };
        let user = format!("u{}", crate::sample::skewed_index(&mut rng, dataset::USERS));
        let (client, base, task_window, task_total, events) = (
            client.clone(),
            base.clone(),
            Arc::clone(&window),
            Arc::clone(&total),
            Arc::clone(&events),
        );
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            // More than `max_in_flight` outstanding: the server is far behind.
            let error = "too many requests in flight (the server fell behind)".to_owned();
            for w in [&window, &total] {
                let mut w = w.lock();
                w.errors += 1;
                w.first_error.get_or_insert(error.clone());
            }
            continue;
        };
        tokio::spawn(async move {
            let outcome = request(&client, &base, kind, &user, &events).await;
            let latency = due.elapsed();
            for w in [&task_window, &task_total] {
                let mut w = w.lock();
                match &outcome {
                    Ok(accepted) => {
                        w.latencies.push(latency);
                        w.events += accepted;
                    }
                    Err(e) => {
                        w.errors += 1;
                        w.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            drop(permit);
        });
        if Instant::now() >= next_report {
            let elapsed = started.elapsed().as_secs_f64();
            let memory = resident_bytes(pid).unwrap_or(0);
            rss.push((elapsed, memory, total.lock().events));
            let mut w = std::mem::take(&mut *window.lock());
            print_window(elapsed / 60.0, &mut w, report, memory);
            next_report += report;
        }
    }
    // Let the last requests finish.
    let _ = in_flight
        .acquire_many(args.max_in_flight as u32)
        .await
        .context("waiting for the last requests")?;
    let mut all = std::mem::take(&mut *total.lock());
    all.latencies.sort_unstable();
    let warm = rss
        .iter()
        .find(|(t, _, _)| *t >= args.warmup_minutes * 60.0)
        .map(|&(_, m, e)| (m, e));
    let last = rss.last().map(|&(_, m, e)| (m, e));
    println!(
        "\nTotal: {} requests answered, {} errors, {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms.",
        grouped(all.latencies.len() as u64),
        all.errors,
        all.latencies.len() as f64 / started.elapsed().as_secs_f64(),
        ms(percentile(&all.latencies, 50.0)),
        ms(percentile(&all.latencies, 99.0)),
        ms(percentile(&all.latencies, 99.9)),
    );
    if let Some(e) = &all.first_error {
        println!("First error: {e}");
    }
    if let (Some((warm, warm_events)), Some((last, last_events))) = (warm, last) {
        let added = last_events.saturating_sub(warm_events);
        println!(
            "Resident memory: {:.0} MiB after {} min of warm-up, {:.0} MiB at the end ({:+.1}%), \
             while {} events were added ({:.0} bytes per added event; the live state keeps \
             every event of a user's history in memory).",
            warm as f64 / 1048576.0,
            args.warmup_minutes,
            last as f64 / 1048576.0,
            (last as f64 / warm as f64 - 1.0) * 100.0,
            grouped(added),
            (last as f64 - warm as f64) / added.max(1) as f64
        );
    }
    drop(server);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_window(minute: f64, w: &mut Window, span: Duration, memory: u64) {
    w.latencies.sort_unstable();
    println!(
        "{minute:>7.1} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>10.0}",
        w.latencies.len() as f64 / span.as_secs_f64(),
        ms(percentile(&w.latencies, 50.0)),
        ms(percentile(&w.latencies, 99.0)),
        ms(w.latencies.last().copied().unwrap_or_default()),
        w.errors,
        memory as f64 / 1048576.0
    );
}

/// Sends one request of `kind`; a non-2xx answer is an error. Returns how
/// many events the server accepted.
async fn request(
    client: &reqwest::Client,
    base: &str,
    kind: Kind,
    user: &str,
    events: &Mutex<EventStream>,
) -> anyhow::Result<u64> {
    let mut accepted = 0;
    match kind {
        Kind::Recommend => {
            let answer = get(client, &format!("{base}/v1/recommend/{user}?n=10")).await?;
            let request_id = answer["request_id"].as_str().unwrap_or_default();
            let shown: Vec<Value> = answer["items"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(position, item)| {
                    json!({"user_id": user, "item_id": item["id"], "type": "impression",
                           "request_id": request_id, "position": position})
                })
                .collect();
            let mut back = shown.clone();
            if let Some(first) = shown.first() {
                back.push(
                    json!({"user_id": user, "item_id": first["item_id"], "type": "click",
                                 "request_id": request_id}),
                );
            }
            if !back.is_empty() {
                accepted = back.len() as u64;
                post(client, &format!("{base}/v1/events"), &Value::Array(back)).await?;
            }
        }
        Kind::Events => {
            let batch: Vec<Value> = {
                let mut stream = events.lock();
                (0..20)
                    .map(|_| {
                        let mut e = stream.next_event();
                        e.timestamp = Timestamp::now();
                        serde_json::to_value(e).unwrap_or(Value::Null)
                    })
                    .collect()
            };
            accepted = batch.len() as u64;
            post(client, &format!("{base}/v1/events"), &Value::Array(batch)).await?;
        }
        Kind::List => {
            get(client, &format!("{base}/v1/trending?n=20")).await?;
        }
        Kind::Analytics => {
            get(client, &format!("{base}/v1/analytics/ctr?by=source")).await?;
        }
    }
    Ok(accepted)
}

async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let response = client.get(url).send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "GET {url}: {status}: {body}");
    Ok(body)
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<()> {
    let response = client.post(url).json(body).send().await?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    anyhow::ensure!(status.is_success(), "POST {url}: {status}: {text}");
    Ok(())
}
