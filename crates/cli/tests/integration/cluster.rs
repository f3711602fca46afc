//! Cluster mode end to end: two `tephra serve` processes on the real
//! PostgreSQL and Redis. An event written through one node is in the other's
//! next recommendation; killing the trainer lets the other take over
//! training; a restarted node has everything.
//!
//! Skipped with a loud message when PostgreSQL or Redis is not running,
//! unless `TEPHRA_REQUIRE_SERVICES=1` (as in CI).

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{free_port, s, Server};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS: &str = "redis://127.0.0.1:6379";
const ADMIN: &str = "cluster-admin-key-0123456789";

fn reachable(addr: &str) -> bool {
    addr.parse()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some()
}

/// Whether both services answer; panics instead when they are required.
fn services_or_skip(test: &str) -> bool {
    let up = reachable("127.0.0.1:5432") && reachable("127.0.0.1:6379");
    if !up {
        if std::env::var("TEPHRA_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
            panic!("{test}: PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) is not running, and TEPHRA_REQUIRE_SERVICES=1");
        }
        let _ = writeln!(
            std::io::stderr(),
            "\n********************************************************************\n\
             SKIPPED {test}: PostgreSQL or Redis is not running on 127.0.0.1\n\
             ********************************************************************"
        );
    }
    up
}

/// A node of the test cluster.
async fn node(data: &std::path::Path, port: u16, namespace: &str) -> Server {
    Server::start(
        &[
            "serve",
            "--data-dir",
            s(data),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--store",
            POSTGRES,
            "--cache",
            REDIS,
        ],
        port,
        &[
            ("TEPHRA_SERVER__ADMIN_KEY", ADMIN),
            ("TEPHRA_CLUSTER__NAMESPACE", namespace),
            ("TEPHRA_TRAINING__MIN_NEW_EVENTS", "40"),
            ("TEPHRA_TRAINING__INTERVAL_SECS", "1"),
        ],
    )
    .await
}

struct Client {
    http: reqwest::Client,
    tenant: String,
}

impl Client {
    async fn call(
        &self,
        node: &Server,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", node.url))
            .bearer_auth(ADMIN)
            .header("x-tephra-tenant", &self.tenant);
        if let Some(body) = body {
            request = request.json(body);
        }
        let reply = request.send().await.expect("request");
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, node: &Server, path: &str) -> Value {
        let (status, body) = self.call(node, reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn post(&self, node: &Server, path: &str, body: &Value) -> Value {
        let (status, reply) = self
            .call(node, reqwest::Method::POST, path, Some(body))
            .await;
        assert!(
            (200..300).contains(&status),
            "POST {path}: {status} {reply}"
        );
        reply
    }

    async fn model(&self, node: &Server) -> Option<String> {
        let (_, body) = self
            .call(node, reqwest::Method::GET, "/v1/model", None)
            .await;
        body["trained_at"].as_str().map(str::to_owned)
    }

    async fn runs(&self, node: &Server) -> usize {
        self.get(node, "/v1/model/history").await["runs"]
            .as_array()
            .map_or(0, Vec::len)
    }
}

async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn clicks(users: std::ops::Range<usize>) -> Value {
    let mut events = Vec::new();
    for u in users {
        for i in 0..4 {
            events.push(json!({"user_id": format!("u{u}"), "item_id": format!("i{:02}", (u + i) % 30), "type": "click"}));
        }
    }
    Value::Array(events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgres_and_redis() {
    if !services_or_skip("two_nodes_on_postgres_and_redis") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let namespace = format!("tephra-e2e-{}", std::process::id());
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = node(&tmp.path().join("a"), port_a, &namespace).await;
    let mut b = node(&tmp.path().join("b"), port_b, &namespace).await;
    let tenant = format!("e2e{}", std::process::id());
    let c = Client {
        http: reqwest::Client::new(),
        tenant: tenant.clone(),
    };

    // A tenant created through node A is served by node B.
    let (status, body) = c
        .call(
            &a,
            reqwest::Method::POST,
            "/admin/tenants",
            Some(&json!({"name": tenant})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    within(
        Duration::from_secs(10),
        "node B serves the tenant",
        || async {
            c.call(&b, reqwest::Method::GET, "/v1/popular", None)
                .await
                .0
                == 200
        },
    )
    .await;
    let items: Vec<Value> = (0..30).map(|i| json!({"id": format!("i{i:02}")})).collect();
    c.post(&b, "/v1/items", &Value::Array(items)).await;

    // An event through A is in B's next recommendation.
    let mut delays = Vec::new();
    for k in 0..20 {
        let user = format!("reader{k}");
        c.post(
            &a,
            "/v1/events",
            &json!([{"user_id": user, "item_id": format!("i{:02}", k), "type": "click"}]),
        )
        .await;
        let seen = within(
            Duration::from_secs(5),
            "an event reaches node B",
            || async {
                c.get(&b, &format!("/v1/recommend/{user}?explain=true"))
                    .await["explain"]["history_events"]
                    == 1
            },
        )
        .await;
        delays.push(seen);
    }
    delays.sort();
    let _ = writeln!(
        std::io::stderr(),
        "cluster: event through node A → node B's recommendation: median {:?}, max {:?} ({} events)",
        delays[delays.len() / 2],
        delays[delays.len() - 1],
        delays.len()
    );
    assert!(
        delays[delays.len() / 2] < Duration::from_millis(100),
        "{delays:?}"
    );

    // One node trains; both serve its model.
    c.post(&a, "/v1/events", &clicks(0..30)).await;
    within(
        Duration::from_secs(60),
        "both nodes serve one model",
        || async {
            let (x, y) = (c.model(&a).await, c.model(&b).await);
            x.is_some() && x == y
        },
    )
    .await;
    let first = c.model(&a).await;
    let (runs_a, runs_b) = (c.runs(&a).await, c.runs(&b).await);
    assert!(
        (runs_a > 0) != (runs_b > 0),
        "one trainer: A {runs_a} runs, B {runs_b}"
    );

    // Killing the trainer lets the other take over.
    let a_trains = runs_a > 0;
    let (killed_dir, killed_port) = if a_trains {
        a.kill_now();
        (tmp.path().join("a"), port_a)
    } else {
        b.kill_now();
        (tmp.path().join("b"), port_b)
    };
    let survivor = if a_trains { &b } else { &a };
    c.post(survivor, "/v1/events", &clicks(30..60)).await;
    within(Duration::from_secs(60), "the survivor trains", || async {
        let now = c.model(survivor).await;
        now.is_some() && now != first
    })
    .await;
    assert!(c.runs(survivor).await > 0);

    // The killed node restarts with everything.
    let restarted = node(&killed_dir, killed_port, &namespace).await;
    let expected = c.get(survivor, "/v1/items?limit=100").await["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(expected, 30);
    let info = |node: &Server| {
        let url = format!("{}/admin/tenants/{tenant}", node.url);
        let http = c.http.clone();
        async move {
            let reply = http.get(url).bearer_auth(ADMIN).send().await.unwrap();
            reply.json::<Value>().await.unwrap()
        }
    };
    let (from_survivor, from_restarted) = (info(survivor).await, info(&restarted).await);
    assert_eq!(from_restarted["events"], 20 + 120 + 120, "{from_restarted}");
    assert_eq!(from_restarted["events"], from_survivor["events"]);
    assert_eq!(from_restarted["items"], 30);
    assert_eq!(
        c.get(&restarted, "/v1/recommend/u5?explain=true").await["explain"]["history_events"],
        4
    );

    // Clean up the shared database.
    let (status, _) = c
        .call(
            survivor,
            reqwest::Method::DELETE,
            &format!("/admin/tenants/{tenant}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    drop(restarted);
    let _ = (&mut a, &mut b);
}
