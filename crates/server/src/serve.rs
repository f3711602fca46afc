//! Running the API on a listener until told to stop.

use std::future::Future;

use axum::Extension;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::router::router;
use crate::state::AppState;

/// Held by every copy of the router; see [`serve`].
#[derive(Clone)]
struct RouterAlive {
    _sender: mpsc::Sender<()>,
}

/// Serves the API on `listener` until `shutdown` completes, then stops accepting
/// connections, reports not-ready and finishes the requests in flight.
///
/// When it returns, the server holds nothing of `state` any more (every copy of
/// the router is dropped and every write has finished), so the caller can close
/// the store or reopen its data directory at once.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connection tasks drop their copy of the router shortly after the server
    // future completes; the channel closes when the last copy is gone.
    let (alive, mut all_dropped) = mpsc::channel::<()>(1);
    let app = router(state.clone()).layer(Extension(RouterAlive { _sender: alive }));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the HTTP API");
    }
    let shutdown_state = state.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            shutdown_state.set_not_ready();
            tracing::info!("shutting down: finishing requests in flight");
        })
        .await;
    let _ = all_dropped.recv().await;
    state.writes_finished().await;
    tracing::info!("server stopped");
    served
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
