//! `tephra bench cluster`: cluster mode on this machine. Ingestion into
//! PostgreSQL through one node, then `/v1/recommend` throughput with one node
//! and with two, with the CPU each process used, to say what the limit was.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use super::load::{get_under_load, post_all, LoadResult};
use super::process_stats::{cpu_time, own_cpu_time};
use super::server_process::ServerProcess;
use crate::cli::ClusterBenchArgs;

/// The nodes' admin key during the benchmark.
const ADMIN_KEY: &str = "bench-cluster-admin-key-0123456789";

/// CPU seconds used so far by every process whose command name is `name`.
fn cpu_of_named(name: &str) -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim().starts_with(name))
        })
        .filter_map(cpu_time)
        .sum()
}

/// CPU used over a phase, by party.
struct Cpu {
    nodes: Duration,
    postgres: Duration,
    redis: Duration,
    load: Duration,
}

fn snapshot(nodes: &[u32]) -> Cpu {
    Cpu {
        nodes: nodes.iter().filter_map(|&p| cpu_time(p)).sum(),
        postgres: cpu_of_named("postgres"),
        redis: cpu_of_named("redis-server"),
        load: own_cpu_time().unwrap_or_default(),
    }
}

/// Prints the CPU each party used over `wall`, as cores, and the machine's
/// share busy.
fn report_cpu(before: &Cpu, after: &Cpu, wall: Duration) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let per = |a: Duration, b: Duration| (b.saturating_sub(a)).as_secs_f64() / wall.as_secs_f64();
    let nodes = per(before.nodes, after.nodes);
    let pg = per(before.postgres, after.postgres);
    let redis = per(before.redis, after.redis);
    let load = per(before.load, after.load);
    let total = nodes + pg + redis + load;
    println!(
        "  CPU (cores busy): tephra {nodes:.2}, postgres {pg:.2}, redis {redis:.2}, load generator {load:.2}; \
         machine {:.0}% of {cores} cores",
        100.0 * total / cores
    );
}

fn line(name: &str, r: &LoadResult) {
    println!(
        "  {name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        r.requests_per_sec,
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3
    );
}

async fn start_node(
    dir: &Path,
    name: &str,
    http: &reqwest::Client,
    args: &ClusterBenchArgs,
    namespace: &str,
) -> anyhow::Result<ServerProcess> {
    let data = dir.join(name);
    std::fs::create_dir_all(&data)?;
    ServerProcess::start_with(
        &data,
        &dir.join(format!("{name}.log")),
        http,
        &[
            ("TEPHRA_CLUSTER__STORE", args.store.as_str()),
            ("TEPHRA_CLUSTER__CACHE", args.cache.as_str()),
            ("TEPHRA_CLUSTER__NAMESPACE", namespace),
            ("TEPHRA_TRAINING__ENABLED", "false"),
            ("TEPHRA_SERVER__ADMIN_KEY", ADMIN_KEY),
        ],
        Duration::from_secs(120),
    )
    .await
}

/// Runs the benchmark.
pub async fn run(args: &ClusterBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a scratch directory")?;
    let http = client_with_key(ADMIN_KEY, 4)?;
    let namespace = format!("tephra-bench-{}", std::process::id());
    let tenant = format!("bench{}", std::process::id());
    println!(
        "cluster bench: store {}, cache {}, tenant {tenant}",
        tephra_server::cluster::redact(&args.store),
        args.cache
    );
    let a = start_node(dir.path(), "node-a", &http, args, &namespace).await?;
    let admin = |req: reqwest::RequestBuilder| req.header("x-tephra-tenant", &tenant);
    let created = http
        .post(format!("{}/admin/tenants", a.base_url()))
        .json(&json!({"name": tenant}))
        .send()
        .await?;
    if !created.status().is_success() {
        bail!("cannot create the bench tenant: {}", created.text().await?);
    }
    let items: Vec<_> = (0..args.items)
        .map(|i| json!({"id": format!("i{i}")}))
        .collect();
    let posted = admin(http.post(format!("{}/v1/items", a.base_url())))
        .json(&items)
        .send()
        .await?;
    if !posted.status().is_success() {
        bail!("cannot post the catalogue: {}", posted.text().await?);
    }

    // Ingestion into PostgreSQL through node A.
    let batches = args.events.div_ceil(args.batch);
    let bodies: Vec<Vec<u8>> = (0..batches)
        .map(|b| {
            let events: Vec<_> = (0..args.batch)
                .map(|i| {
                    let n = b * args.batch + i;
                    let user = n % args.users;
                    let item = (user * 7 + n / args.users * 13) % args.items;
                    json!({"user_id": format!("u{user}"), "item_id": format!("i{item}"), "type": "click"})
                })
                .collect();
            serde_json::to_vec(&events).unwrap_or_default()
        })
        .collect();
    // Events go to the bench tenant: the admin key has no tenant header in
    // `post_all`, so the tenant's own key is used.
    let key = http
        .post(format!("{}/admin/tenants/{tenant}/keys", a.base_url()))
        .json(&json!({"scopes": ["read", "write", "admin"]}))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let keyed = client_with_key(&key, args.connections as usize * 2)?;
    println!(
        "ingestion: {} events in batches of {} from {} connections into PostgreSQL through one node",
        batches * args.batch,
        args.batch,
        args.connections
    );
    let before = snapshot(&[a.pid()]);
    let took = post_all(
        &keyed,
        &format!("{}/v1/events", a.base_url()),
        Arc::new(bodies),
        args.connections as usize,
    )
    .await?;
    let after = snapshot(&[a.pid()]);
    println!(
        "  {:.0} events/s ({:.1} s)",
        (batches * args.batch) as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    );
    report_cpu(&before, &after, took);

    let trained = keyed
        .post(format!("{}/v1/admin/train", a.base_url()))
        .send()
        .await?;
    if !trained.status().is_success() {
        bail!("training failed: {}", trained.text().await?);
    }

    // Recommendations: one node, then two.
    let url = |node: &ServerProcess, user: u64| format!("{}/v1/recommend/u{user}", node.base_url());
    println!(
        "recommend: {} requests from {} connections (GET /v1/recommend/{{user}})",
        args.requests, args.connections
    );
    let before = snapshot(&[a.pid()]);
    let started = Instant::now();
    let one = get_under_load(
        &keyed,
        &url(&a, 17),
        args.requests,
        args.connections as usize,
    )
    .await?;
    let after = snapshot(&[a.pid()]);
    line("one node", &one);
    report_cpu(&before, &after, started.elapsed());

    let b = start_node(dir.path(), "node-b", &http, args, &namespace).await?;
    let half = (args.connections as usize / 2).max(1);
    let before = snapshot(&[a.pid(), b.pid()]);
    let started = Instant::now();
    let (url_a, url_b) = (url(&a, 17), url(&b, 17));
    let (ra, rb) = tokio::join!(
        get_under_load(&keyed, &url_a, args.requests / 2, half),
        get_under_load(&keyed, &url_b, args.requests / 2, half),
    );
    let (ra, rb) = (ra?, rb?);
    let after = snapshot(&[a.pid(), b.pid()]);
    let two = LoadResult {
        requests_per_sec: ra.requests_per_sec + rb.requests_per_sec,
        p50: ra.p50.max(rb.p50),
        p99: ra.p99.max(rb.p99),
    };
    line("two nodes", &two);
    report_cpu(&before, &after, started.elapsed());
    println!(
        "  two nodes / one node: {:.2}",
        two.requests_per_sec / one.requests_per_sec
    );

    let _ = http
        .delete(format!("{}/admin/tenants/{tenant}", a.base_url()))
        .send()
        .await;
    Ok(())
}

/// A client sending `key` as its bearer token on every request.
fn client_with_key(key: &str, connections: usize) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
        .context("the issued key is not a header value")?;
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()
        .context("cannot build the HTTP client")
}
