//! The dashboard (`/dashboard`) and the demo reader page (`/demo`) in a real
//! headless Chromium, driven over the DevTools protocol.
//!
//! Each test seeds a server through the API, starts its own Chromium
//! (`--remote-debugging-port=0`, a fresh profile), reads the DevTools address
//! from Chromium's stderr and talks to it over a synchronous websocket: one
//! page target, attached with a flat session, with the Runtime, Log and Page
//! domains enabled. A page is checked once it sets `document.body.dataset.ready`
//! to `"true"`: JavaScript expressions that must hold (charts exist and hold
//! data, expected text is shown), and no console error, uncaught exception or
//! error log entry on the way. A failing page is saved as a screenshot under
//! `target/browser-artifacts/` (every page is, with `TEPHRA_BROWSER_SCREENSHOTS=1`).
//!
//! Without Chromium the tests print a loud SKIPPED line and pass, unless
//! `TEPHRA_REQUIRE_BROWSER=1` or `TEPHRA_REQUIRE_SERVICES=1` asks for them.

use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tempfile::TempDir;
use tungstenite::{Message, WebSocket};

use crate::harness::{TestServer, KEY};

/// How long a page may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one DevTools call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------ Chromium

/// The Chromium binary on `PATH`, if any.
fn chromium_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            [
                "chromium",
                "chromium-browser",
                "google-chrome",
                "google-chrome-stable",
            ]
            .map(|name| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// Whether the environment demands the browser tests run.
fn browser_required() -> bool {
    ["TEPHRA_REQUIRE_BROWSER", "TEPHRA_REQUIRE_SERVICES"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| v == "1"))
}

/// A Chromium for `test`, or `None` (after saying so loudly) when none is installed.
fn browser_or_skip(test: &str) -> Option<Browser> {
    match chromium_path() {
        Some(path) => Some(Browser::launch(&path)),
        None if browser_required() => panic!(
            "{test}: no chromium on PATH, and TEPHRA_REQUIRE_BROWSER or TEPHRA_REQUIRE_SERVICES \
             asks for the browser tests; install chromium"
        ),
        None => {
            // Written to the stream itself: the test harness hides what
            // `eprintln!` prints in passing tests, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n********************************************************************\n\
                 SKIPPED {test}: no chromium on PATH; install chromium \
                 (apt-get install chromium) to run the browser tests\n\
                 ********************************************************************\n"
            );
            None
        }
    }
}

/// A headless Chromium with one page, spoken to over the DevTools protocol.
struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// The page target's flat session.
    session: Option<String>,
    /// Console errors, uncaught exceptions and error log entries not yet taken.
    errors: Vec<String>,
    /// Error log entries naming one of these URLs are expected (a 404 the
    /// page handles), not failures.
    expected_failures: Vec<String>,
    /// The profile directory; removed after Chromium has exited.
    _profile: TempDir,
}

impl Browser {
    /// Starts Chromium and attaches to a fresh page.
    fn launch(path: &Path) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(path)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-port=0",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let url = devtools_url(&mut child);
        let host = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("unexpected DevTools address {url}"));
        let stream = TcpStream::connect(host).expect("connect to DevTools");
        stream.set_nodelay(true).ok();
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .unwrap_or_else(|e| panic!("DevTools websocket handshake: {e}"));
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let mut browser = Self {
            child,
            ws,
            next_id: 0,
            session: None,
            errors: Vec::new(),
            expected_failures: Vec::new(),
            _profile: profile,
        };
        let target = browser
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .expect("create a page");
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .expect("attach to the page");
        browser.session = Some(attached["sessionId"].as_str().expect("session").to_owned());
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            browser.call(domain, json!({})).expect(domain);
        }
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
            )
            .expect("viewport");
        browser
    }

    /// Sends a command (to the page session once attached) and waits for its
    /// answer, collecting the events that arrive meanwhile.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .map_err(|e| format!("{method}: cannot send: {e}"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let message = self.next_message(deadline, method)?;
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    return Err(format!("{method} failed: {error}"));
                }
                return Ok(message["result"].clone());
            }
            self.observe(&message);
        }
    }

    fn next_message(&mut self, deadline: Instant, waiting_for: &str) -> Result<Value, String> {
        loop {
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer to {waiting_for} within {CALL_TIMEOUT:?}"
                ));
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str())
                        .map_err(|e| format!("DevTools sent invalid JSON: {e}"))
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(format!("DevTools connection: {e}")),
            }
        }
    }

    /// Remembers the errors an event reports.
    fn observe(&mut self, message: &Value) {
        let params = &message["params"];
        match message["method"].as_str() {
            Some("Runtime.consoleAPICalled")
                if matches!(params["type"].as_str(), Some("error" | "assert")) =>
            {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|arg| match &arg["value"] {
                        Value::String(s) => s.clone(),
                        Value::Null => arg["description"].as_str().unwrap_or("").to_owned(),
                        other => other.to_string(),
                    })
                    .collect();
                self.errors
                    .push(format!("console.{}: {}", params["type"], args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or(details["text"].as_str())
                    .unwrap_or("?");
                self.errors.push(format!("uncaught exception: {text}"));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                let entry = &params["entry"];
                let text = entry["text"].as_str().unwrap_or("");
                let url = entry["url"].as_str().unwrap_or("");
                let expected = url.contains("favicon")
                    || text.contains("favicon")
                    || self
                        .expected_failures
                        .iter()
                        .any(|u| url.ends_with(u.as_str()));
                if !expected {
                    self.errors
                        .push(format!("log ({}): {text} {url}", entry["source"]));
                }
            }
            _ => {}
        }
    }

    /// The errors seen since the last call, after taking in pending events.
    fn take_errors(&mut self) -> Vec<String> {
        let _ = self.eval("0");
        std::mem::take(&mut self.errors)
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(details) = result.get("exceptionDetails") {
            let text = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())
                .unwrap_or("?");
            return Err(format!("`{expression}` threw {text}"));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Waits until `expression` is truthy.
    fn wait_for(&mut self, expression: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let check = format!("Boolean({expression})");
        loop {
            if self.eval(&check)? == Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("`{expression}` still false after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the page says it has rendered.
    fn wait_ready(&mut self) -> Result<(), String> {
        self.wait_for(
            "document.body && document.body.dataset.ready === 'true'",
            READY_TIMEOUT,
        )
    }

    /// Loads `url` (a fragment change included) and waits until it is ready.
    fn open(&mut self, url: &str) -> Result<(), String> {
        // A fragment change keeps the document: mark it so that the old page's
        // flag is not taken for the new one's.
        let _ = self.eval("document.body && (document.body.dataset.ready = 'stale')");
        self.errors.clear();
        let answer = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(error) = answer["errorText"].as_str() {
            return Err(format!("navigating to {url}: {error}"));
        }
        self.wait_ready()
    }

    /// Saves a screenshot of the page as `target/browser-artifacts/<test>-<page>.png`.
    fn screenshot(&mut self, test: &str, page: &str) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artifacts");
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .and_then(|r| {
                base64::engine::general_purpose::STANDARD
                    .decode(r["data"].as_str().unwrap_or(""))
                    .map_err(|e| e.to_string())
            });
        match shot {
            Ok(png) => {
                std::fs::create_dir_all(&dir).expect("artifact dir");
                let dir = dir.canonicalize().unwrap_or(dir);
                let path = dir.join(format!("{test}-{page}.png"));
                std::fs::write(&path, png).expect("write the screenshot");
                eprintln!("screenshot: {}", path.display());
                path.display().to_string()
            }
            Err(e) => format!("(no screenshot: {e})"),
        }
    }

    /// Loads `url`, evaluates each `(what, expression)` and collects what failed,
    /// console errors included; a failing page leaves a screenshot.
    fn check_page(
        &mut self,
        test: &str,
        page: &str,
        url: &str,
        checks: &[(&str, String)],
    ) -> Vec<String> {
        let mut failures = Vec::new();
        match self.open(url) {
            Err(e) => failures.push(format!("loading {url}: {e}")),
            Ok(()) => failures.extend(self.run_checks(checks)),
        }
        self.finish(test, page, failures)
    }

    /// Evaluates each `(what, expression)`; the failed ones.
    fn run_checks(&mut self, checks: &[(&str, String)]) -> Vec<String> {
        let mut failures = Vec::new();
        for (what, expression) in checks {
            match self.eval(&format!("Boolean({expression})")) {
                Ok(Value::Bool(true)) => {}
                Ok(value) => failures.push(format!("{what}: `{expression}` is {value}")),
                Err(e) => failures.push(format!("{what}: {e}")),
            }
        }
        failures
    }

    /// Adds the browser's errors to `failures`, and on failure a screenshot and
    /// the page's text; prefixes each with the page.
    fn finish(&mut self, test: &str, page: &str, mut failures: Vec<String>) -> Vec<String> {
        failures.extend(
            self.take_errors()
                .into_iter()
                .map(|e| format!("browser: {e}")),
        );
        if failures.is_empty() && std::env::var_os("TEPHRA_BROWSER_SCREENSHOTS").is_some() {
            self.screenshot(test, page);
        }
        if !failures.is_empty() {
            let shot = self.screenshot(test, page);
            let text = self
                .eval("document.body ? document.body.innerText.slice(0, 1500) : ''")
                .unwrap_or_default();
            failures.push(format!("screenshot {shot}; the page says: {text}"));
        }
        failures
            .into_iter()
            .map(|f| format!("[{page}] {f}"))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.session = None;
        let _ = self.ws.send(Message::text(
            json!({"id": 0, "method": "Browser.close"}).to_string(),
        ));
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads Chromium's stderr until it names its DevTools websocket, then keeps
/// draining it in the background so Chromium never blocks on a full pipe.
fn devtools_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<Result<String, String>>();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(sender) = &tx {
                if let Some((_, url)) = line.split_once("DevTools listening on ") {
                    let _ = sender.send(Ok(url.trim().to_owned()));
                    tx = None;
                } else if seen.len() < 40 {
                    seen.push(line);
                }
            }
        }
        if let Some(sender) = tx {
            let _ = sender.send(Err(seen.join("\n")));
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(url)) => url,
        Ok(Err(output)) => panic!("chromium exited before listening for DevTools:\n{output}"),
        Err(_) => panic!("chromium did not announce its DevTools address within 30 s"),
    }
}

/// Runs the blocking browser part of a test off the server's runtime threads.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[track_caller]
fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "browser checks failed:\n  {}",
        failures.join("\n  ")
    );
}

// ------------------------------------------------------------------ checks

/// A JavaScript string literal.
fn js(text: &str) -> String {
    serde_json::to_string(text).expect("string")
}

fn count(selector: &str) -> String {
    format!("document.querySelectorAll({}).length", js(selector))
}

fn shows(text: &str) -> String {
    format!("document.body.textContent.includes({})", js(text))
}

/// At least `n` uPlot charts, each holding data in a canvas of non-zero size.
fn charts_with_data(n: usize) -> String {
    format!(
        "window.tephraCharts.length >= {n} && window.tephraCharts.every(c => \
         c.data.length > 1 && c.data[1].length > 0 && \
         c.data.slice(1).some(s => s.some(v => v !== null && v > 0)) && \
         c.root.querySelector('canvas').width > 0 && \
         c.root.querySelector('canvas').height > 0 && \
         c.root.getBoundingClientRect().width > 0)"
    )
}

fn no_error_boxes() -> (&'static str, String) {
    (
        "no error shown on the page",
        format!("{} === 0", count(".error")),
    )
}

// ------------------------------------------------------------------ data

const CATEGORIES: [&str; 6] = [
    "Politics", "Sport", "Science", "Business", "Culture", "Travel",
];
const ITEMS: usize = 60;
const READERS: usize = 24;
const EXPERIMENT: &str = "feed-test";

fn item_id(i: usize) -> String {
    format!("news-{i:03}")
}

fn reader_id(u: usize) -> String {
    format!("reader-{u:02}")
}

fn headline(i: usize) -> String {
    format!("{} report number {i}", CATEGORIES[i % CATEGORIES.len()])
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A catalogue with titles and categories, readers with a favourite
/// category and a click history over the last day and a half, two training
/// runs, a running experiment, and for every reader a recommendation shown
/// (impressions with the answer's request_id and positions) and acted on
/// (a click, a read and sometimes a purchase).
async fn seed(s: &TestServer) {
    let items: Vec<Value> = (0..ITEMS)
        .map(|i| {
            json!({
                "id": item_id(i),
                "title": headline(i),
                "categories": [CATEGORIES[i % CATEGORIES.len()].to_lowercase()],
                "text": format!("The full text of {}, as filed by our correspondent.", headline(i)),
            })
        })
        .collect();
    s.post("/v1/items", &Value::Array(items)).await.ok();
    let users: Vec<Value> = (0..READERS)
        .map(|u| json!({"id": reader_id(u), "attributes": {"segment": u % 3}}))
        .collect();
    s.post("/v1/users", &Value::Array(users)).await.ok();

    // Reader u clicks 8 stories of category u % 6 and one of the next category.
    let start = now_secs() - 36 * 3600;
    let mut history = Vec::new();
    for u in 0..READERS {
        let category = u % CATEGORIES.len();
        let mut picks: Vec<usize> = (0..8)
            .map(|k| category + CATEGORIES.len() * ((u + 3 * k) % 10))
            .collect();
        picks.push((category + 1) % CATEGORIES.len() + CATEGORIES.len() * (u % 10));
        picks.dedup();
        for (k, item) in picks.into_iter().enumerate() {
            let t = start + ((u * 9 + k) as i64 * 36 * 3600) / (READERS as i64 * 9);
            history.push(json!({
                "user_id": reader_id(u), "item_id": item_id(item), "type": "click", "timestamp": t,
            }));
        }
    }
    s.post("/v1/events", &Value::Array(history)).await.ok();
    for _ in 0..2 {
        let run = s.post("/v1/admin/train", &json!({})).await;
        run.ok();
    }

    let created = s
        .post(
            "/v1/experiments",
            &json!({
                "name": EXPERIMENT, "scene": "home", "start": true,
                "variants": [
                    {"name": "popularity", "weight": 1,
                     "overrides": {"recall": [{"source": "popular", "quota": 200}]}},
                    {"name": "personalized", "weight": 1, "overrides": {}},
                ],
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    let mut shown = Vec::new();
    for u in 0..READERS {
        let reader = reader_id(u);
        let answer = s.get(&format!("/v1/recommend/{reader}?n=10")).await;
        let request_id = answer.ok()["request_id"].as_str().unwrap().to_owned();
        for (position, id) in answer.ids().into_iter().enumerate() {
            let base = json!({"user_id": reader, "item_id": id, "request_id": request_id,
                              "position": position, "scene": "home"});
            let with = |kind: &str, value: f64| {
                let mut event = base.clone();
                event["type"] = json!(kind);
                event["value"] = json!(value);
                event
            };
            shown.push(with("impression", 1.0));
            // One or two clicks per reader, so that the per-user figures vary.
            if (u + 3 * position) % 7 == 0 {
                shown.push(with("click", 1.0));
                shown.push(with("read", 20.0 + (u * 7 % 60) as f64));
                if u % 3 == 0 {
                    shown.push(with("purchase", 5.0 + u as f64));
                }
            }
        }
    }
    s.post("/v1/events", &Value::Array(shown)).await.ok();
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_render_with_data() {
    const TEST: &str = "dashboard";
    let Some(mut browser) = browser_or_skip(TEST) else {
        return;
    };
    let s = TestServer::start().await;
    seed(&s).await;
    let base = format!("{}/dashboard", s.base);
    let reader = reader_id(1);
    let top_item = s.get("/v1/analytics/top-items?type=click&n=1").await;
    let top_title = top_item.ok()["items"][0]["title"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let failures = blocking(|| {
        let mut failures = Vec::new();
        failures.extend(browser.check_page(
            TEST,
            "overview",
            &format!("{base}#/overview"),
            &[
                ("four uPlot charts with data", charts_with_data(3)),
                ("events chart", count("#events-chart .uplot")),
                ("CTR chart", count("#ctr-chart .uplot")),
                ("users chart", count("#users-chart .uplot")),
                (
                    "coverage cards",
                    format!("{} === 4", count("#coverage .card")),
                ),
                (
                    "CTR of the home scene",
                    count("#ctr-scene tr[data-key='home']"),
                ),
                (
                    "CTR by source rows",
                    format!("{} >= 1", count("#ctr-source tbody tr")),
                ),
                (
                    "CTR of both variants",
                    format!("{} >= 2", count("#ctr-variant tbody tr")),
                ),
                ("CTR intervals shown", shows("95% interval")),
                (
                    "top items listed",
                    format!("{} >= 1", count("#top-items tbody tr")),
                ),
                ("top item's title", shows(&top_title)),
                no_error_boxes(),
            ],
        ));
        failures.extend(browser.check_page(
            TEST,
            "experiments",
            &format!("{base}#/experiments"),
            &[
                (
                    "the experiment is listed",
                    count(&format!("#experiments tr[data-experiment='{EXPERIMENT}']")),
                ),
                ("it runs", count("#experiments .badge.running")),
                ("a stop button", count("#experiments button.stop")),
                no_error_boxes(),
            ],
        ));
        failures.extend(
            browser.check_page(
                TEST,
                "experiment",
                &format!("{base}#/experiments/{EXPERIMENT}"),
                &[
                    (
                        "one row per variant",
                        format!("{} === 2", count("#variants tr.variant")),
                    ),
                    (
                        "control marked",
                        count("#variants tr[data-variant='popularity'] .badge.control"),
                    ),
                    ("CTR with an interval", count("#variants .ci")),
                    (
                        "p-values vs control",
                        "/p [=<] /.test(document.querySelector('#variants').textContent)"
                            .to_owned(),
                    ),
                    ("the SRM check", count("#srm")),
                    (
                        "interval charts with a whisker per variant",
                        "[...document.querySelectorAll('svg.interval-chart')]\
                     .some(chart => chart.querySelectorAll('g.whisker').length === 2)"
                            .to_owned(),
                    ),
                    ("the CTR ratio chart", shows("CTR ratio vs control")),
                    ("the definition", shows("popular")),
                    no_error_boxes(),
                ],
            ),
        );
        // Stop it from the page.
        let mut stop = browser.run_checks(&[(
            "stop button clicked",
            "(document.querySelector('button.stop').click(), true)".to_owned(),
        )]);
        if let Err(e) = browser.wait_for(
            "document.querySelector('.heading .badge.stopped') && document.body.dataset.ready === 'true'",
            READY_TIMEOUT,
        ) {
            stop.push(format!("after Stop: {e}"));
        }
        failures.extend(browser.finish(TEST, "experiment-stop", stop));

        failures.extend(browser.check_page(
            TEST,
            "models",
            &format!("{base}#/models"),
            &[
                ("the served model", count("#model")),
                ("its holdout NDCG", shows("Holdout NDCG@10")),
                (
                    "two training runs",
                    format!("{} === 2", count("#runs tr.run")),
                ),
                ("the NDCG chart", charts_with_data(1)),
                no_error_boxes(),
            ],
        ));
        failures.extend(browser.check_page(
            TEST,
            "user",
            &format!("{base}#/users/{reader}"),
            &[
                (
                    "history rows",
                    format!("{} >= 10", count("#history tr.event")),
                ),
                (
                    "clicks in the history",
                    count("#history tr[data-type='click']"),
                ),
                (
                    "impressions in the history",
                    count("#history tr[data-type='impression']"),
                ),
                ("titles in the history", shows("report number")),
                (
                    "ten recommendations",
                    format!("{} === 10", count("#recommendations tr.rec")),
                ),
                ("their explanation", shows("ranked by")),
                no_error_boxes(),
            ],
        ));
        // Only the clicks.
        let mut filtered = browser.run_checks(&[(
            "type filter set",
            "(() => { const s = document.querySelector('#history select'); s.value = 'click'; \
             s.dispatchEvent(new Event('change')); return true; })()"
                .to_owned(),
        )]);
        if let Err(e) = browser.wait_for(
            "document.querySelectorAll('#history tr.event').length > 0 && \
             [...document.querySelectorAll('#history tr.event')].every(r => r.dataset.type === 'click')",
            READY_TIMEOUT,
        ) {
            filtered.push(format!("after picking `click`: {e}"));
        }
        failures.extend(browser.finish(TEST, "user-clicks", filtered));
        failures.extend(browser.check_page(
            TEST,
            "item",
            &format!("{base}#/items/{}", item_id(7)),
            &[
                ("the item", count("#item")),
                ("its title", shows(&headline(7))),
                (
                    "its category",
                    shows(&CATEGORIES[7 % CATEGORIES.len()].to_lowercase()),
                ),
                (
                    "ten similar items",
                    format!("{} === 10", count("#similar tr.rec")),
                ),
                no_error_boxes(),
            ],
        ));
        failures
    });
    assert_no_failures(&failures);
    let experiment = s.get(&format!("/v1/experiments/{EXPERIMENT}")).await;
    assert_eq!(
        experiment.ok()["status"],
        "stopped",
        "the Stop button stops it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_shows_the_feed_and_records_what_it_shows() {
    const TEST: &str = "demo";
    let Some(mut browser) = browser_or_skip(TEST) else {
        return;
    };
    let s = TestServer::start().await;
    seed(&s).await;
    let reader = reader_id(5);
    let url = format!("{}/demo?reader={reader}", s.base);
    let bare = format!("{}/demo", s.base);
    let (failures, opened) = blocking(|| {
        let mut failures = browser.check_page(
            TEST,
            "default-reader",
            &bare,
            &[(
                "the first reader by default",
                format!(
                    "document.getElementById('reader').value === {}",
                    js(&reader_id(0))
                ),
            )],
        );
        failures.extend(browser.check_page(
            TEST,
            "feed",
            &url,
            &[
                (
                    "ten stories in the feed",
                    format!("{} === 10", count("#feed-list .story")),
                ),
                ("headlines", shows("report number")),
                ("category labels", count("#feed-list .story .label")),
                (
                    "trending stories",
                    format!("{} >= 1", count("#trending-list .story")),
                ),
                ("the Related box waits for a story", shows("Open a story")),
                (
                    "the reader is picked",
                    format!(
                        "document.getElementById('reader').value === {}",
                        js(&reader)
                    ),
                ),
                no_error_boxes(),
            ],
        ));
        // Open the third story of the feed.
        let mut after = Vec::new();
        let story = browser
            .eval(
                "(() => { const s = document.querySelectorAll('#feed-list .story')[2]; \
                 const shown = {...s.dataset}; s.querySelector('a').click(); return shown; })()",
            )
            .unwrap_or_else(|e| {
                after.push(format!("clicking a story: {e}"));
                Value::Null
            });
        match browser.wait_ready() {
            Ok(()) => after.extend(browser.run_checks(&[
                (
                    "the story is open",
                    format!(
                        "!document.getElementById('article').hidden && \
                         document.getElementById('article').dataset.item === {}",
                        js(story["item"].as_str().unwrap_or("?"))
                    ),
                ),
                (
                    "related stories",
                    format!("{} >= 1", count("#related-list .story")),
                ),
                (
                    "a new feed of ten",
                    format!("{} === 10", count("#feed-list .story")),
                ),
                no_error_boxes(),
            ])),
            Err(e) => after.push(format!("after the click: {e}")),
        }
        failures.extend(browser.finish(TEST, "click", after));
        (failures, story)
    });
    assert_no_failures(&failures);

    let item = opened["item"].as_str().expect("the story's item");
    let request_id = opened["requestId"]
        .as_str()
        .expect("the story's request_id");
    assert_eq!(opened["position"], "2", "{opened}");
    let events = s.get(&format!("/v1/users/{reader}/events?limit=200")).await;
    let events = events.ok()["events"].as_array().unwrap().clone();
    let click = events
        .iter()
        .find(|e| e["type"] == "click" && e["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no click with request_id {request_id} in {events:?}"));
    assert_eq!(click["item_id"], item);
    assert_eq!(click["position"], 2);
    assert_eq!(click["scene"], "home");
    let mut positions: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "impression" && e["request_id"] == request_id)
        .map(|e| e["position"].as_u64().expect("position"))
        .collect();
    positions.sort_unstable();
    assert_eq!(
        positions,
        (0..10).collect::<Vec<_>>(),
        "impressions of the feed"
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "impression" && e["scene"] == "item_page"),
        "impressions of the Related box"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_asks_for_the_api_key_and_sends_it() {
    const TEST: &str = "auth";
    let Some(mut browser) = browser_or_skip(TEST) else {
        return;
    };
    let s = TestServer::start_with(|c| c.server.api_key = Some(KEY.to_owned())).await;
    s.post("/v1/users", &json!([{"id": "alice"}, {"id": "bob"}]))
        .await
        .ok();
    let url = format!("{}/dashboard#/users", s.base);
    let failures = blocking(|| {
        let mut failures = Vec::new();
        match browser.open(&url) {
            Err(e) => failures.push(format!("loading: {e}")),
            Ok(()) => failures.extend(browser.run_checks(&[
                ("the key field", count("#auth input[type=password]")),
                ("the error says why", shows("API key")),
            ])),
        }
        // The refused calls are logged by the browser: expected here.
        let refused = browser.take_errors();
        if !refused.iter().all(|e| e.contains("401")) {
            failures.push(format!("unexpected errors before the key: {refused:?}"));
        }
        let entered = browser.eval(&format!(
            "(() => {{ const input = document.querySelector('#auth input'); input.value = {}; \
             input.form.requestSubmit(); return true; }})()",
            js(KEY)
        ));
        if let Err(e) = entered {
            failures.push(format!("entering the key: {e}"));
        }
        match browser.wait_for(
            "document.body.dataset.ready === 'true' && document.querySelectorAll('ul.columns li').length === 2",
            READY_TIMEOUT,
        ) {
            Ok(()) => failures.extend(browser.run_checks(&[
                ("the key is kept", format!("localStorage.getItem('tephra.apiKey') === {}", js(KEY))),
                ("the form is gone", format!("{} === 0", count("#auth input"))),
                no_error_boxes(),
            ])),
            Err(e) => failures.push(format!("after entering the key: {e}")),
        }
        browser.finish(TEST, "users", failures)
    });
    assert_no_failures(&failures);
}

/// Not a browser test: the pages and assets are served with the right types,
/// and an unknown asset is a JSON 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_files_are_served_with_their_types() {
    let s = TestServer::start_with(|c| c.server.api_key = Some(KEY.to_owned())).await;
    let client = reqwest::Client::new();
    for (path, content_type) in [
        ("/dashboard", "text/html"),
        ("/demo", "text/html"),
        ("/dashboard/assets/dashboard.js", "text/javascript"),
        ("/dashboard/assets/api.js", "text/javascript"),
        ("/dashboard/assets/demo.js", "text/javascript"),
        ("/dashboard/assets/dashboard.css", "text/css"),
        ("/dashboard/assets/demo.css", "text/css"),
        ("/dashboard/assets/uPlot.iife.min.js", "text/javascript"),
        ("/dashboard/assets/uPlot.min.css", "text/css"),
        ("/dashboard/assets/uPlot.LICENSE", "text/plain"),
    ] {
        // Without the key: the pages stay open, like /docs.
        let response = client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}: {:?}",
            headers["content-type"]
        );
        assert!(headers.contains_key("cache-control"), "{path}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");
    }
    let missing = s.get("/dashboard/assets/nothing.js").await;
    missing.assert_error(404, "not_found");
    assert!(missing.text.contains("nothing.js"), "{}", missing.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_an_empty_server_say_there_is_no_data_yet() {
    const TEST: &str = "empty";
    let Some(mut browser) = browser_or_skip(TEST) else {
        return;
    };
    let s = TestServer::start().await;
    let base = format!("{}/dashboard", s.base);
    let demo = format!("{}/demo", s.base);
    let failures = blocking(|| {
        // The models page asks for the served model; the 404 says there is none.
        browser.expected_failures.push("/v1/model".to_owned());
        let mut failures = Vec::new();
        for (page, hash, text) in [
            ("overview", "overview", "No data yet."),
            ("experiments", "experiments", "No experiments yet"),
            ("models", "models", "No model has been trained yet."),
            ("users", "users", "No users yet."),
        ] {
            failures.extend(browser.check_page(
                TEST,
                page,
                &format!("{base}#/{hash}"),
                &[("says so", shows(text)), no_error_boxes()],
            ));
        }
        failures.extend(browser.check_page(
            TEST,
            "demo",
            &demo,
            &[("says so", shows("No readers yet")), no_error_boxes()],
        ));
        failures
    });
    assert_no_failures(&failures);
}
