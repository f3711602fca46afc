//! The real server, started as a separate process for the HTTP benchmarks, so
//! that its figures include everything a deployment would pay: process startup,
//! HTTP parsing, durable writes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long the server may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A `tephra serve` child process; killed when dropped.
pub struct ServerProcess {
    child: Child,
    base_url: String,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts this same binary as `tephra serve` on a free local port and waits
    /// until it is ready. Its log goes to `log`.
    pub async fn start(
        data_dir: &Path,
        log: &Path,
        client: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        Self::start_with(data_dir, log, client, &[], READY_TIMEOUT).await
    }

    /// [`ServerProcess::start`] with settings as `TEPHRA_*` environment
    /// variables (e.g. `("TEPHRA_TRAINING__ENABLED", "false")`), waiting up to
    /// `ready_timeout`: a large data directory takes a while to load.
    pub async fn start_with(
        data_dir: &Path,
        log: &Path,
        client: &reqwest::Client,
        settings: &[(&str, &str)],
        ready_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the tephra executable")?;
        let port = free_port()?;
        let log_file =
            File::create(log).with_context(|| format!("cannot create `{}`", log.display()))?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        without_tephra_settings(&mut command);
        command.envs(settings.iter().copied());
        let child = command.spawn().context("cannot start the server process")?;
        let mut server = ServerProcess {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log: log.to_path_buf(),
        };
        server.wait_ready(client, ready_timeout).await?;
        Ok(server)
    }

    /// The server's process id, for reading its figures from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = format!("{}/readyz", self.base_url);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                bail!("the server exited with {status} before it was ready:\n{log}");
            }
            if let Ok(resp) = client.get(&url).send().await {
                if resp.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > timeout {
                bail!("the server was not ready after {} s", timeout.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes every `TEPHRA_*` variable from `command`'s environment: benchmarks
/// measure the defaults, so settings from the caller's environment (an API key,
/// a config file) must not leak in.
pub fn without_tephra_settings(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("TEPHRA_")
        {
            command.env_remove(key);
        }
    }
}

/// A local TCP port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}
