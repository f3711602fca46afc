//! Operational routes: liveness, readiness, Prometheus metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::tenants::Tenants;

/// How long `/readyz` waits for the store before declaring it not ready.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// Readiness answer, with the store's sizes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: &'static str,
    /// Items in the catalogue.
    pub items: u64,
    /// Users stored.
    pub users: u64,
    /// Events in the log.
    pub events: u64,
}

/// The process is up. Cheap on purpose: it is the ceiling other routes'
/// throughput is compared with.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The state is loaded and the store answers; 503 while shutting down or when
/// the store does not answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Ready),
        (status = 503, description = "Not ready", body = ErrorBody),
    ))]
pub async fn readyz(State(tenants): State<Tenants>) -> Result<Json<Ready>, ApiError> {
    if !tenants.is_ready() {
        return Err(ApiError::NotReady("the server is shutting down".into()));
    }
    match tokio::time::timeout(STORE_PROBE_TIMEOUT, tenants.total_counts()).await {
        Ok(Ok(c)) => Ok(Json(Ready {
            status: "ready",
            items: c.items,
            users: c.users,
            events: c.events,
        })),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness probe: the store failed");
            Err(ApiError::NotReady("the store does not answer".into()))
        }
        Err(_) => Err(ApiError::NotReady(
            "the store did not answer in time".into(),
        )),
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(tenants): State<Tenants>) -> impl IntoResponse {
    match tenants.total_counts().await {
        Ok(counts) => crate::metrics::record_store_counts(counts),
        Err(err) => tracing::warn!(error = %err, "metrics: could not read the store's sizes"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::prometheus_handle().render(),
    )
}
