//! `tephra bench serve`: the real-time serving path at scale.
//!
//! Everything a deployment runs, as separate processes of this binary:
//! `tephra gen` writes a synthetic log, `tephra import events` loads it into a
//! data directory, `tephra train` fits the model and saves its snapshot, and
//! `tephra serve` loads both. Log and data directory are kept under the cache
//! folder, keyed by their parameters, so later runs go straight to the
//! measurements (`--fresh` rebuilds the data directory).
//!
//! Then, from this process:
//! - load: `--connections` keep-alive connections ask
//!   `/v1/recommend/{user}?n=10` for random generated users for `--seconds`,
//!   then the same load hits `/healthz`, the ceiling of the HTTP stack. Every
//!   latency is kept; the server's CPU time (from `/proc`) divided by the
//!   requests it answered gives its CPU per request. The client shares the
//!   machine, so it runs on its own small runtime (`--client-threads`);
//! - freshness: for random users, click the top recommended item and ask again
//!   at once; the event is reflected when the item is gone (a user is never
//!   recommended what they interacted with), timed from the POST to the answer
//!   of the second GET.
//!
//! The freshness clicks are stored: a reused data directory gains
//! `--freshness-samples` events per run (the model snapshot stays valid).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tephra_core::{Event, EventTypes, Timestamp};

use super::accuracy::{recommend_url, run_step, tephra};
use super::load;
use super::process_stats::{self, mib};
use super::server_process::{without_tephra_settings, ServerProcess};
use super::stats::{median, percentile};
use crate::cli::ServeBenchArgs;
use crate::number::{grouped, grouped_f64};

/// Items asked for per recommendation.
const N: usize = 10;
/// Distinct request URLs prepared for the load; cycled through.
const URL_POOL: usize = 1 << 16;
/// How long loading a large data directory may take.
const READY_TIMEOUT: Duration = Duration::from_secs(3600);
/// Topics of the generated log (`tephra gen`'s default, fewer for tiny catalogues).
const TOPICS: u64 = 20;

/// Targets on 2 cores (see README).
const P50_TARGET_MS: f64 = 2.0;
const P99_TARGET_MS: f64 = 10.0;
const CPU_TARGET_MS: f64 = 0.5;
const RATE_TARGET: f64 = 2_000.0;
const FRESHNESS_P99_TARGET_MS: f64 = 10.0;

/// Runs the benchmark and prints the table. Blocking: it prepares the data
/// with subprocesses, then measures on a runtime of its own.
pub fn run(args: &ServeBenchArgs) -> anyhow::Result<()> {
    println!(
        "tephra bench serve: {} users, {} items, {} events, model {}; {} connections, \
         {} s per measurement after {} s warm-up, {} runs, {} CPUs",
        grouped(args.users),
        grouped(args.items),
        grouped(args.events),
        args.model,
        args.connections,
        args.seconds,
        args.warmup_seconds,
        args.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let data_dir = prepare(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::try_from(args.client_threads)?)
        .enable_all()
        .build()
        .context("cannot start the load generator's runtime")?;
    runtime.block_on(measure(args, &data_dir))
}

/// The generated log and a data directory holding it and a trained model,
/// reused when they exist. Returns the data directory.
fn prepare(args: &ServeBenchArgs) -> anyhow::Result<PathBuf> {
    let cache = &args.cache_dir;
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let scale = format!("{}-{}-{}", args.users, args.items, args.events);
    let csv = cache.join(format!("synth-{scale}.csv"));
    if csv.exists() {
        println!("gen: reusing {}", csv.display());
    } else {
        // Written aside and renamed, so an interrupted run leaves no partial log.
        let partial = cache.join(format!("synth-{scale}.csv.partial"));
        let exe = std::env::current_exe().context("cannot find the tephra executable")?;
        let mut gen = Command::new(exe);
        gen.arg("gen")
            .args(["--users", &args.users.to_string()])
            .args(["--items", &args.items.to_string()])
            .args(["--events", &args.events.to_string()])
            .args(["--topics", &TOPICS.min(args.items).to_string()])
            .arg("--out")
            .arg(&partial);
        without_tephra_settings(&mut gen);
        let started = Instant::now();
        run_step("tephra gen", gen)?;
        std::fs::rename(&partial, &csv)
            .with_context(|| format!("cannot rename {}", partial.display()))?;
        println!(
            "gen: wrote {} in {:.1} s",
            csv.display(),
            started.elapsed().as_secs_f64()
        );
    }

    let data_dir = cache
        .join("bench-serve")
        .join(format!("{scale}-{}", file_name_part(&args.model)));
    let snapshot = tephra_server::snapshot_path(
        &tephra_server::Config {
            data_dir: data_dir.clone(),
            ..tephra_server::Config::default()
        },
        tephra_store::DEFAULT_TENANT,
    );
    // `train` runs only after a complete import and writes the snapshot last.
    if snapshot.exists() && !args.fresh {
        println!(
            "import + train: reusing {} (--fresh rebuilds it)",
            data_dir.display()
        );
        return Ok(data_dir);
    }
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("cannot remove {}", data_dir.display()))?;
    }
    println!("import: {} into {} ...", csv.display(), data_dir.display());
    let started = Instant::now();
    let mut import = tephra(&data_dir);
    import.args(["import", "events"]).arg(&csv);
    print_indented(&run_step("tephra import events", import)?);
    println!("import: {:.1} s", started.elapsed().as_secs_f64());

    println!("train: {} ...", args.model);
    let started = Instant::now();
    let mut train = tephra(&data_dir);
    train.args(["train", "--model", &args.model]);
    print_indented(&run_step("tephra train", train)?);
    println!("train: {:.1} s", started.elapsed().as_secs_f64());
    if !snapshot.exists() {
        bail!(
            "`tephra train` saved no model at {}; nothing to serve",
            snapshot.display()
        );
    }
    Ok(data_dir)
}

/// Starts the server on `data_dir` and runs every measurement.
async fn measure(args: &ServeBenchArgs, data_dir: &Path) -> anyhow::Result<()> {
    let connections = usize::try_from(args.connections)?;
    let client = load::client(connections)?;
    let log = data_dir.with_extension("server.log");
    let started = Instant::now();
    let server = ServerProcess::start_with(
        data_dir,
        &log,
        &client,
        &[
            // Nothing retrains in the background while it is measured.
            ("TEPHRA_TRAINING__ENABLED", "false"),
            ("TEPHRA_TRAINING__MODEL", args.model.as_str()),
        ],
        READY_TIMEOUT,
    )
    .await?;
    let ready = started.elapsed();
    let base = server.base_url().to_owned();
    let model = served_model(&client, &base).await?;
    let pid = server.pid();
    println!(
        "serve: ready in {:.1} s (log {}); model {} ({} users, {} items, from its {}); \
         resident memory {}",
        ready.as_secs_f64(),
        log.display(),
        model["recipe"]["spec"],
        grouped(model["n_users"].as_u64().unwrap_or(0)),
        grouped(model["n_items"].as_u64().unwrap_or(0)),
        model["origin"].as_str().unwrap_or("?"),
        mib(process_stats::resident_bytes(pid))
    );

    let mut rng = StdRng::seed_from_u64(args.seed);
    let recommend_urls = (0..URL_POOL.min(usize::try_from(args.users)?.max(1) * 4))
        .map(|_| recommend_url(&base, &format!("u{}", rng.random_range(0..args.users)), N))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let recommend_urls = Arc::new(recommend_urls);
    let healthz_urls = Arc::new(vec![reqwest::Url::parse(&format!("{base}/healthz"))?]);
    let load = LoadPlan {
        connections,
        warmup: Duration::from_secs(args.warmup_seconds),
        duration: Duration::from_secs(args.seconds),
        pid,
        rate: None,
    };
    let paced = LoadPlan {
        rate: Some(args.rate as f64),
        ..load
    };

    let mut runs = Vec::new();
    for r in 1..=args.runs {
        let recommend = load.run(&client, &recommend_urls).await;
        println!(
            "run {r}: GET /v1/recommend/{{user}}?n={N}  {}",
            recommend.line()
        );
        let at_rate = paced.run(&client, &recommend_urls).await;
        println!(
            "run {r}: same at {} req/s        {}",
            grouped(args.rate),
            at_rate.line()
        );
        let healthz = load.run(&client, &healthz_urls).await;
        println!("run {r}: GET /healthz                  {}", healthz.line());
        runs.push((recommend, healthz, at_rate));
    }
    let rss_after_load = process_stats::resident_bytes(pid);
    println!(
        "serve: resident memory after the load {} (peak {})",
        mib(rss_after_load),
        mib(process_stats::peak_resident_bytes(pid))
    );

    let positive = EventTypes::default()
        .positive
        .first()
        .cloned()
        .unwrap_or_else(|| "click".to_owned());
    let fresh = freshness(args, &client, &base, &positive).await?;
    println!("freshness: {}", fresh.line());
    drop(server);
    print_table(args, &runs, rss_after_load, &fresh);
    Ok(())
}

/// `GET /v1/model` once the server answers it: the snapshot loads at startup,
/// so a 404 means it was not served (see the server log).
async fn served_model(client: &reqwest::Client, base: &str) -> anyhow::Result<serde_json::Value> {
    let resp = client
        .get(format!("{base}/v1/model"))
        .send()
        .await
        .context("GET /v1/model")?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        bail!("the server serves no model (GET /v1/model answered {status}: {body})");
    }
    serde_json::from_str(&body).context("GET /v1/model: not JSON")
}

/// One run's measurements: saturated recommend, `/healthz`, recommend at the
/// fixed rate.
type Run = (LoadFigures, LoadFigures, LoadFigures);

/// How a load measurement runs.
#[derive(Clone, Copy)]
struct LoadPlan {
    connections: usize,
    warmup: Duration,
    duration: Duration,
    /// The server process, whose CPU time is read around the measurement.
    pid: u32,
    /// `None`: every connection sends its next request as soon as the last
    /// one is answered (saturation). `Some(r)`: request `j` is due at
    /// `j / r` seconds and its latency counts from then, so a server that
    /// falls behind is charged for the wait (no coordinated omission).
    rate: Option<f64>,
}

/// What one load measurement saw.
#[derive(Debug, Clone, Default)]
struct LoadFigures {
    /// Latencies of the 2xx answers, sorted.
    latencies: Vec<Duration>,
    /// Non-2xx answers and failed requests.
    errors: u64,
    /// The first error, for the log.
    first_error: Option<String>,
    elapsed: Duration,
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
}

impl LoadFigures {
    fn requests_per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p).as_secs_f64() * 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.latencies
            .last()
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }

    /// CPU milliseconds per answered request of the server (or the client).
    fn cpu_ms_per_request(&self, cpu: Option<Duration>) -> f64 {
        match cpu {
            Some(cpu) if !self.latencies.is_empty() => {
                cpu.as_secs_f64() * 1000.0 / self.latencies.len() as f64
            }
            _ => f64::NAN,
        }
    }

    fn line(&self) -> String {
        let mut line = format!(
            "{} req/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.1} ms, \
             server CPU {:.3} ms/req, client CPU {:.3} ms/req, {} errors",
            grouped_f64(self.requests_per_sec()),
            self.ms(50.0),
            self.ms(90.0),
            self.ms(99.0),
            self.max_ms(),
            self.cpu_ms_per_request(self.server_cpu),
            self.cpu_ms_per_request(self.client_cpu),
            self.errors
        );
        if let Some(error) = &self.first_error {
            line += &format!(" (first: {error})");
        }
        line
    }
}

impl LoadPlan {
    /// Warm-up, then the measured load on `urls` (cycled through).
    async fn run(&self, client: &reqwest::Client, urls: &Arc<Vec<reqwest::Url>>) -> LoadFigures {
        if !self.warmup.is_zero() {
            self.drive(client, urls, self.warmup).await;
        }
        let server_before = process_stats::cpu_time(self.pid);
        let client_before = process_stats::own_cpu_time();
        let started = Instant::now();
        let mut figures = self.drive(client, urls, self.duration).await;
        figures.elapsed = started.elapsed();
        let since = |before: Option<Duration>, after: Option<Duration>| {
            Some(after?.saturating_sub(before?))
        };
        figures.server_cpu = since(server_before, process_stats::cpu_time(self.pid));
        figures.client_cpu = since(client_before, process_stats::own_cpu_time());
        figures.latencies.sort_unstable();
        figures
    }

    /// `connections` tasks, each sending one GET after the other until
    /// `duration` is over.
    async fn drive(
        &self,
        client: &reqwest::Client,
        urls: &Arc<Vec<reqwest::Url>>,
        duration: Duration,
    ) -> LoadFigures {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let deadline = start + duration;
        let rate = self.rate;
        let tasks: Vec<_> = (0..self.connections)
            .map(|_| {
                let (client, urls, next) = (client.clone(), urls.clone(), next.clone());
                tokio::spawn(async move {
                    let mut figures = LoadFigures {
                        latencies: Vec::with_capacity(4096),
                        ..LoadFigures::default()
                    };
                    while Instant::now() < deadline {
                        let ticket = next.fetch_add(1, Ordering::Relaxed);
                        let url = &urls[ticket % urls.len()];
                        let sent = match rate {
                            Some(rate) => {
                                let due = start + Duration::from_secs_f64(ticket as f64 / rate);
                                if due >= deadline {
                                    break;
                                }
                                tokio::time::sleep_until(due.into()).await;
                                due
                            }
                            None => Instant::now(),
                        };
                        let outcome = match client.get(url.clone()).send().await {
                            Ok(resp) => {
                                let status = resp.status();
                                match resp.bytes().await {
                                    Ok(_) if status.is_success() => Ok(()),
                                    Ok(body) => {
                                        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
                                    }
                                    Err(e) => Err(e.to_string()),
                                }
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        match outcome {
                            Ok(()) => figures.latencies.push(sent.elapsed()),
                            Err(error) => {
                                figures.errors += 1;
                                figures
                                    .first_error
                                    .get_or_insert_with(|| format!("GET {url}: {error}"));
                            }
                        }
                    }
                    figures
                })
            })
            .collect();
        let mut all = LoadFigures::default();
        for task in tasks {
            match task.await {
                Ok(figures) => {
                    all.latencies.extend(figures.latencies);
                    all.errors += figures.errors;
                    if all.first_error.is_none() {
                        all.first_error = figures.first_error;
                    }
                }
                Err(e) => {
                    all.errors += 1;
                    all.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        all
    }
}

/// What the freshness check saw.
#[derive(Debug, Default)]
struct Freshness {
    /// Users whose clicked item was gone from the next list.
    reflected: u64,
    /// Users checked (their first list was not empty, every request answered 2xx).
    checked: u64,
    /// Users with an empty first list: nothing to click.
    empty: u64,
    /// Non-2xx answers.
    errors: u64,
    first_error: Option<String>,
    /// From sending the POST to receiving the second list, sorted.
    latencies: Vec<Duration>,
}

impl Freshness {
    fn share(&self) -> f64 {
        self.reflected as f64 / self.checked.max(1) as f64
    }

    fn ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p).as_secs_f64() * 1000.0
    }

    fn line(&self) -> String {
        let mut line = format!(
            "{}/{} clicks reflected in the next list ({:.1}%), POST + GET p50 {:.2} ms, \
             p99 {:.2} ms, max {:.2} ms; {} empty lists, {} errors",
            self.reflected,
            self.checked,
            100.0 * self.share(),
            self.ms(50.0),
            self.ms(99.0),
            self.latencies
                .last()
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            self.empty,
            self.errors
        );
        if let Some(error) = &self.first_error {
            line += &format!(" (first: {error})");
        }
        line
    }
}

/// One user at a time, no other load: list, click the top item, list again.
async fn freshness(
    args: &ServeBenchArgs,
    client: &reqwest::Client,
    base: &str,
    event_type: &str,
) -> anyhow::Result<Freshness> {
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x00f7_e5e5);
    let events_url = format!("{base}/v1/events");
    let mut fresh = Freshness::default();
    for _ in 0..args.freshness_samples {
        let user = format!("u{}", rng.random_range(0..args.users));
        let url = recommend_url(base, &user, N)?;
        let before = match list(client, &url).await? {
            Ok(ids) => ids,
            Err(error) => {
                fresh.errors += 1;
                fresh.first_error.get_or_insert(error);
                continue;
            }
        };
        let Some(top) = before.into_iter().next() else {
            fresh.empty += 1;
            continue;
        };
        let event = Event {
            user_id: user,
            item_id: top.clone(),
            event_type: event_type.to_owned(),
            value: 1.0,
            timestamp: Timestamp::now(),
            request_id: None,
            scene: None,
            position: None,
            attribution: None,
        };
        let body = serde_json::to_vec(&event)?;
        let sent = Instant::now();
        let resp = client
            .post(&events_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {events_url}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            fresh.errors += 1;
            fresh
                .first_error
                .get_or_insert(format!("POST {events_url}: {status}: {text}"));
            continue;
        }
        let after = match list(client, &url).await? {
            Ok(ids) => ids,
            Err(error) => {
                fresh.errors += 1;
                fresh.first_error.get_or_insert(error);
                continue;
            }
        };
        fresh.latencies.push(sent.elapsed());
        fresh.checked += 1;
        if !after.contains(&top) {
            fresh.reflected += 1;
        }
    }
    fresh.latencies.sort_unstable();
    Ok(fresh)
}

/// The item ids of a recommendation list; a non-2xx answer is the inner error,
/// a failed request the outer one.
async fn list(
    client: &reqwest::Client,
    url: &reqwest::Url,
) -> anyhow::Result<Result<Vec<String>, String>> {
    let resp = client
        .get(url.clone())
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        return Ok(Err(format!("GET {url}: {status}: {text}")));
    }
    let body: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("GET {url}: not JSON"))?;
    Ok(Ok(body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()))
}

fn print_table(args: &ServeBenchArgs, runs: &[Run], rss: Option<u64>, fresh: &Freshness) {
    let med = |f: &dyn Fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let all = |f: &dyn Fn(&Run) -> f64, digits: usize| {
        runs.iter()
            .map(|r| format!("{:.digits$}", f(r)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let at_most = |value: f64, target: f64, unit: &str| {
        let verdict = if value <= target { "meets" } else { "MISSES" };
        format!("<= {target} {unit} ({verdict})")
    };
    let at_least = |value: f64, target: f64| {
        let verdict = if value >= target { "meets" } else { "MISSES" };
        format!(">= {} ({verdict})", grouped_f64(target))
    };
    let row = |name: &str, value: String, target: String, runs: String| {
        println!("{name:<40} {value:>14}  {target:<26} {runs}");
    };

    // Latency at the fixed rate; throughput and CPU at saturation.
    let p50 = med(&|r| r.2.ms(50.0));
    let p90 = med(&|r| r.2.ms(90.0));
    let p99 = med(&|r| r.2.ms(99.0));
    let max = med(&|r| r.2.max_ms());
    let sat_p50 = med(&|r| r.0.ms(50.0));
    let sat_p99 = med(&|r| r.0.ms(99.0));
    let rate = med(&|r| r.0.requests_per_sec());
    let cpu = med(&|r| r.0.cpu_ms_per_request(r.0.server_cpu));
    let client_cpu = med(&|r| r.0.cpu_ms_per_request(r.0.client_cpu));
    let errors: u64 = runs
        .iter()
        .map(|r| r.0.errors + r.1.errors + r.2.errors)
        .sum();
    let hz_rate = med(&|r| r.1.requests_per_sec());
    let hz_p50 = med(&|r| r.1.ms(50.0));
    let hz_p99 = med(&|r| r.1.ms(99.0));
    let hz_cpu = med(&|r| r.1.cpu_ms_per_request(r.1.server_cpu));
    let fresh_p50 = fresh.ms(50.0);
    let fresh_p99 = fresh.ms(99.0);

    println!();
    println!(
        "Results (median of {} runs): {} users × {} items, {} events, {}; {} connections, {} s each",
        runs.len(),
        grouped(args.users),
        grouped(args.items),
        grouped(args.events),
        args.model,
        args.connections,
        args.seconds
    );
    println!("{:-<120}", "");
    row(
        "measurement",
        "median".into(),
        "target".into(),
        "runs".into(),
    );
    println!("{:-<120}", "");
    let at = grouped(args.rate);
    row(
        &format!("recommend ?n={N} p50 at {at}/s"),
        format!("{p50:.2} ms"),
        at_most(p50, P50_TARGET_MS, "ms"),
        all(&|r| r.2.ms(50.0), 2),
    );
    row(
        &format!("recommend p90 at {at}/s"),
        format!("{p90:.2} ms"),
        String::new(),
        all(&|r| r.2.ms(90.0), 2),
    );
    row(
        &format!("recommend p99 at {at}/s"),
        format!("{p99:.2} ms"),
        at_most(p99, P99_TARGET_MS, "ms"),
        all(&|r| r.2.ms(99.0), 2),
    );
    row(
        &format!("recommend max at {at}/s"),
        format!("{max:.1} ms"),
        String::new(),
        all(&|r| r.2.max_ms(), 1),
    );
    row(
        "recommend p50 / p99 saturated",
        format!("{sat_p50:.1} / {sat_p99:.1} ms"),
        String::new(),
        String::new(),
    );
    row(
        "recommendations/s saturated",
        grouped_f64(rate),
        at_least(rate, RATE_TARGET),
        all(&|r| r.0.requests_per_sec(), 0),
    );
    row(
        "server CPU per recommendation",
        format!("{cpu:.3} ms"),
        at_most(cpu, CPU_TARGET_MS, "ms"),
        all(&|r| r.0.cpu_ms_per_request(r.0.server_cpu), 3),
    );
    row(
        "client CPU per recommendation",
        format!("{client_cpu:.3} ms"),
        String::new(),
        all(&|r| r.0.cpu_ms_per_request(r.0.client_cpu), 3),
    );
    row(
        "errors (non-2xx or failed), all runs",
        grouped(errors),
        "0".into(),
        String::new(),
    );
    println!("{:-<120}", "");
    row(
        "/healthz requests/s (HTTP ceiling)",
        grouped_f64(hz_rate),
        String::new(),
        all(&|r| r.1.requests_per_sec(), 0),
    );
    row(
        "/healthz p50 / p99",
        format!("{hz_p50:.2} / {hz_p99:.2} ms"),
        String::new(),
        String::new(),
    );
    row(
        "server CPU per /healthz",
        format!("{hz_cpu:.3} ms"),
        String::new(),
        all(&|r| r.1.cpu_ms_per_request(r.1.server_cpu), 3),
    );
    row(
        "server resident memory after the load",
        mib(rss),
        String::new(),
        String::new(),
    );
    println!("{:-<120}", "");
    row(
        "freshness: click reflected next request",
        format!("{:.1}%", 100.0 * fresh.share()),
        format!(
            "100% ({})",
            if fresh.checked > 0 && fresh.reflected == fresh.checked {
                "meets"
            } else {
                "MISSES"
            }
        ),
        format!("{} of {} users", fresh.reflected, fresh.checked),
    );
    row(
        "freshness: POST + next GET p50",
        format!("{fresh_p50:.2} ms"),
        String::new(),
        String::new(),
    );
    row(
        "freshness: POST + next GET p99",
        format!("{fresh_p99:.2} ms"),
        at_most(fresh_p99, FRESHNESS_P99_TARGET_MS, "ms"),
        String::new(),
    );
    println!("{:-<120}", "");
    println!(
        "/v1/recommend throughput is {:.3} of the /healthz ceiling; the load generator shares \
         the machine ({} threads).",
        rate / hz_rate,
        args.client_threads
    );
}

/// A model spec as part of a folder name: `ials:factors=64` as `ials-factors-64`.
fn file_name_part(spec: &str) -> String {
    spec.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn print_indented(text: &str) {
    for line in text.lines() {
        println!("  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs_become_folder_names() {
        assert_eq!(file_name_part("ials:factors=64"), "ials-factors-64");
        assert_eq!(file_name_part("seq_ease"), "seq-ease");
    }

    #[test]
    fn cpu_per_request_needs_requests_and_a_reading() {
        let figures = LoadFigures {
            latencies: vec![Duration::from_millis(1); 4],
            elapsed: Duration::from_secs(2),
            ..LoadFigures::default()
        };
        assert_eq!(figures.requests_per_sec(), 2.0);
        assert_eq!(
            figures.cpu_ms_per_request(Some(Duration::from_millis(2))),
            0.5
        );
        assert!(figures.cpu_ms_per_request(None).is_nan());
        assert!(LoadFigures::default()
            .cpu_ms_per_request(Some(Duration::from_secs(1)))
            .is_nan());
    }
}
