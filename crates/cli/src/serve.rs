//! `tephra serve`: the HTTP API on the data directory, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use tephra_server::Config;
use tephra_store::SharedStore;
use tokio::net::TcpListener;

use crate::data_dir;

/// Opens the data directory named by the configuration and serves it.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = data_dir::open_store(&config.data_dir)?;
    serve(config, store, |url| {
        println!("Tephra is listening on {url} (Ctrl-C to stop)")
    })
    .await
}

/// Serves `store` with `config`; `announce` receives the base URL once the port is
/// bound (and before the data is loaded, so that a slow load is visible).
///
/// Shared by `serve` and `demo`, so that the demo runs exactly the real server.
pub async fn serve(
    config: Config,
    store: SharedStore,
    announce: impl FnOnce(&str),
) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("cannot listen on {listen}"))?;
    let url = base_url(bound);
    tracing::info!(%url, data_dir = %config.data_dir.display(), "starting");
    announce(&url);
    let state = tephra_server::AppState::open(config, store)
        .await
        .context("cannot load the data directory")?;
    tephra_server::serve(listener, state, tephra_server::shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// The URL clients use: a wildcard address (`0.0.0.0`, `::`) is reachable as
/// localhost from this machine, which is what a printed example should use.
pub fn base_url(addr: SocketAddr) -> String {
    let ip = addr.ip();
    let host = if ip.is_unspecified() {
        "127.0.0.1".to_string()
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("http://{host}:{}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_for_printing() {
        assert_eq!(
            base_url("0.0.0.0:80".parse().unwrap()),
            "http://127.0.0.1:80"
        );
        assert_eq!(base_url("[::1]:8080".parse().unwrap()), "http://[::1]:8080");
        assert_eq!(base_url("10.0.0.2:1".parse().unwrap()), "http://10.0.0.2:1");
    }
}
