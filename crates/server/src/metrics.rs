//! Prometheus metrics: request counts and latencies per route, ingestion counters
//! and store sizes.
//!
//! The `metrics` facade has one global recorder per process, while a process may
//! run several servers (tests do); so the recorder is installed once, on first
//! use, and every server renders from the same handle.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by method, route template and status.
pub const HTTP_REQUESTS: &str = "tephra_http_requests_total";
/// Request latency in seconds, by method, route template and status.
pub const HTTP_DURATION: &str = "tephra_http_request_duration_seconds";
/// Events accepted over HTTP.
pub const EVENTS_INGESTED: &str = "tephra_events_ingested_total";
/// Items in the catalogue, as of the last scrape.
pub const ITEMS: &str = "tephra_items";
/// Users stored, as of the last scrape.
pub const USERS: &str = "tephra_users";
/// Events in the log, as of the last scrape.
pub const EVENTS: &str = "tephra_events";

/// Latency buckets, in seconds: sub-millisecond reads up to slow batch writes.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histogram storage is compacted (the exporter leaves it to its user).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus handle, installing the recorder on first call.
///
/// If another recorder was installed first (by an embedding program), metrics
/// from this crate go there and this handle renders an empty page rather than
/// failing the server.
pub fn prometheus_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            describe();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                });
            if let Err(err) = spawned {
                tracing::warn!(error = %err, "could not start the metrics upkeep thread");
            }
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route and status."
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency."
    );
    metrics::describe_counter!(EVENTS_INGESTED, "Events accepted over HTTP.");
    metrics::describe_gauge!(ITEMS, "Items in the catalogue.");
    metrics::describe_gauge!(USERS, "Users stored.");
    metrics::describe_gauge!(EVENTS, "Events in the log.");
}

/// Middleware recording the count and latency of every request.
///
/// Labels use the route template (`/v1/items/{id}`), never the raw path, so that
/// ids do not create one time series each; unmatched paths share `unmatched`.
pub async fn track_requests(req: Request, next: Next) -> Response {
    let matched = route_of(&req);
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    // A tenant's routes name the route they matched (see `label_route`);
    // requests refused before reaching them share the `/v1/*` label.
    let route = match response.extensions().get::<RouteLabel>() {
        Some(RouteLabel(route)) => route.clone(),
        None if matched.contains("__private__") => "/v1/*".to_owned(),
        None => matched,
    };
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// The route template a tenant's routes matched, passed out on the response
/// to [`track_requests`], which runs outside the tenant dispatch.
#[derive(Debug, Clone)]
pub struct RouteLabel(pub String);

/// The route template of a request, `unmatched` when none matched.
fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned()
}

/// Middleware of a tenant's routes: labels the response with the route it
/// matched, for [`track_requests`].
pub async fn label_route(req: Request, next: Next) -> Response {
    let route = route_of(&req);
    let mut response = next.run(req).await;
    response.extensions_mut().insert(RouteLabel(route));
    response
}

/// Standard methods by name; anything else as `other`, to bound label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts events accepted over HTTP.
pub fn record_events_ingested(n: usize) {
    metrics::counter!(EVENTS_INGESTED).increment(n as u64);
}

/// Publishes the store's sizes (called when `/metrics` is scraped).
pub fn record_store_counts(counts: tephra_store::StoreCounts) {
    metrics::gauge!(ITEMS).set(counts.items as f64);
    metrics::gauge!(USERS).set(counts.users as f64);
    metrics::gauge!(EVENTS).set(counts.events as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_shared_and_renders_recorded_metrics() {
        let a = prometheus_handle();
        let b = prometheus_handle();
        record_events_ingested(3);
        let text = a.render();
        assert!(text.contains(EVENTS_INGESTED), "{text}");
        assert!(b.render().contains(EVENTS_INGESTED));
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
