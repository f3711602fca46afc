//! `tephra serve`: the HTTP API on the data directory, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use tephra_server::Config;
use tokio::net::TcpListener;

/// Opens every tenant of the data directory named by the configuration and
/// serves them; the base URL is printed once the port is bound (and before the
/// data is loaded, so that a slow load is visible).
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("cannot listen on {listen}"))?;
    let url = base_url(bound);
    tracing::info!(%url, data_dir = %config.data_dir.display(), "starting");
    println!("Tephra is listening on {url} (Ctrl-C to stop)");
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory `{}`",
            config.data_dir.display()
        )
    })?;
    let data_dir = config.data_dir.clone();
    let tenants = if config.cluster.store.is_some() {
        tephra_server::cluster::postgres::open_cluster(config)
            .await
            .context("cannot join the cluster")?
    } else {
        tephra_server::Tenants::open_embedded(config)
            .await
            .with_context(|| format!("cannot open the data directory `{}`", data_dir.display()))?
    };
    tephra_server::serve(listener, tenants, tephra_server::shutdown_signal())
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
