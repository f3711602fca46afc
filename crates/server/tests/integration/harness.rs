//! Starting, stopping and talking to a real server.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;
use tephra_server::{serve, Config, Tenants};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An API key long enough for the configuration checks.
pub const KEY: &str = "test-key-0123456789";

/// A running server over its own data directory.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
    client: reqwest::Client,
    /// Sent with every request when set.
    api_key: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    data_dir: PathBuf,
    /// Owns the temporary data directory (removed on drop).
    dir: Option<TempDir>,
    config: Config,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The field of an error answer.
    pub fn field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }

    /// Asserts an error answer: status and code, with a non-empty message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!((self.status, self.code()), (status, code), "{}", self.text);
        assert!(
            !self.body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .is_empty(),
            "{}",
            self.text
        );
        self
    }

    /// Asserts the field named by an error answer.
    #[track_caller]
    pub fn assert_field(&self, field: &str) -> &Self {
        assert_eq!(self.field(), Some(field), "{}", self.text);
        self
    }

    /// Asserts a success status.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(
            (200..300).contains(&self.status),
            "{} {}",
            self.status,
            self.text
        );
        &self.body
    }

    /// Ids of an `{items: [{id, ...}]}` answer.
    pub fn ids(&self) -> Vec<String> {
        self.ok()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl TestServer {
    /// A server with the default configuration in a fresh directory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server in a fresh directory, with configuration changes.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        configure(&mut config);
        let mut server = Self::start_in(dir.path(), config).await;
        server.dir = Some(dir);
        server
    }

    /// A server over an existing data directory.
    pub async fn start_in(data_dir: &Path, mut config: Config) -> Self {
        config.data_dir = data_dir.to_owned();
        let tenants = Tenants::open_embedded(config.clone())
            .await
            .expect("load the tenants");
        Self::serve_tenants(tenants, data_dir, config).await
    }

    /// A server over tenants opened by the caller (e.g. on a failing disk),
    /// owning `dir`; [`TestServer::restart`] reopens it the ordinary way.
    pub async fn start_tenants(tenants: Tenants, dir: TempDir) -> Self {
        let config = tenants.config().clone();
        let mut server = Self::serve_tenants(tenants, dir.path(), config).await;
        server.dir = Some(dir);
        server
    }

    async fn serve_tenants(tenants: Tenants, data_dir: &Path, config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, tenants, async {
            let _ = rx.await;
        }));
        let api_key = config.server.api_key.clone();
        Self {
            base: format!("http://{addr}"),
            addr,
            client: reqwest::Client::new(),
            api_key,
            shutdown: Some(tx),
            task: Some(task),
            data_dir: data_dir.to_owned(),
            dir: None,
            config,
        }
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub async fn stop(mut self) -> (Option<TempDir>, PathBuf, Config) {
        self.shutdown_and_wait().await;
        (self.dir.take(), self.data_dir.clone(), self.config.clone())
    }

    async fn shutdown_and_wait(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// Stops the server and starts a new one over the same data directory.
    pub async fn restart(self) -> Self {
        let (dir, data_dir, config) = self.stop().await;
        let mut server = Self::start_in(&data_dir, config).await;
        server.dir = dir;
        server
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match &self.api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// Sends a prepared request and reads the answer.
    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Reply {
        let response = builder.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            text,
            headers,
        }
    }

    /// A request to `path` on this server, with the API key if configured.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(reqwest::Method::PATCH, path).json(body))
            .await
    }

    /// POSTs raw bytes as `application/json`.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        let builder = self
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body);
        self.send(builder).await
    }

    /// Sends `request` as is over a fresh TCP connection and returns the status
    /// line's code and the body (the request must ask for `Connection: close`).
    pub async fn raw_http(&self, request: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// `n` items `{prefix}{i:03}` with optional categories.
pub fn items(prefix: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| serde_json::json!({"id": format!("{prefix}{i:03}")}))
            .collect(),
    )
}

/// A click (or another type) by `user` on `item`.
pub fn event(user: &str, item: &str, kind: &str) -> Value {
    serde_json::json!({"user_id": user, "item_id": item, "type": kind})
}
