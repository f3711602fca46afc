//! Running the API on a listener until told to stop.

use std::future::Future;

use std::time::{Duration, Instant};

use axum::Extension;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::router::router;
use crate::state::AppState;
use crate::tenants::Tenants;

/// Held by every copy of the router; see [`serve`].
#[derive(Clone)]
struct RouterAlive {
    _sender: mpsc::Sender<()>,
}

/// Serves every tenant's API on `listener` until `shutdown` completes, then
/// stops accepting connections, reports not-ready and finishes the requests in
/// flight, then stops the tenants' background loops and waits for their writes.
///
/// When it returns, the server holds nothing of any tenant any more (every copy
/// of the router is dropped and every write has finished), so the caller can
/// close the stores or reopen the data directory at once.
pub async fn serve(
    listener: TcpListener,
    tenants: Tenants,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connection tasks drop their copy of the router shortly after the server
    // future completes; the channel closes when the last copy is gone.
    let (alive, mut all_dropped) = mpsc::channel::<()>(1);
    let app = router(tenants.clone()).layer(Extension(RouterAlive { _sender: alive }));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the HTTP API");
    }
    let shutdown_tenants = tenants.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            shutdown_tenants.set_not_ready();
            tracing::info!("shutting down: finishing requests in flight");
        })
        .await;
    let _ = all_dropped.recv().await;
    tenants.shutdown().await;
    tracing::info!("server stopped");
    served
}

/// Starts a tenant's background loops (retraining when enabled, refreshing
/// the cached list heads); they return when `stop` turns true.
pub(crate) fn start_background(
    state: &AppState,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(refresh_heads_loop(
        state.clone(),
        stop.clone(),
    ))];
    if state.config().training.enabled {
        tasks.push(tokio::spawn(retrain_loop(state.clone(), stop)));
    }
    tasks
}

/// How often the background loop looks at the number of new events.
const RETRAIN_CHECK: Duration = Duration::from_secs(2);

/// Background retraining: every [`RETRAIN_CHECK`], trains when
/// `training.min_new_events` positive events arrived since the last run, or
/// when `training.interval_secs` passed and anything arrived. A run that does
/// not produce a model is logged and retried at the next trigger. Returns when
/// `stop` turns true (after finishing a run in progress).
///
/// In a cluster only the node holding the tenant's trainer lease trains (and
/// shares each promoted model); the others ask for the lease at every check,
/// so that one of them takes over when the trainer dies, and load the
/// trainer's newest model if they missed its announcement.
async fn retrain_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut last_run = Instant::now();
    let mut lease: Option<Box<dyn crate::cluster::Lease>> = None;
    loop {
        if !crate::cluster::pause(&mut stop, RETRAIN_CHECK).await {
            return;
        }
        if let Some(link) = state.cluster() {
            let held = match lease.as_mut() {
                Some(l) => l.is_held().await,
                None => false,
            };
            if !held {
                lease = match link.election().try_acquire(state.tenant()).await {
                    Ok(lease) => lease,
                    Err(error) => {
                        tracing::warn!(%error, tenant = state.tenant(), "cannot ask for the trainer lease");
                        None
                    }
                };
                if lease.is_some() {
                    tracing::info!(
                        tenant = state.tenant(),
                        node = link.node(),
                        "this node now trains the tenant's models"
                    );
                    // Train soon after taking over, on what the others saw.
                    last_run =
                        Instant::now() - Duration::from_secs(state.config().training.interval_secs);
                }
            }
            if lease.is_none() {
                if let Err(error) = crate::cluster::load_shared_model(&state).await {
                    tracing::warn!(%error, tenant = state.tenant(), "cannot load the shared model");
                }
                continue;
            }
        }
        let count = state.positive_event_count();
        if !state
            .models()
            .due(count, &state.config().training, last_run.elapsed())
        {
            continue;
        }
        last_run = Instant::now();
        match state.train_now().await {
            Ok(outcome) if outcome.promoted => crate::cluster::announce_promoted(&state).await,
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "background training did not produce a model"),
        }
    }
}

/// Recomputes the cached heads of the trending, popular and latest lists
/// every [`crate::live::HEAD_TTL`] on a blocking thread, so that no request
/// pays for a scan of a large catalogue (requests use the cached heads; see
/// `LiveState::head_top`). Returns when `stop` turns true.
async fn refresh_heads_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(crate::live::HEAD_TTL) => {}
        }
        if *stop.borrow() {
            return;
        }
        let state = state.clone();
        let refreshed = tokio::task::spawn_blocking(move || {
            state
                .live()
                .read()
                .refresh_heads(tephra_core::Timestamp::now());
        })
        .await;
        if let Err(error) = refreshed {
            tracing::warn!(%error, "refreshing the cached lists failed");
        }
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM: the signals a terminal or a
/// process manager sends to stop a server.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
