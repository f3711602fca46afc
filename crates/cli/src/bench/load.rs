//! HTTP load generation: posting event batches, and timing GET requests under a
//! fixed number of concurrent connections.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use reqwest::header::CONTENT_TYPE;

use super::stats::percentile;

/// A client that keeps up to `connections` connections open.
pub fn client(connections: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| anyhow!("cannot build the HTTP client: {e}"))
}

/// Posts every body to `url` from `connections` concurrent tasks; returns the
/// wall time until the last one was acknowledged. Any non-2xx answer fails.
pub async fn post_all(
    client: &reqwest::Client,
    url: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    connections: usize,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, bodies, next) = (
                client.clone(),
                url.to_string(),
                bodies.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<_, anyhow::Error>(());
                    };
                    let resp = client
                        .post(&url)
                        .header(CONTENT_TYPE, "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    let status = resp.status();
                    let text = resp.text().await?;
                    if !status.is_success() {
                        bail!("POST {url} answered {status}: {text}");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

/// Throughput and latency of one GET endpoint under load.
#[derive(Debug, Clone, Copy)]
pub struct LoadResult {
    /// Completed requests per second.
    pub requests_per_sec: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// Sends `requests` GETs to `url` from `connections` concurrent tasks (after a
/// short warm-up) and measures each one. Any non-2xx answer fails.
pub async fn get_under_load(
    client: &reqwest::Client,
    url: &str,
    requests: u64,
    connections: usize,
) -> anyhow::Result<LoadResult> {
    run_gets(
        client,
        url,
        (requests / 10).clamp(connections as u64, 2_000),
        connections,
    )
    .await?;
    let started = Instant::now();
    let mut latencies = run_gets(client, url, requests, connections).await?;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(LoadResult {
        requests_per_sec: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
    })
}

async fn run_gets(
    client: &reqwest::Client,
    url: &str,
    requests: u64,
    connections: usize,
) -> anyhow::Result<Vec<Duration>> {
    let issued = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, issued) = (client.clone(), url.to_string(), issued.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while issued.fetch_add(1, Ordering::Relaxed) < requests {
                    let sent = Instant::now();
                    let resp = client.get(&url).send().await?;
                    let status = resp.status();
                    let body = resp.bytes().await?;
                    latencies.push(sent.elapsed());
                    if !status.is_success() {
                        bail!(
                            "GET {url} answered {status}: {}",
                            String::from_utf8_lossy(&body)
                        );
                    }
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(requests as usize);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}
