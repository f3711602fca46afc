//! `tephra bench ingest`: how fast data gets in, and how fast lists come out.
//!
//! a) offline import of a generated events file (JSON Lines and CSV) through the
//!    exact code path of `tephra import`, into a fresh data directory;
//! b) HTTP ingestion into a real server process: batches of 1,000 events from
//!    several connections, each acknowledged only once durable (fsynced);
//! c) `/v1/popular` latency and throughput under concurrent connections, next to
//!    `/healthz` under the same load as the ceiling of the HTTP stack itself.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tephra_core::{EventTypes, Timestamp};

use super::dataset::{self, ITEMS, USERS};
use super::load::{self, LoadResult};
use super::server_process::ServerProcess;
use super::stats::median;
use crate::cli::IngestBenchArgs;
use crate::data_dir;
use crate::import::{self, FileFormat, ImportOptions, RecordKind};
use crate::number::{grouped, grouped_f64};

/// Target for the offline import rate, events per second on 2 cores.
const IMPORT_TARGET: f64 = 200_000.0;
/// Target for HTTP ingestion with durable acknowledgement, events per second.
const HTTP_TARGET: f64 = 50_000.0;
/// Events per HTTP request.
const HTTP_BATCH: usize = 1_000;
const SEED: u64 = 20_26;

/// Figures of one run.
#[derive(Debug, Default, Clone)]
struct Run {
    import_jsonl: f64,
    import_csv: f64,
    http_events: f64,
    popular: Option<LoadResult>,
    healthz: Option<LoadResult>,
}

/// Runs the benchmark and prints the table.
pub async fn run(args: &IngestBenchArgs) -> anyhow::Result<()> {
    let work = tempfile::Builder::new()
        .prefix("tephra-bench-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let now = Timestamp::now();
    println!(
        "tephra bench ingest: {} events ({} users, {} items, power-law), {} runs, {} CPUs",
        grouped(args.events),
        grouped(USERS as u64),
        grouped(ITEMS as u64),
        args.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("Preparing input files in {} ...", work.path().display());
    let jsonl = work.path().join("events.jsonl");
    let csv = work.path().join("events.csv");
    dataset::write_jsonl(&jsonl, args.events, SEED, now)
        .context("cannot write the JSON Lines file")?;
    dataset::write_csv(&csv, args.events, SEED, now).context("cannot write the CSV file")?;
    let bodies = Arc::new(dataset::http_bodies(
        args.http_events,
        HTTP_BATCH,
        SEED + 1,
        now,
    ));

    let mut runs = Vec::new();
    for r in 1..=args.runs {
        let import_jsonl = import_rate(&jsonl, FileFormat::Jsonl, work.path()).await?;
        println!(
            "run {r}: import JSON Lines {} events/s",
            grouped_f64(import_jsonl)
        );
        let import_csv = import_rate(&csv, FileFormat::Csv, work.path()).await?;
        println!(
            "run {r}: import CSV        {} events/s",
            grouped_f64(import_csv)
        );
        let mut run = Run {
            import_jsonl,
            import_csv,
            ..Run::default()
        };
        http_run(args, &bodies, work.path(), r, &mut run).await?;
        runs.push(run);
    }
    print_table(args, &runs);
    Ok(())
}

/// One import of `file` into a fresh data directory; events per second.
async fn import_rate(file: &Path, format: FileFormat, work: &Path) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir_in(work).context("cannot create a data directory")?;
    let store = data_dir::open_store(dir.path())?;
    let options = ImportOptions {
        kind: RecordKind::Events,
        format: Some(format),
        skip_invalid: false,
        batch_size: 10_000,
        default_event_type: "click".into(),
        event_types: EventTypes::default(),
        show_progress: false,
    };
    let report = import::import_file(store.as_ref(), file, &options).await?;
    drop(store);
    Ok(report.records_per_sec())
}

async fn http_run(
    args: &IngestBenchArgs,
    bodies: &Arc<Vec<Vec<u8>>>,
    work: &Path,
    r: u64,
    run: &mut Run,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(work).context("cannot create a data directory")?;
    let connections = usize::try_from(args.connections.max(args.http_connections)).unwrap_or(1024);
    let client = load::client(connections)?;
    let log = work.join(format!("server-{r}.log"));
    let server = ServerProcess::start(dir.path(), &log, &client).await?;
    let base = server.base_url().to_string();

    let events: u64 = args.http_events;
    let http_connections = usize::try_from(args.http_connections).unwrap_or(1);
    let elapsed = load::post_all(
        &client,
        &format!("{base}/v1/events"),
        bodies.clone(),
        http_connections,
    )
    .await?;
    run.http_events = events as f64 / elapsed.as_secs_f64().max(1e-9);
    println!(
        "run {r}: HTTP ingest      {} events/s",
        grouped_f64(run.http_events)
    );

    let latency_connections = usize::try_from(args.connections).unwrap_or(1);
    let popular = load::get_under_load(
        &client,
        &format!("{base}/v1/popular?n=10"),
        args.requests,
        latency_connections,
    )
    .await?;
    let healthz = load::get_under_load(
        &client,
        &format!("{base}/healthz"),
        args.requests,
        latency_connections,
    )
    .await?;
    println!(
        "run {r}: /v1/popular {} req/s (p50 {}, p99 {}); /healthz {} req/s (p50 {}, p99 {})",
        grouped_f64(popular.requests_per_sec),
        ms(popular.p50),
        ms(popular.p99),
        grouped_f64(healthz.requests_per_sec),
        ms(healthz.p50),
        ms(healthz.p99)
    );
    run.popular = Some(popular);
    run.healthz = Some(healthz);
    drop(server);
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn print_table(args: &IngestBenchArgs, runs: &[Run]) {
    let med = |f: &dyn Fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let all = |f: &dyn Fn(&Run) -> f64| {
        runs.iter()
            .map(|r| grouped_f64(f(r)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let verdict = |value: f64, target: f64| {
        if value >= target {
            "meets target"
        } else {
            "BELOW target"
        }
    };
    let load = |f: &dyn Fn(&Run) -> Option<LoadResult>, g: &dyn Fn(&LoadResult) -> f64| {
        median(&runs.iter().filter_map(f).map(|l| g(&l)).collect::<Vec<_>>())
    };
    let secs = |d: Duration| d.as_secs_f64();
    let fmt_ms = |x: f64| format!("{:.2} ms", x * 1000.0);

    let jsonl = med(&|r| r.import_jsonl);
    let csv = med(&|r| r.import_csv);
    let http = med(&|r| r.http_events);
    let pop_rps = load(&|r| r.popular, &|l| l.requests_per_sec);
    let pop_p50 = load(&|r| r.popular, &|l| secs(l.p50));
    let pop_p99 = load(&|r| r.popular, &|l| secs(l.p99));
    let hz_rps = load(&|r| r.healthz, &|l| l.requests_per_sec);
    let hz_p50 = load(&|r| r.healthz, &|l| secs(l.p50));
    let hz_p99 = load(&|r| r.healthz, &|l| secs(l.p99));

    println!();
    println!("Results (median of {} runs)", runs.len());
    println!("{:-<110}", "");
    println!(
        "{:<44} {:>16}  {:<28} runs",
        "measurement", "median", "target"
    );
    println!("{:-<110}", "");
    println!(
        "{:<44} {:>16}  {:<28} {}",
        "offline import, JSON Lines (events/s)",
        grouped_f64(jsonl),
        format!(
            ">= {} ({})",
            grouped_f64(IMPORT_TARGET),
            verdict(jsonl, IMPORT_TARGET)
        ),
        all(&|r| r.import_jsonl)
    );
    println!(
        "{:<44} {:>16}  {:<28} {}",
        "offline import, CSV (events/s)",
        grouped_f64(csv),
        format!(
            ">= {} ({})",
            grouped_f64(IMPORT_TARGET),
            verdict(csv, IMPORT_TARGET)
        ),
        all(&|r| r.import_csv)
    );
    println!(
        "{:<44} {:>16}  {:<28} {}",
        format!(
            "HTTP ingest, {HTTP_BATCH}/batch, {} conns (events/s)",
            args.http_connections
        ),
        grouped_f64(http),
        format!(
            ">= {} ({})",
            grouped_f64(HTTP_TARGET),
            verdict(http, HTTP_TARGET)
        ),
        all(&|r| r.http_events)
    );
    println!("{:-<110}", "");
    println!(
        "{:<44} {:>16}  {:>10}  {:>10}",
        format!("reads, {} connections", args.connections),
        "requests/s",
        "p50",
        "p99"
    );
    println!(
        "{:<44} {:>16}  {:>10}  {:>10}",
        "GET /v1/popular?n=10",
        grouped_f64(pop_rps),
        fmt_ms(pop_p50),
        fmt_ms(pop_p99)
    );
    println!(
        "{:<44} {:>16}  {:>10}  {:>10}",
        "GET /healthz (ceiling)",
        grouped_f64(hz_rps),
        fmt_ms(hz_p50),
        fmt_ms(hz_p99)
    );
    println!("{:-<110}", "");
    println!(
        "/v1/popular throughput is {:.2} of the /healthz ceiling ({} requests per measurement).",
        pop_rps / hz_rps,
        grouped(args.requests)
    );
    println!(
        "HTTP writes are acknowledged only after fsync (group commit); the client runs on the same machine."
    );
}
