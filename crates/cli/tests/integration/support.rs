//! Running the real `tephra` binary: commands, servers on free ports, files.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a server may take to start answering; generous for loaded CI machines.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A `tephra` command with a clean environment: no `TEPHRA_*` settings leak in
/// from the machine running the tests, and logs stay quiet.
pub fn tephra() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tephra"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TEPHRA_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn").stdin(Stdio::null());
    command
}

/// Runs `tephra ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    tephra().args(args).output().expect("tephra runs")
}

/// Stdout of a successful run; panics with stderr otherwise.
pub fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "tephra {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Stderr of a failed run; panics if it succeeded.
pub fn run_err(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        !out.status.success(),
        "tephra {args:?} should have failed; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A local TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Writes `content` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write test file");
    path.to_string_lossy().into_owned()
}

/// Path as `&str` for argument lists.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// A running `tephra` server process, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    stdout: PathBuf,
    stderr: PathBuf,
    _logs: tempfile::TempDir,
}

impl Server {
    /// Starts `tephra ARGS` (which must make it listen on `port`) with extra
    /// environment variables, and waits until `/healthz` answers.
    pub async fn start(args: &[&str], port: u16, env: &[(&str, &str)]) -> Server {
        let logs = tempfile::tempdir().expect("log dir");
        let stdout = logs.path().join("stdout");
        let stderr = logs.path().join("stderr");
        let mut command = tephra();
        command
            .args(args)
            .envs(env.iter().copied())
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"));
        let child = command.spawn().expect("start tephra");
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
            _logs: logs,
        };
        server.wait_healthy().await;
        server
    }

    /// `tephra serve` on `data`, listening on `port`, with extra settings.
    pub async fn serve(data: &str, port: u16, env: &[(&str, &str)]) -> Server {
        let listen = format!("127.0.0.1:{port}");
        Server::start(
            &["serve", "--data-dir", data, "--listen", &listen],
            port,
            env,
        )
        .await
    }

    async fn wait_healthy(&mut self) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                panic!(
                    "tephra exited with {status} before answering:\n{}",
                    self.stderr_text()
                );
            }
            if let Ok(resp) = client.get(format!("{}/healthz", self.url)).send().await {
                if resp.status().is_success() {
                    return;
                }
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "tephra did not answer /healthz:\n{}",
                self.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the server printed on stdout so far.
    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What the server logged on stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Stops the server the hard way (no graceful shutdown): what survives must
    /// have been durable.
    pub fn kill(mut self) {
        self.stop();
    }

    /// Kills the process with SIGKILL now (it stays owned, so that the
    /// caller's other handles stay valid).
    pub fn kill_now(&mut self) {
        self.stop();
    }

    /// Sends SIGTERM (what a process manager sends) and waits up to a minute
    /// for the process to exit; returns its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "tephra did not exit within a minute of SIGTERM:\n{}",
                self.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// GET `url`, returning status and JSON body (`Null` if the body is not JSON).
pub async fn get(url: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(key) = bearer {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// POST JSON to `url`, returning status and JSON body.
pub async fn post(url: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// The `id`s of the `items` array of a list or recommendation answer.
pub fn item_ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items array in {body}"))
        .iter()
        .map(|i| i["id"].as_str().expect("item id").to_string())
        .collect()
}

/// Parses JSON Lines output.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}
